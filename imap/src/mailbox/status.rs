//! What STATUS and the QUOTA commands report. STATUS reads the folder's index (`index/`),
//! which syncs with the Maildir first (new messages get their UIDs, as a SELECT would give
//! them); an unchanged folder costs no listing. Blocking.

use moat_maildir::{Maildir, Quota, QuotaLimit, QuotaUsage, Subdir};

use super::store::StoreError;
use crate::index::Index;

/// A mailbox's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub messages: u32,
    /// Messages still in new/: no read-write session has claimed them as its \Recent yet, so
    /// the next SELECT would (Dovecot's notion of \Recent on Maildir).
    pub recent: u32,
    pub unseen: u32,
    pub uid_next: u32,
    pub uid_validity: u32,
    /// RFC 8438's SIZE: the sum of the messages' RFC822.SIZE.
    pub size: u64,
    /// CONDSTORE's HIGHESTMODSEQ (RFC 7162 §3.1.1), what SELECT would report.
    pub highest_modseq: u64,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The counts of one mailbox.
pub fn counts(maildir: &Maildir) -> Result<Counts, StoreError> {
    let ix = Index::open(maildir)?;
    let messages = || ix.messages();
    Ok(Counts {
        messages: count(messages().count()),
        recent: count(messages().filter(|m| m.subdir == Subdir::New).count()),
        unseen: count(messages().filter(|m| !m.flags.has('S')).count()),
        uid_next: ix.uid_next().max(1),
        uid_validity: ix.uid_validity().max(1),
        size: messages().map(|m| m.size).sum(),
        highest_modseq: ix.highest_modseq(),
    })
}

/// The user's Maildir++ quota, when the Maildir has one (`maildirsize`, written by moat-local
/// for users with a quota): the limit and what is used.
pub fn quota(root: &Maildir) -> Result<Option<(QuotaLimit, QuotaUsage)>, StoreError> {
    match Quota::from_maildirsize(root)? {
        None => Ok(None),
        Some(q) => Ok(Some((q.limit(), q.usage()?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quota() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Maildir::create(dir.path().join("Maildir")).expect("create");
        let a = md.deliver(b"Subject: a\r\n\r\na\r\n").expect("a");
        md.deliver(b"Subject: b\r\n\r\nb\r\n").expect("b");
        md.update_flags(&a, moat_maildir::Flags::SEEN, moat_maildir::Flags::empty())
            .expect("seen");
        let c = counts(&md).expect("counts");
        assert_eq!((c.messages, c.recent, c.unseen, c.uid_next), (2, 1, 1, 3));
        assert_eq!(c.size, 34);
        assert!(c.highest_modseq > 0);
        assert_eq!(quota(&md).expect("quota"), None);
        let q = Quota::new(
            &md,
            QuotaLimit {
                bytes: 1 << 20,
                messages: 0,
            },
        );
        q.usage().expect("write maildirsize");
        let (limit, usage) = quota(&md).expect("quota").expect("some");
        assert_eq!((limit.bytes, usage.bytes, usage.messages), (1 << 20, 34, 2));
    }
}
