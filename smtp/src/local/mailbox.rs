//! Delivery into one mailbox: `mail_root/<domain>/<local>/Maildir`, created on first delivery,
//! with the prepended lines streamed in front of the message and the quota enforced by the
//! maildir crate (tmp/ → fsync → rename into new/ → fsync new/).
//!
//! SECURITY: the `maildir` location comes from moat-auth, across a process boundary, so it is
//! checked again right here at the file-system boundary: exactly two components `domain/local`,
//! neither empty, `.`/`..`, starting with a dot, nor containing `/`, NUL or control characters.
//! The mail root must already exist (a missing mount must not make us fill the root file
//! system), and no directory on the way from it to the Maildir may be a symbolic link (checked
//! with lstat before delivery; moat-vmail owns these directories, so only a process running as
//! moat-vmail could race this check). The process umask (077, set in main) keeps every file and
//! directory we create private to moat-vmail.

use std::io::Read;
use std::path::{Path, PathBuf};

use moat_maildir::{DeliverOptions, Maildir, Quota};

use crate::local::message::Message;

/// The longest component accepted (a domain label list or a local part).
const MAX_COMPONENT: usize = 255;

/// A mailbox location that must not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing mailbox location {location:?}: {reason}")]
pub struct BadLocation {
    pub location: String,
    pub reason: &'static str,
}

/// Why one mailbox delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Location(#[from] BadLocation),
    #[error("bad quota from moat-auth: {0}")]
    Quota(String),
    #[error(transparent)]
    Maildir(#[from] moat_maildir::Error),
}

/// Checks a `domain/local` location and returns its two components.
pub fn split_location(location: &str) -> Result<[&str; 2], BadLocation> {
    let bad = |reason| BadLocation {
        location: location.to_string(),
        reason,
    };
    let mut parts = location.split('/');
    let (Some(domain), Some(local), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not domain/local"));
    };
    for part in [domain, local] {
        if part.is_empty() || part.len() > MAX_COMPONENT {
            return Err(bad("empty or overlong component"));
        }
        if part.starts_with('.') {
            return Err(bad("component starts with a dot"));
        }
        if part.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("control character or backslash"));
        }
    }
    Ok([domain, local])
}

/// The Maildir for a location: `mail_root/domain/local/Maildir`, after checking the location
/// and that nothing on the way is a symbolic link.
pub fn maildir_path(mail_root: &Path, location: &str) -> Result<PathBuf, BadLocation> {
    let [domain, local] = split_location(location)?;
    let bad = |reason| BadLocation {
        location: location.to_string(),
        reason,
    };
    if !mail_root.is_dir() {
        return Err(bad("the mail root is not a directory (not mounted?)"));
    }
    let mut path = mail_root.to_path_buf();
    for part in [domain, local, "Maildir"] {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(bad("a directory on the way is a symbolic link"));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(bad("something on the way is not a directory"));
            }
            Ok(_) => {}
            // Not there yet: created on delivery.
            Err(_) => {}
        }
    }
    Ok(path)
}

/// Opens the Maildir at `path`, creating it if it does not exist yet.
pub fn open_or_create(path: &Path) -> Result<Maildir, moat_maildir::Error> {
    match Maildir::open(path) {
        Ok(md) => Ok(md),
        Err(moat_maildir::Error::NotAMaildir { .. }) => Maildir::create(path),
        Err(e) => Err(e),
    }
}

/// Delivers `prefix` followed by `message` into the mailbox at `location` (relative to
/// `mail_root`), enforcing `quota_bytes`. Blocking: run it off the async threads. Returns the
/// Maildir path and the new message's base name.
pub fn deliver(
    mail_root: &Path,
    location: &str,
    quota_bytes: Option<i64>,
    message: &Message,
    prefix: &[u8],
) -> Result<(PathBuf, String), MailboxError> {
    let limit = moat_maildir::store_limit(quota_bytes).map_err(MailboxError::Quota)?;
    let path = maildir_path(mail_root, location)?;
    let maildir = open_or_create(&path)?;
    // The admin's current limit goes into maildirsize (moat-imapd does the same at login).
    let quota = Quota::apply(&maildir, limit)?;
    let mut opts = DeliverOptions::new();
    if let Some(q) = &quota {
        opts = opts.quota(q);
    }
    let base = maildir.deliver_from(prefix.chain(message.reader()), &opts)?;
    Ok((path, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            split_location("example.test/alice"),
            Ok(["example.test", "alice"])
        );
        assert!(split_location("example.test/al+ice").is_ok());
        for bad in [
            "../x",
            "example.test/..",
            "example.test/.",
            "example.test/.hidden",
            "example.test/a/b",
            "example.test",
            "/example.test/a",
            "example.test/",
            "/etc",
            "example.test/a\0b",
            "example.test/a\nb",
            "",
        ] {
            assert!(split_location(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_symlinks_on_the_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("mail");
        assert!(
            maildir_path(&root, "example.test/a").is_err(),
            "no mail root"
        );
        std::fs::create_dir(&root).expect("mkdir");
        assert_eq!(
            maildir_path(&root, "example.test/a"),
            Ok(root.join("example.test/a/Maildir"))
        );
        std::os::unix::fs::symlink(dir.path(), root.join("evil.test")).expect("symlink");
        assert!(maildir_path(&root, "evil.test/a").is_err());
        std::fs::create_dir_all(root.join("example.test/b")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", root.join("example.test/b/Maildir")).expect("symlink");
        assert!(maildir_path(&root, "example.test/b").is_err());
    }
}
