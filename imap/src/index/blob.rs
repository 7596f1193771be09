//! The per-message blob (the session stores ENVELOPE + BODYSTRUCTURE wire bytes in it): computed
//! once per message by the caller's parser, kept in `moat-index.cache`, shared by every session.
//!
//! Blobs are computed on demand, not at sync: a SELECT of a folder nobody fetched from parses
//! nothing, and a new delivery is parsed by the first FETCH that wants it. The computation runs
//! under the index lock after reading the log to its end, so when two sessions want the same
//! blob the second finds the first one's and does not parse again (exactly one parse per
//! message). Reading the message for the parse also measures its sizes, which correct a name
//! whose `,S=`/`,W=` fields lie. Batches take the lock per `CHUNK` messages so that a first
//! `FETCH 1:* ENVELOPE` over 50,000 messages does not hold other writers off for its duration.

use std::collections::HashMap;
use std::io::Read;

use moat_maildir::{Error, Maildir, Result, Subdir};

use super::Index;
use super::disk::io_err;
use super::format::{LogRec, MAX_BLOB};

/// Messages parsed per lock hold.
const CHUNK: usize = 64;

#[cfg(test)]
thread_local! {
    /// Message files this thread opened (tests check that reopening reads none).
    pub(crate) static MESSAGE_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Reads a whole message file, following it if it moved; `None` if it is gone.
pub(crate) fn read_message(
    md: &Maildir,
    sub: Subdir,
    file_name: &str,
    base: &str,
) -> Result<Option<Vec<u8>>> {
    let (mut file, entry) = match md.open_message_hinted(base, sub, file_name) {
        Ok(x) => x,
        Err(Error::MessageNotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(test)]
    MESSAGE_READS.with(|c| c.set(c.get() + 1));
    let hint = usize::try_from(entry.size).unwrap_or(0).min(64 << 20);
    let mut data = Vec::with_capacity(hint);
    file.read_to_end(&mut data)
        .map_err(io_err("read", &entry.path))?;
    Ok(Some(data))
}

/// Measures a message file without holding it in memory: `(file size, CRLF size)`, following
/// it if it moved; `None` if it is gone. For files whose names carry no `,W=`.
pub(crate) fn measure_message(
    md: &Maildir,
    sub: Subdir,
    file_name: &str,
    base: &str,
) -> Result<Option<(u64, u64)>> {
    let (mut file, entry) = match md.open_message_hinted(base, sub, file_name) {
        Ok(x) => x,
        Err(Error::MessageNotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(test)]
    MESSAGE_READS.with(|c| c.set(c.get() + 1));
    let mut counter = CrlfCounter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => counter.update(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", &entry.path)(e)),
        }
    }
    Ok(Some((counter.len, counter.crlf_size())))
}

/// Counts bytes and LFs not preceded by CR, across chunks.
#[derive(Default)]
struct CrlfCounter {
    len: u64,
    bare_lf: u64,
    last_cr: bool,
}

impl CrlfCounter {
    fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        // Only the byte before each LF matters: memchr finds the LFs (a byte-by-byte loop
        // was a tenth of a cold ENVELOPE's profile).
        for at in memchr::memchr_iter(b'\n', chunk) {
            let before_cr = match at.checked_sub(1) {
                Some(i) => chunk.get(i) == Some(&b'\r'),
                None => self.last_cr,
            };
            if !before_cr {
                self.bare_lf += 1;
            }
        }
        if let Some(&last) = chunk.last() {
            self.last_cr = last == b'\r';
        }
    }

    fn crlf_size(&self) -> u64 {
        self.len + self.bare_lf
    }
}

/// The size with every LF not preceded by CR counted as CRLF (RFC822.SIZE as sent).
pub(crate) fn crlf_size(data: &[u8]) -> u64 {
    let mut c = CrlfCounter::default();
    c.update(data);
    c.crlf_size()
}

impl Index {
    /// The blob of `uid`, computing it with `parse` (one read of the message file, one call) if
    /// it is not cached yet. `None` if the message is gone (expunged, maybe not yet reported).
    pub fn blob(&mut self, uid: u32, parse: &dyn Fn(&[u8]) -> Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.check_validity()?;
        let Some(m) = self.state.messages.get(&uid) else {
            return Ok(None);
        };
        if let Some(r) = m.blob
            && let Some(blob) = self.disk.read_blob(uid, r)?
        {
            return Ok(Some(blob));
        }
        let mut got = HashMap::new();
        self.compute_blobs(&[uid], parse, true, Some(&mut got))?;
        Ok(got.remove(&uid))
    }

    /// The blobs of `uids`, the missing ones computed `CHUNK` per lock hold (a FETCH of many
    /// messages takes the lock once per chunk, not once per message). A message that is gone,
    /// or whose blob is too large to keep, is not in the map.
    pub fn blobs(
        &mut self,
        uids: &[u32],
        parse: &dyn Fn(&[u8]) -> Vec<u8>,
    ) -> Result<HashMap<u32, Vec<u8>>> {
        self.check_validity()?;
        let mut got = HashMap::with_capacity(uids.len());
        let mut missing = Vec::new();
        for &uid in uids {
            let Some(m) = self.state.messages.get(&uid) else {
                continue;
            };
            match m.blob {
                Some(r) => match self.disk.read_blob(uid, r)? {
                    Some(blob) => {
                        got.insert(uid, blob);
                    }
                    // The cached copy does not check out: computed again below.
                    None => missing.push(uid),
                },
                None => missing.push(uid),
            }
        }
        self.compute_blobs(&missing, parse, true, Some(&mut got))?;
        Ok(got)
    }

    /// Computes the missing blobs of `uids` in batches (for a FETCH of many messages, before
    /// calling `blob` for each). Returns how many messages were parsed.
    pub fn prepare_blobs(
        &mut self,
        uids: &[u32],
        parse: &dyn Fn(&[u8]) -> Vec<u8>,
    ) -> Result<usize> {
        let missing: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| self.state.messages.get(u).is_some_and(|m| m.blob.is_none()))
            .collect();
        self.compute_blobs(&missing, parse, false, None)
    }

    /// Stores a blob the caller computed itself (APPEND parsed the message it received). The
    /// sizes stay those from the file name. Returns false if the message is not indexed.
    pub fn set_blob(&mut self, uid: u32, blob: &[u8]) -> Result<bool> {
        if blob.len() > MAX_BLOB as usize {
            return Ok(false);
        }
        self.locked_by_uid(|ix| {
            let Some(m) = ix.state.messages.get(&uid) else {
                return Ok(false);
            };
            let (file_size, size) = (m.file_size, m.size);
            let r = ix.disk.append_blob(uid, blob, file_size, size)?;
            let rec = LogRec::Blob {
                uid,
                blob: r,
                file_size,
                size,
            };
            ix.disk.append(&mut ix.state, &[rec])?;
            Ok(true)
        })
    }

    /// Parses and stores the blobs of `uids` that have none (or, with `verify`, whose cached
    /// copy does not check out). With `keep`, the blobs of `uids` go there too (the ones just
    /// computed without being read back from the cache).
    fn compute_blobs(
        &mut self,
        uids: &[u32],
        parse: &dyn Fn(&[u8]) -> Vec<u8>,
        verify: bool,
        mut keep: Option<&mut HashMap<u32, Vec<u8>>>,
    ) -> Result<usize> {
        let mut parsed = 0;
        for chunk in uids.chunks(CHUNK) {
            let keep = keep.as_deref_mut();
            parsed += self.locked_by_uid(|ix| {
                let mut recs = Vec::new();
                let mut parsed = 0;
                let mut keep = keep;
                for &uid in chunk {
                    let Some(m) = ix.state.messages.get(&uid) else {
                        continue;
                    };
                    if let Some(r) = m.blob {
                        if !verify && keep.is_none() {
                            continue;
                        }
                        if let Some(blob) = ix.disk.read_blob(uid, r)? {
                            // Another session computed it while we waited for the lock.
                            if let Some(k) = keep.as_deref_mut() {
                                k.insert(uid, blob);
                            }
                            continue;
                        }
                        if !verify {
                            continue;
                        }
                    }
                    let (sub, name) = (m.subdir, m.file_name.clone());
                    let base = m.base().to_owned();
                    let Some(bytes) = read_message(&ix.maildir, sub, &name, &base)? else {
                        continue;
                    };
                    let blob = parse(&bytes);
                    parsed += 1;
                    if blob.len() > MAX_BLOB as usize {
                        continue;
                    }
                    let (file_size, size) = (bytes.len() as u64, crlf_size(&bytes));
                    let r = ix.disk.append_blob(uid, &blob, file_size, size)?;
                    recs.push(LogRec::Blob {
                        uid,
                        blob: r,
                        file_size,
                        size,
                    });
                    if let Some(k) = keep.as_deref_mut() {
                        k.insert(uid, blob);
                    }
                }
                ix.disk.append(&mut ix.state, &recs)?;
                Ok(parsed)
            })?;
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_size_counts_bare_lf_only() {
        assert_eq!(crlf_size(b""), 0);
        assert_eq!(crlf_size(b"a\r\nb\n"), 6);
        assert_eq!(crlf_size(b"\n\n"), 4);
        assert_eq!(crlf_size(b"\r\r\n"), 3);
        // A CR at the end of one chunk and its LF at the start of the next.
        let mut c = CrlfCounter::default();
        c.update(b"a\r");
        c.update(b"\nb\n");
        assert_eq!((c.len, c.crlf_size()), (5, 6));
    }
}
