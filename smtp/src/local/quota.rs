//! Quota: the limit comes from the user store (the target's quota bytes, turned into a limit by
//! `moat_maildir::store_limit`, which moat-imapd shares for logins), the usage from the
//! Maildir's `maildirsize` (Maildir++, kept by the maildir crate). Over quota is a temporary
//! failure: the queue retries, and bounces only when the message expires.
//!
//! SECURITY: the quota number crossed a process boundary; zero or negative is not "unlimited"
//! here but a bad answer (moat-auth never sends one), so `store_limit` refuses it and the
//! delivery fails temporarily rather than silently lifting the limit. The `C` check never
//! creates a Maildir: smtpd's callers are untrusted and must not make us create directories.

use std::path::Path;

use moat_maildir::{Maildir, Quota, QuotaLimit};

/// Whether one more message of `size` bytes fits in the Maildir at `path` under `limit`. A
/// Maildir that does not exist yet is empty. Blocking.
pub fn has_room(path: &Path, limit: QuotaLimit, size: u64) -> Result<bool, moat_maildir::Error> {
    match Maildir::open(path) {
        Ok(maildir) => Quota::new(&maildir, limit).fits(size, 1),
        Err(moat_maildir::Error::NotAMaildir { .. }) => Ok(limit.bytes == 0 || size <= limit.bytes),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Maildir");
        let l = QuotaLimit {
            bytes: 100,
            messages: 0,
        };
        assert!(has_room(&path, l, 100).expect("missing maildir is empty"));
        assert!(!has_room(&path, l, 101).expect("too big for an empty box"));
        assert!(!path.exists(), "a check creates nothing");
        let md = Maildir::create(&path).expect("create");
        md.deliver(&[b'x'; 60]).expect("deliver");
        assert!(has_room(&path, l, 40).expect("fits"));
        assert!(!has_room(&path, l, 41).expect("full"));
    }
}
