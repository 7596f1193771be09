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
//! Senders, after AUTH with `sender_login_match` on (Postfix's `reject_sender_login_mismatch`):
//! MAIL FROM must be owned by the login, or it gets 553 5.7.1. The null sender is never owned
//! (a user does not send bounces). The login itself is owned (any case). Any other address is
//! resolved with moat-auth `R`; it is owned when a `mailbox` target is the login:
//! - its sub-address: the address is the login's local part, one delimiter character and the
//!   mailbox target's tag, in the login's domain;
//! - otherwise (an alias that delivers to the login, the login in an alias of its domain) only
//!   if that is not the domain's catch-all answering: `R` does not say which step matched, so
//!   an address of the same domain that cannot exist (24 random letters and digits) is
//!   resolved too. If it is unknown there is no catch-all; if it resolves to the very same
//!   targets, the address is indistinguishable from the catch-all and is refused (an alias
//!   whose targets are exactly the catch-all's is refused with it).
//!
//! moat-auth unreachable or answering `Z`: 451 4.3.0.
//!
//! SECURITY: no decision is made here on what the client says alone; the answers come from
//! moat-local and moat-auth, and anything unexpected (an I/O error, a timeout, a garbled
//! answer) is a temporary failure, never an accept. Passwords go to moat-auth and nowhere
//! else (not logged, not kept).

use std::net::IpAddr;

use moat_common::client::auth::{AuthAnswer, AuthClient, NOT_LOCAL, Resolved, Target, TargetKind};
use moat_common::client::local::LocalClient;
use moat_common::warn;
use moat_common::wire::Status;

use super::settings::Settings;
use crate::proto::{
    AuthVerdict, Credentials, ForwardPath, Path, RcptVerdict, ReversePath, SenderVerdict,
};

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

/// Letters and digits in the local part of the catch-all probe: nothing an admin would create,
/// and no delimiter or `-`, so no sub-address or list command address can match it.
const PROBE_LEN: usize = 24;

/// A local part that is no user, alias or list (see the module docs).
fn probe_local() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..PROBE_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `address` (`local@domain` as in the envelope) is a sub-address of `login` according to the
/// mailbox target's `tag`: `local` = login's local part + one delimiter + tag, same domain.
fn is_subaddress(address: &str, login: &str, tag: &str) -> bool {
    let (Some((local, domain)), Some((login_local, login_domain))) =
        (address.rsplit_once('@'), login.rsplit_once('@'))
    else {
        return false;
    };
    if !domain.eq_ignore_ascii_case(login_domain) || tag.is_empty() {
        return false;
    }
    let (Some(base), Some(rest)) = (
        local.get(..login_local.len()),
        local.get(login_local.len()..),
    ) else {
        return false;
    };
    let mut chars = rest.chars();
    let delimiter = chars.next();
    base.eq_ignore_ascii_case(login_local)
        && delimiter.is_some_and(|c| c.is_ascii_punctuation() && c != '@')
        && chars.as_str().eq_ignore_ascii_case(tag)
}

/// The targets as a comparable set (kind, address, tag; lower-cased).
fn target_set(targets: &[Target]) -> Vec<(u8, String, String)> {
    let mut set: Vec<_> = targets
        .iter()
        .map(|t| {
            let kind = match t.kind {
                TargetKind::Mailbox => 0,
                TargetKind::Forward => 1,
                TargetKind::List => 2,
            };
            let detail = t.detail.as_deref().unwrap_or("").to_ascii_lowercase();
            (kind, t.address.to_ascii_lowercase(), detail)
        })
        .collect();
    set.sort();
    set.dedup();
    set
}

/// Whether a `Z` text from moat-local means a full mailbox.
fn is_over_quota(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("over quota") || t.contains("mailbox full")
}

/// An address in `path`'s domain that no one has (see the module docs).
fn probe_address(path: &Path) -> String {
    format!("{}@{}", probe_local(), path.domain())
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

    /// May `login` (moat-auth's spelling) use `from` as its envelope sender? See the module
    /// docs for what a user owns.
    pub async fn sender(&self, from: &ReversePath, login: &str) -> SenderVerdict {
        let not_owned = || SenderVerdict::NotOwned(login.to_string());
        let ReversePath::Path(path) = from else {
            return not_owned();
        };
        let address = path.to_string();
        if address.eq_ignore_ascii_case(login) {
            return SenderVerdict::Accept;
        }
        let targets = match self.resolve(&address).await {
            Ok(Some(targets)) => targets,
            Ok(None) => return not_owned(),
            Err(verdict) => return verdict,
        };
        let mine: Vec<&Target> = targets
            .iter()
            .filter(|t| t.kind == TargetKind::Mailbox && t.address.eq_ignore_ascii_case(login))
            .collect();
        if mine.is_empty() {
            return not_owned();
        }
        if mine.iter().any(|t| {
            t.detail
                .as_deref()
                .is_some_and(|tag| is_subaddress(&address, login, tag))
        }) {
            return SenderVerdict::Accept;
        }
        // An alias of the login, or the catch-all: what does the catch-all give?
        match self.resolve(&probe_address(path)).await {
            Ok(None) => SenderVerdict::Accept,
            Ok(Some(catchall)) if target_set(&catchall) != target_set(&targets) => {
                SenderVerdict::Accept
            }
            Ok(Some(_)) => not_owned(),
            Err(verdict) => verdict,
        }
    }

    /// moat-auth's `R`: the targets, `None` for an unknown or foreign address, or the verdict
    /// for a failure.
    async fn resolve(&self, address: &str) -> Result<Option<Vec<Target>>, SenderVerdict> {
        match self.auth.resolve(address).await {
            Ok(Resolved::Targets(targets)) => Ok(Some(targets)),
            Ok(Resolved::Unknown | Resolved::NotLocal) => Ok(None),
            Ok(Resolved::Temporary(why)) => {
                warn!("sender check of <{address}> failed for now: {why}");
                Err(SenderVerdict::TempFail)
            }
            Err(e) => {
                warn!("cannot ask moat-auth about sender <{address}>: {e}");
                Err(SenderVerdict::TempFail)
            }
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
    fn subaddresses_of_the_login() {
        let login = "alice@example.test";
        assert!(is_subaddress("alice+tag@example.test", login, "tag"));
        assert!(is_subaddress("Alice-Tag@Example.TEST", login, "tag"));
        assert!(!is_subaddress("alice+tag@other.test", login, "tag"));
        assert!(!is_subaddress("alicetag@example.test", login, "ag"));
        assert!(!is_subaddress("alice+tag@example.test", login, "other"));
        assert!(!is_subaddress("alice+@example.test", login, ""));
        assert!(!is_subaddress("bob+tag@example.test", login, "tag"));
        assert!(!is_subaddress("al@example.test", login, "tag"));
    }

    #[test]
    fn probes_are_plain_and_random() {
        let (a, b) = (probe_local(), probe_local());
        assert_eq!(a.len(), PROBE_LEN);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn quota_words() {
        assert!(is_over_quota("over quota"));
        assert!(is_over_quota("4.2.2 Mailbox full"));
        assert!(!is_over_quota("user store unavailable"));
    }
}
