//! The records the store hands out. They are plain data (Serialize for `--json` output) and
//! never carry secrets: a [`User`] has no password hash.

use serde::Serialize;

/// A hosted domain with a summary of what hangs off it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain {
    /// Lower-case ASCII (A-label) name.
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    /// Number of mailbox users.
    pub users: i64,
    /// Number of distinct alias source addresses (not alias rows).
    pub aliases: i64,
    /// Catch-all target address, if any.
    pub catchall: Option<String>,
    /// Domain names that are aliases of this one, sorted.
    pub alias_domains: Vec<String>,
}

/// A mailbox user. Never includes the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// `local@domain`.
    pub address: String,
    pub local: String,
    pub domain: String,
    /// `None` means unlimited.
    pub quota_bytes: Option<i64>,
    /// Disabled users cannot log in but still receive mail.
    pub enabled: bool,
    /// Unix seconds.
    pub created: i64,
}

impl User {
    /// The Maildir location relative to the mail root: `domain/local` (the layout is
    /// `mail/<domain>/<user>/Maildir`).
    pub fn maildir(&self) -> String {
        format!("{}/{}", self.domain, self.local)
    }
}

/// An alias source and all its targets (in the order they were added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    pub source: String,
    pub targets: Vec<String>,
}
