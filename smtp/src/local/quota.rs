//! Quota: the limit comes from the user store (the target's quota bytes), the usage from the
//! Maildir's `maildirsize` (Maildir++, kept by the maildir crate). Over quota is a temporary
//! failure: the queue retries, and bounces only when the message expires.
//!
//! SECURITY: the quota number crossed a process boundary; zero or negative is not "unlimited"
//! here but a bad answer (moat-auth never sends one), so it fails the delivery temporarily
//! rather than silently lifting the limit. The `C` check never creates a Maildir: smtpd's
//! callers are untrusted and must not make us create directories.

use std::path::Path;

use moat_maildir::{Maildir, Quota, QuotaLimit};

/// The limit for a quota in bytes (`None` = unlimited).
pub fn limit(quota_bytes: Option<i64>) -> Result<Option<QuotaLimit>, String> {
    match quota_bytes {
        None => Ok(None),
        Some(q) => match u64::try_from(q) {
            Ok(bytes) if bytes > 0 => Ok(Some(QuotaLimit { bytes, messages: 0 })),
            _ => Err(format!("quota {q} is not a positive number of bytes")),
        },
    }
}

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
    fn limits() {
        assert_eq!(limit(None), Ok(None));
        assert_eq!(
            limit(Some(10)),
            Ok(Some(QuotaLimit {
                bytes: 10,
                messages: 0
            }))
        );
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(-5)).is_err());
    }

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
