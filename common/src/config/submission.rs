//! The `[submission]` section: what an authenticated SMTP client (ports 587 and 465, or any
//! listener where it logged in) may do.
//!
//! ```toml
//! [submission]
//! sender_login_match = true   # MAIL FROM must be an address of the login (the default);
//!                             # false: any sender, as before (only while migrating clients)
//! ```
//!
//! What a login owns is decided by moat-smtpd (`smtp/src/smtpd/policy.rs`): the login itself,
//! its sub-addresses, and aliases that deliver to it, never the domain's catch-all.

use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubmission {
    sender_login_match: Option<bool>,
}

/// The parsed `[submission]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// After AUTH, MAIL FROM must be owned by the login (553 5.7.1 otherwise), as Postfix's
    /// `reject_sender_login_mismatch`. `false` lets every user send as anyone, which
    /// moat-remote then DKIM-signs: meant only for a migration.
    pub sender_login_match: bool,
}

impl Default for Submission {
    fn default() -> Self {
        Submission {
            sender_login_match: true,
        }
    }
}

impl RawSubmission {
    pub(super) fn parse(self) -> Submission {
        let d = Submission::default();
        Submission {
            sender_login_match: self.sender_login_match.unwrap_or(d.sender_login_match),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_unless_turned_off() {
        let parse = |text: &str| {
            toml::from_str::<RawSubmission>(text).map(|r| r.parse().sender_login_match)
        };
        assert_eq!(parse("").ok(), Some(true));
        assert_eq!(parse("sender_login_match = true").ok(), Some(true));
        assert_eq!(parse("sender_login_match = false").ok(), Some(false));
        assert!(parse("sender_login_match = \"no\"").is_err());
        assert!(parse("sender_login_mismatch = false").is_err());
    }
}
