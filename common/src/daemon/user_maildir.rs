//! Where a user's mail lives: `<mail_root>/<domain>/<local>/Maildir`, for the mail-access
//! servers (moat-pop3d, moat-imapd), which know the user by the address moat-auth answered.
//!
//! SECURITY: the name comes from moat-auth, across a process boundary, and is checked again
//! before it becomes a path (no `/`, no leading `.`, no control character or NUL, neither part
//! empty): a confused store cannot point a server outside mail_root.

use std::path::{Path, PathBuf};

/// The Maildir of `user` (`local@domain`) under `mail_root`, if the name is safe to use.
pub fn user_maildir(mail_root: &Path, user: &str) -> Option<PathBuf> {
    let (local, domain) = user.rsplit_once('@')?;
    let safe = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.contains('/')
            && !part.chars().any(char::is_control)
    };
    (safe(local) && safe(domain)).then(|| mail_root.join(domain).join(local).join("Maildir"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_cannot_escape() {
        let root = Path::new("/m");
        assert_eq!(
            user_maildir(root, "a@example.test"),
            Some(PathBuf::from("/m/example.test/a/Maildir"))
        );
        for bad in [
            "a", "@x", "a@", "../a@x", "a@..", "a/b@x", "a@x/y", ".a@x", "a\0@x",
        ] {
            assert_eq!(user_maildir(root, bad), None, "{bad}");
        }
    }
}
