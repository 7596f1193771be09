//! What STATUS and the QUOTA commands report, read from the Maildir until the per-folder index
//! (`index/`) takes over: the UID list is synced (new messages get their UIDs, as a SELECT
//! would give them), then new/ and cur/ are listed. Blocking.

use moat_maildir::{Maildir, Quota, QuotaLimit, QuotaUsage, Subdir};

use super::store::StoreError;

/// A mailbox's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub messages: u32,
    /// Messages still in new/: no session has seen them (Dovecot's notion of \Recent on
    /// Maildir, until the index tracks it per session).
    pub recent: u32,
    pub unseen: u32,
    pub uid_next: u32,
    pub uid_validity: u32,
    /// Octets, as sizes in the file names (`,S=`) or stat give them.
    pub size: u64,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The counts of one mailbox.
pub fn counts(maildir: &Maildir) -> Result<Counts, StoreError> {
    let uids = maildir.sync_uidlist()?;
    let entries = maildir.list()?;
    Ok(Counts {
        messages: count(entries.len()),
        recent: count(entries.iter().filter(|e| e.subdir == Subdir::New).count()),
        unseen: count(entries.iter().filter(|e| !e.flags.has('S')).count()),
        uid_next: uids.next_uid.max(1),
        uid_validity: uids.uid_validity.max(1),
        size: entries.iter().map(|e| e.size).sum(),
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
