//! IMAP mailbox names ↔ Maildir++ folders (docs/IMAP.md "Mailbox names").
//!
//! The hierarchy separator is `/`, the personal namespace prefix is empty. `INBOX` in any case
//! is the Maildir root, and an `INBOX` first component is spelled `INBOX` too (`inbox/x` is
//! `INBOX/x`); every other name is case-sensitive. `A/B` is the folder `.A.B`. Names stay in
//! modified UTF-7 on disk, as Dovecot keeps them, so the mapping is only `/` ↔ `.`.
//!
//! SECURITY: a name becomes a directory name, so everything is checked here, once, before any
//! file-system call: canonical modified UTF-7 (7-bit, one spelling per name), no control
//! character, no empty component, no `.` in a component (Maildir++ could not store it: it
//! would silently become a hierarchy level), no wildcard, at most `MAX_FOLDER` bytes (the
//! folder's directory name must fit in 255). The maildir crate validates folder names again.

use super::utf7;

/// The hierarchy separator.
pub const SEPARATOR: char = '/';

/// The longest Maildir++ folder name (`.` + name fits in a 255-byte directory name).
pub const MAX_FOLDER: usize = 254;

/// A checked mailbox name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxName {
    /// The name as clients see it (modified UTF-7, `INBOX` spelled in capitals).
    pub imap: String,
    /// The Maildir++ folder name (`None`: INBOX, the Maildir root).
    pub folder: Option<String>,
}

/// Why a name cannot be used; every case is answered `NO [CANNOT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    Utf7(utf7::Utf7Error),
    Control,
    EmptyComponent,
    Dot,
    Wildcard,
    TooLong,
}

impl NameError {
    /// The text after `NO [CANNOT] `.
    pub fn text(&self) -> String {
        match self {
            NameError::Empty => "empty mailbox name".into(),
            NameError::Utf7(e) => format!("mailbox name is not valid modified UTF-7: {e}"),
            NameError::Control => "control characters are not allowed in mailbox names".into(),
            NameError::EmptyComponent => {
                "empty hierarchy level in mailbox name (leading, trailing or doubled '/')".into()
            }
            NameError::Dot => "'.' is not allowed in a mailbox name here (Maildir++ uses it as \
                               the hierarchy separator): use '/' for levels"
                .into(),
            NameError::Wildcard => "'*' and '%' are not allowed in mailbox names".into(),
            NameError::TooLong => "mailbox name too long".into(),
        }
    }
}

impl MailboxName {
    pub fn inbox() -> MailboxName {
        MailboxName {
            imap: "INBOX".into(),
            folder: None,
        }
    }

    pub fn is_inbox(&self) -> bool {
        self.folder.is_none()
    }

    /// The parent names, outermost first (`a/b/c` → `a`, `a/b`); INBOX is never one.
    pub fn parents(&self) -> Vec<MailboxName> {
        let Some(folder) = &self.folder else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (at, _) in folder.match_indices('.') {
            let prefix = folder.get(..at).unwrap_or_default();
            if prefix == "INBOX" {
                continue;
            }
            out.push(MailboxName {
                imap: prefix.replace('.', "/"),
                folder: Some(prefix.to_string()),
            });
        }
        out
    }
}

/// Checks a name a client sent.
pub fn parse(name: &[u8]) -> Result<MailboxName, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.eq_ignore_ascii_case(b"INBOX") {
        return Ok(MailboxName::inbox());
    }
    let decoded = utf7::decode(name).map_err(NameError::Utf7)?;
    if decoded.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    // Canonical modified UTF-7 is printable ASCII, so this is the same bytes as a `str`.
    let text = std::str::from_utf8(name).map_err(|_| NameError::Control)?;
    let mut components: Vec<&str> = Vec::new();
    for (i, c) in text.split(SEPARATOR).enumerate() {
        if c.is_empty() {
            return Err(NameError::EmptyComponent);
        }
        if c.contains('.') {
            return Err(NameError::Dot);
        }
        if c.contains(['*', '%']) {
            return Err(NameError::Wildcard);
        }
        components.push(if i == 0 && c.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            c
        });
    }
    let folder = components.join(".");
    if folder.len() > MAX_FOLDER {
        return Err(NameError::TooLong);
    }
    Ok(MailboxName {
        imap: components.join("/"),
        folder: Some(folder),
    })
}

/// The IMAP name of a folder found on disk, if it has one: `None` for folders no client could
/// name (other tools' spellings such as raw UTF-8, a `.INBOX` directory), which stay hidden.
pub fn from_folder(folder: &str) -> Option<MailboxName> {
    let name = parse(folder.replace('.', "/").as_bytes()).ok()?;
    (name.folder.as_deref() == Some(folder)).then_some(name)
}

/// Strips one trailing separator (RFC 3501 CREATE: `foo/` says foo will have children).
pub fn strip_trailing_separator(name: &[u8]) -> &[u8] {
    match name.strip_suffix(b"/") {
        Some(rest) if !rest.is_empty() => rest,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> Option<String> {
        parse(name.as_bytes()).expect(name).folder
    }

    #[test]
    fn names_map_to_folders() {
        assert_eq!(folder("INBOX"), None);
        assert_eq!(folder("inBox"), None);
        assert_eq!(folder("Work"), Some("Work".into()));
        assert_eq!(
            folder("Work/Projects/2026"),
            Some("Work.Projects.2026".into())
        );
        assert_eq!(folder("inbox/Sub"), Some("INBOX.Sub".into()));
        assert_eq!(parse(b"inbox/Sub").expect("ok").imap, "INBOX/Sub");
        assert_eq!(folder("Entw&APw-rfe"), Some("Entw&APw-rfe".into()));
        assert_eq!(folder("A &- B"), Some("A &- B".into()));
        assert_eq!(folder("Sent]"), Some("Sent]".into()));
    }

    #[test]
    fn bad_names_are_refused() {
        for (bad, why) in [
            (&b""[..], NameError::Empty),
            (b"a.b", NameError::Dot),
            (b"a/b.c", NameError::Dot),
            (b"..", NameError::Dot),
            (b"/a", NameError::EmptyComponent),
            (b"a//b", NameError::EmptyComponent),
            (b"a/", NameError::EmptyComponent),
            (b"a*", NameError::Wildcard),
            (b"50%", NameError::Wildcard),
            (b"&AAE-", NameError::Control),
        ] {
            assert_eq!(parse(bad), Err(why), "{:?}", String::from_utf8_lossy(bad));
        }
        for bad in [&b"caf\xc3\xa9"[..], b"a\0b", b"a\r\nb", b"&AGE-", b"a&"] {
            assert!(
                matches!(parse(bad), Err(NameError::Utf7(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(&[b'x'; 255]), Err(NameError::TooLong));
        assert!(parse(&[b'x'; 254]).is_ok());
    }

    #[test]
    fn folders_on_disk_and_parents() {
        assert_eq!(
            from_folder("Work.Projects").map(|n| n.imap),
            Some("Work/Projects".into())
        );
        assert_eq!(from_folder("INBOX"), None, "the root has no folder");
        assert_eq!(from_folder("inbox.x"), None, "not our spelling");
        assert_eq!(from_folder("caf\u{e9}"), None);
        assert_eq!(from_folder("50%"), None);
        let n = parse(b"a/b/c").expect("ok");
        let parents: Vec<String> = n.parents().into_iter().map(|p| p.imap).collect();
        assert_eq!(parents, vec!["a", "a/b"]);
        assert!(parse(b"INBOX/x").expect("ok").parents().is_empty());
        assert_eq!(strip_trailing_separator(b"foo/"), b"foo");
        assert_eq!(strip_trailing_separator(b"/"), b"/");
    }
}
