//! Special-use mailboxes (RFC 6154): Drafts, Sent, Trash, Junk and Archive at the top level,
//! created (and subscribed) at login when missing, as Dovecot's `auto = subscribe` does, and
//! marked with their attribute in LIST.

/// The names and their attributes.
pub const SPECIAL_USE: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// The special-use attribute of a mailbox, by its IMAP name.
pub fn attribute(imap_name: &str) -> Option<&'static str> {
    SPECIAL_USE
        .iter()
        .find(|(name, _)| *name == imap_name)
        .map(|(_, attr)| *attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        assert_eq!(attribute("Sent"), Some("\\Sent"));
        assert_eq!(attribute("Work/Sent"), None);
        assert_eq!(attribute("sent"), None);
    }
}
