//! The session's policy questions, answered by asking the processes that know: recipients
//! (moat-local `C`) and logins (moat-auth `A`).
//!
//! Recipients:
//! - `K` from moat-local: accepted.
//! - `D ["not a local domain"]` (moat-auth's word, passed on by moat-local): on port 25 550
//!   5.7.1 relaying denied; after AUTH, accepted (a remote recipient, queued for remote
//!   delivery).
//! - any other `D`: an unknown address of ours, 550 5.1.1.
//! - `Z` "over quota" / "mailbox full": 452 4.2.2; other `Z` or no answer: 451 4.3.0.
//!
//! `<Postmaster>` without a domain is `postmaster@<hostname>`.
//!
//! SECURITY: no decision is made here on what the client says alone; the answers come from
//! moat-local and moat-auth, and anything unexpected (an I/O error, a timeout, a garbled
//! answer) is a temporary failure, never an accept. Passwords go to moat-auth and nowhere
//! else (not logged, not kept).

use std::net::IpAddr;

use moat_common::client::auth::{AuthAnswer, AuthClient, NOT_LOCAL};
use moat_common::client::local::LocalClient;
use moat_common::warn;
use moat_common::wire::Status;

use super::settings::Settings;
use crate::proto::{AuthVerdict, Credentials, ForwardPath, RcptVerdict};

pub struct Policy {
    auth: AuthClient,
    local: LocalClient,
    hostname: String,
}

/// The envelope form of a recipient (`local@domain`, local part quoted when needed).
pub fn recipient_address(path: &ForwardPath, hostname: &str) -> String {
    match path {
        ForwardPath::Postmaster => format!("postmaster@{hostname}"),
        ForwardPath::Path(p) => p.to_string(),
    }
}

/// Whether a `Z` text from moat-local means a full mailbox.
fn is_over_quota(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("over quota") || t.contains("mailbox full")
}

impl Policy {
    pub fn new(settings: &Settings) -> Policy {
        Policy {
            auth: AuthClient::new(&settings.auth_socket),
            local: LocalClient::new(&settings.local_socket),
            hostname: settings.hostname.clone(),
        }
    }

    /// Is `path` acceptable? `authenticated`: the session may relay. `size`: announced size.
    pub async fn recipient(
        &self,
        path: &ForwardPath,
        authenticated: bool,
        size: Option<u64>,
    ) -> RcptVerdict {
        let address = recipient_address(path, &self.hostname);
        match self.local.check(&address, size).await {
            Ok(Status::Ok(_)) => RcptVerdict::Accept,
            Ok(Status::Temporary(why)) if is_over_quota(&why) => RcptVerdict::OverQuota,
            Ok(Status::Temporary(why)) => {
                warn!("recipient check of <{address}> failed for now: {why}");
                RcptVerdict::TempFail
            }
            Err(e) => {
                warn!("cannot ask moat-local about <{address}>: {e}");
                RcptVerdict::TempFail
            }
            // moat-local (through moat-auth) tells a domain we do not host apart from an
            // unknown user of ours: the first is relaying, the second a 550 5.1.1.
            Ok(Status::Permanent(why)) if why == NOT_LOCAL => {
                if authenticated {
                    RcptVerdict::Accept
                } else {
                    RcptVerdict::RelayDenied
                }
            }
            Ok(Status::Permanent(_)) => RcptVerdict::Unknown,
        }
    }

    /// Checks a login; on success also the user's address as the store spells it.
    pub async fn authenticate(
        &self,
        creds: &Credentials,
        client: IpAddr,
    ) -> (AuthVerdict, Option<String>) {
        let ip = client.to_canonical().to_string();
        match self
            .auth
            .authenticate(&creds.username, creds.password.expose(), &ip, "smtp")
            .await
        {
            Ok(AuthAnswer::Ok(user)) => (AuthVerdict::Ok, Some(user)),
            // moat-auth logs failed and throttled logins with the client's address.
            Ok(AuthAnswer::Failed) => (AuthVerdict::Invalid, None),
            Ok(AuthAnswer::Temporary(_)) => (AuthVerdict::TempFail, None),
            Err(e) => {
                warn!("cannot ask moat-auth to check a login: {e}");
                (AuthVerdict::TempFail, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::path::parse_forward_path;

    #[test]
    fn addresses() {
        let (p, _) = parse_forward_path("<Alice@Example.TEST>").expect("path");
        assert_eq!(recipient_address(&p, "mx.test"), "Alice@Example.TEST");
        let (p, _) = parse_forward_path("<\"a b\"@[192.0.2.1]>").expect("path");
        assert_eq!(recipient_address(&p, "mx.test"), "\"a b\"@[192.0.2.1]");
        let (p, _) = parse_forward_path("<postmaster>").expect("path");
        assert_eq!(recipient_address(&p, "mx.test"), "postmaster@mx.test");
    }

    #[test]
    fn quota_words() {
        assert!(is_over_quota("over quota"));
        assert!(is_over_quota("4.2.2 Mailbox full"));
        assert!(!is_over_quota("user store unavailable"));
    }
}
