//! BDAT chunk accounting (RFC 3030 CHUNKING): exact octet counts per chunk, the size limit
//! across all chunks of a message, and the failed-transaction state.
//!
//! SECURITY: once a BDAT command's size is known, exactly that many octets are consumed as
//! data — even when the command is refused (no MAIL, no recipients, too big, transaction
//! already failed) — because the client has pipelined them behind the command. Reading them as
//! commands instead would let chunk content act as SMTP commands. A size that cannot be read
//! closes the connection (see `command.rs`).

use std::io::Write;

use super::content::ContentChecker;
use super::reply::Reply;

/// The octets of one chunk still to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    remaining: u64,
    size: u64,
    last: bool,
}

impl Chunk {
    pub fn new(size: u64, last: bool) -> Chunk {
        Chunk {
            remaining: size,
            size,
            last,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_last(&self) -> bool {
        self.last
    }

    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Takes up to `remaining` octets from `input`: into `content` (and so the sink) when
    /// given, thrown away otherwise. Returns how many octets were consumed.
    pub fn feed(
        &mut self,
        input: &[u8],
        content: Option<&mut ContentChecker>,
        sink: &mut dyn Write,
    ) -> usize {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        if let Some(c) = content {
            c.feed(&input[..n], sink);
        }
        self.remaining -= n as u64;
        n
    }
}

/// The BDAT side of one mail transaction.
#[derive(Debug, Clone)]
pub struct BdatBody {
    declared: u64,
    chunks: u64,
    max_size: u64,
    failed: Option<Reply>,
    pub content: ContentChecker,
}

impl BdatBody {
    pub fn new(content: ContentChecker, max_size: u64) -> BdatBody {
        BdatBody {
            declared: 0,
            chunks: 0,
            max_size,
            failed: None,
            content,
        }
    }

    /// Accounts for a new chunk of `size` octets. Err with the reply if the transaction has
    /// failed already or if the chunks would exceed the size limit (RFC 3030 / RFC 1870:
    /// 552 5.3.4); the chunk must then be skipped.
    pub fn admit(&mut self, size: u64) -> Result<(), Reply> {
        if let Some(r) = &self.failed {
            return Err(r.clone());
        }
        let total = self.declared.saturating_add(size);
        if total > self.max_size {
            let r = Reply::too_big();
            self.failed = Some(r.clone());
            return Err(r);
        }
        self.declared = total;
        self.chunks += 1;
        Ok(())
    }

    /// Marks the transaction failed: later chunks get `reply` and are skipped.
    pub fn fail(&mut self, reply: Reply) {
        self.failed.get_or_insert(reply);
    }

    pub fn failed(&self) -> Option<&Reply> {
        self.failed.as_ref()
    }

    /// Total octets declared by the admitted chunks.
    pub fn declared(&self) -> u64 {
        self.declared
    }

    pub fn chunks(&self) -> u64 {
        self.chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::content::ContentMode;

    #[test]
    fn exact_counts_across_splits() {
        let mut c = Chunk::new(5, false);
        let mut content = ContentChecker::new(ContentMode::Text, 100, 1000);
        let mut out = Vec::new();
        assert_eq!(c.feed(b"ab", Some(&mut content), &mut out), 2);
        assert!(!c.is_complete());
        assert_eq!(c.feed(b"c\r\nNOOP\r\n", Some(&mut content), &mut out), 3);
        assert!(c.is_complete());
        assert_eq!(c.feed(b"more", Some(&mut content), &mut out), 0);
        assert_eq!(out, b"abc\r\n");
    }

    #[test]
    fn skipped_chunk_writes_nothing() {
        let mut c = Chunk::new(4, true);
        let mut out = Vec::new();
        assert_eq!(c.feed(b"abcdef", None, &mut out), 4);
        assert!(c.is_complete() && c.is_last());
        assert!(out.is_empty());
    }

    #[test]
    fn zero_size_chunk_is_complete_at_once() {
        assert!(Chunk::new(0, true).is_complete());
    }

    #[test]
    fn size_limit_across_chunks() {
        let content = ContentChecker::new(ContentMode::Text, 10, 1000);
        let mut b = BdatBody::new(content, 10);
        assert_eq!(b.admit(6), Ok(()));
        assert_eq!(b.admit(4), Ok(()));
        assert_eq!(b.declared(), 10);
        assert_eq!(b.admit(1).map_err(|r| r.code()), Err(552));
        // Failed for good: even an empty chunk is refused now.
        assert_eq!(b.admit(0).map_err(|r| r.code()), Err(552));
        assert_eq!(b.chunks(), 2);
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let content = ContentChecker::new(ContentMode::Text, 10, 1000);
        let mut b = BdatBody::new(content, u64::MAX);
        assert_eq!(b.admit(u64::MAX), Ok(()));
        assert!(b.admit(u64::MAX).is_ok());
        let mut c = Chunk::new(u64::MAX, false);
        assert_eq!(c.feed(b"abc", None, &mut Vec::new()), 3);
    }
}
