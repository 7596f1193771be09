//! moat-auth's requests (docs/PROTOCOLS.md, "moat-auth"): `A` authenticate, `L` login for a
//! ticket (the password check of `A`, then a ticket from `tickets`), `T` redeem a ticket, and
//! `R` resolve. The peer has already been checked by the server loop; this file checks every
//! field again and turns store answers into `K`/`D`/`Z` replies.
//!
//! SECURITY: fields are length-checked before anything else (login ≤ 320, password ≤ 1024,
//! address ≤ 320 bytes) and must be UTF-8. A throttled login is refused before the store or
//! the password is looked at. Passwords are never logged, never echoed in a reply and never kept
//! beyond the request; failed logins are logged with login, client IP and service for the admin
//! (and fail2ban). Argon2 verifications run at most one per CPU at a time, which bounds the memory
//! a burst of logins can take (19 MiB each). Replies to peers carry fixed texts, never store
//! error details (which may name hosts or files). `A` and `L` share one code path
//! (`check_login`), so a login process gets exactly the checks, throttling and logs of `A`.
//! Tokens are never logged: a log reader could otherwise redeem one within its lifetime.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use moat_common::client::auth::{Target as WireTarget, TargetKind, login_reply};
use moat_common::fdpass::Peer;
use moat_common::wire::{Record, Status};
use moat_common::{error, info, warn};
use tokio::sync::Semaphore;

use super::store::StoreSlot;
use super::throttle::{self, Lockout, Policy, Scope, Throttle};
use super::tickets::{self, LoggedIn, Refused, Tickets};
use crate::error::StoreError;
use crate::resolve::{Resolution, ResolveOptions, Target};

/// Longest login accepted (an address is at most 64 + 1 + 253 octets, with room to spare).
pub const MAX_LOGIN: usize = 320;
/// Longest password accepted.
pub const MAX_PASSWORD: usize = 1024;
/// Longest address accepted in `R`.
pub const MAX_ADDRESS: usize = 320;
/// Longest client IP text accepted (IPv6 with a zone fits easily).
pub const MAX_CLIENT_IP: usize = 64;
/// The services that may ask for authentication.
pub const SERVICES: &[&str] = &["smtp", "imap", "pop3"];

pub const AUTH_FAILED: &str = "authentication failed";
pub const THROTTLED: &str = "too many failed logins, try later";
pub const NO_SUCH_USER: &str = moat_common::client::auth::NO_SUCH_USER;
/// The `D` text for an address in a domain we do not host.
pub const NOT_LOCAL: &str = moat_common::client::auth::NOT_LOCAL;
pub const UNAVAILABLE: &str = "user store unavailable, try later";
pub const ALIAS_LOOP: &str = "alias loop, try later";
pub const TOO_MANY_TARGETS: &str = "too many targets for one reply";
/// The `Z` text for `L` when [`tickets::MAX_OUTSTANDING`] tickets are waiting.
pub const TOO_MANY_PENDING: &str = "too many pending logins, try later";
/// The `Z` text for `L` when no token could be made (the OS RNG failed).
pub const UNAVAILABLE_TICKET: &str = "cannot issue a login ticket, try later";
/// The `D` text for `T` with a token that is not (or no longer) outstanding for that service.
pub const UNKNOWN_TICKET: &str = "unknown or expired token";
/// Longest token accepted in `T` (the ones we issue are exactly this long).
pub const MAX_TOKEN: usize = 2 * tickets::TOKEN_BYTES;

/// A password that checked out (`check_login`).
struct Login<'r> {
    user: LoggedIn,
    /// The client IP as logged ("-" if none).
    ip: &'r str,
    service: &'r str,
}

/// Answers requests; shared by every connection.
#[derive(Debug)]
pub struct Handler {
    store: Arc<StoreSlot>,
    resolve: ResolveOptions,
    throttle: Mutex<Throttle>,
    /// Tickets issued by `L`, waiting for `T`.
    tickets: Mutex<Tickets>,
    /// Bounds concurrent argon2 verifications.
    hash_slots: Semaphore,
}

impl Handler {
    pub fn new(store: Arc<StoreSlot>, resolve: ResolveOptions, policy: Policy) -> Handler {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Handler {
            store,
            resolve,
            throttle: Mutex::new(Throttle::new(policy)),
            tickets: Mutex::new(Tickets::default()),
            hash_slots: Semaphore::new(cpus.clamp(1, 64)),
        }
    }

    /// The reply to one request from `peer` (already allowed to make it).
    pub async fn handle(&self, req: &Record, peer: &Peer) -> Record {
        match req.kind {
            b'A' => self.authenticate(req, peer).await,
            b'L' => self.login_ticket(req, peer).await,
            b'T' => self.redeem(req, peer),
            b'R' => self.resolve(req, peer).await,
            k if super::lists::KINDS.contains(&k) => match self.store.get() {
                Some(store) => super::lists::handle(store, req).await,
                None => Status::Temporary(UNAVAILABLE.into()).to_record(),
            },
            other => {
                warn!(
                    "unknown request kind {:?} from uid {} pid {}",
                    char::from(other),
                    peer.uid,
                    peer.pid
                );
                Status::Permanent("unknown request".into()).to_record()
            }
        }
    }

    /// `A`: the password check; `K` [user address, quota].
    async fn authenticate(&self, req: &Record, peer: &Peer) -> Record {
        match self.check_login(req, peer).await {
            Ok(login) => {
                info!(
                    "{} login {} from {}",
                    login.service, login.user.address, login.ip
                );
                // The quota too: moat-imapd applies it to the Maildir at login.
                login_reply(&login.user.address, login.user.quota)
            }
            Err(refusal) => refusal,
        }
    }

    /// `L`: the password check of `A`, and a ticket for the mail process instead of the login
    /// itself; `K` [user address, quota, token].
    async fn login_ticket(&self, req: &Record, peer: &Peer) -> Record {
        let login = match self.check_login(req, peer).await {
            Ok(login) => login,
            Err(refusal) => return refusal,
        };
        let issued = self
            .tickets()
            .issue(login.user.clone(), login.service, Instant::now());
        match issued {
            Ok(token) => {
                info!(
                    "{} login {} from {} (ticket issued to uid {} pid {})",
                    login.service, login.user.address, login.ip, peer.uid, peer.pid
                );
                login_reply(&login.user.address, login.user.quota).field(token)
            }
            Err(Refused::Full) => {
                warn!(
                    "{} login {} from {}: {} tickets are waiting to be redeemed; refused, try later",
                    login.service,
                    login.user.address,
                    login.ip,
                    tickets::MAX_OUTSTANDING
                );
                Status::Temporary(TOO_MANY_PENDING.into()).to_record()
            }
            Err(Refused::Random(why)) => {
                error!(
                    "{} login {} from {}: no ticket: {why}",
                    login.service, login.user.address, login.ip
                );
                Status::Temporary(UNAVAILABLE_TICKET.into()).to_record()
            }
        }
    }

    /// `T`: the login behind a ticket, which is spent; `K` [user address, quota] as for `A`.
    fn redeem(&self, req: &Record, peer: &Peer) -> Record {
        let (token, service, ip) = match redeem_fields(req) {
            Ok(fields) => fields,
            Err(why) => {
                warn!(
                    "malformed redeem request from uid {} pid {}: {why}",
                    peer.uid, peer.pid
                );
                return Status::Permanent(format!("malformed request: {why}")).to_record();
            }
        };
        let shown_ip = if ip.is_empty() { "-" } else { ip };
        match self.tickets().redeem(token, service, Instant::now()) {
            Some(user) => {
                info!(
                    "{service} ticket of {} from {shown_ip} redeemed by uid {} pid {}",
                    user.address, peer.uid, peer.pid
                );
                login_reply(&user.address, user.quota)
            }
            None => {
                // Expired (a slow handover) or never issued: a login process that forges
                // tokens is compromised, so say who sent it on.
                warn!(
                    "{service} ticket from {shown_ip} refused (unknown, expired or for another service), sent by uid {} pid {}",
                    peer.uid, peer.pid
                );
                Status::Permanent(UNKNOWN_TICKET.into()).to_record()
            }
        }
    }

    /// The password check behind `A` and `L`: fields, throttling, the store, argon2 (bounded),
    /// and the logs of failures. `Err` is the reply to send.
    async fn check_login<'r>(&self, req: &'r Record, peer: &Peer) -> Result<Login<'r>, Record> {
        let (login, password, ip, service) = match auth_fields(req) {
            Ok(fields) => fields,
            Err(why) => {
                warn!(
                    "malformed authentication request from uid {} pid {}: {why}",
                    peer.uid, peer.pid
                );
                return Err(Status::Permanent(format!("malformed request: {why}")).to_record());
            }
        };
        let login_key = throttle::login_key(login);
        let ip_key = throttle::ip_key(ip);
        let shown_ip = if ip.is_empty() { "-" } else { ip };

        let locked = self
            .throttle()
            .check(&login_key, ip_key.as_deref(), Instant::now());
        if let Some(locked) = locked {
            if locked.first_refusal {
                let what = match locked.scope {
                    Scope::Login => format!("login {login_key:?}"),
                    Scope::Ip => format!("client {}", ip_key.as_deref().unwrap_or("-")),
                };
                warn!(
                    "{service} login {login:?} from {shown_ip} refused without checking: {what} is locked for {} s more (too many failed logins)",
                    locked.remaining.as_secs().max(1)
                );
            }
            return Err(Status::Temporary(THROTTLED.into()).to_record());
        }

        let Some(store) = self.store.get() else {
            warn!("{service} login {login:?} from {shown_ip}: the user store is not open yet");
            return Err(Status::Temporary(UNAVAILABLE.into()).to_record());
        };
        let result = {
            let _slot = self.hash_slots.acquire().await.ok();
            store.authenticate(login, password).await
        };
        match result {
            Ok(Some(user)) => {
                self.throttle().succeeded(&login_key);
                Ok(Login {
                    user: LoggedIn {
                        address: user.address,
                        quota: user.quota_bytes,
                    },
                    ip: shown_ip,
                    service,
                })
            }
            Ok(None) => {
                let started = self
                    .throttle()
                    .failed(&login_key, ip_key.as_deref(), Instant::now());
                warn!("{service} authentication failed for {login:?} from {shown_ip}");
                for Lockout { scope, duration } in started {
                    let what = match scope {
                        Scope::Login => format!("login {login_key:?}"),
                        Scope::Ip => format!("client {}", ip_key.as_deref().unwrap_or("-")),
                    };
                    warn!(
                        "too many failed logins: {what} locked for {} s",
                        duration.as_secs()
                    );
                }
                Err(Status::Permanent(AUTH_FAILED.into()).to_record())
            }
            Err(e) => {
                error!("{service} login {login:?} from {shown_ip}: {e}");
                Err(Status::Temporary(temporary_reason(&e).into()).to_record())
            }
        }
    }

    async fn resolve(&self, req: &Record, peer: &Peer) -> Record {
        let address = match resolve_fields(req) {
            Ok(address) => address,
            Err(why) => {
                warn!(
                    "malformed resolve request from uid {} pid {}: {why}",
                    peer.uid, peer.pid
                );
                return Status::Permanent(format!("malformed request: {why}")).to_record();
            }
        };
        let Some(store) = self.store.get() else {
            return Status::Temporary(UNAVAILABLE.into()).to_record();
        };
        match store.resolve(address, &self.resolve).await {
            Ok(Resolution::Deliver(targets)) => {
                let text = match targets.len() {
                    1 => "1 target".to_string(),
                    n => format!("{n} targets"),
                };
                let reply = targets
                    .iter()
                    .map(to_wire)
                    .fold(Status::Ok(text).to_record(), |r, t| t.push_fields(r));
                if let Err(e) = reply.encode() {
                    error!(
                        "resolving {address:?}: {} targets do not fit in one reply ({e}); mail for it waits until the alias is made smaller",
                        targets.len()
                    );
                    return Status::Temporary(TOO_MANY_TARGETS.into()).to_record();
                }
                reply
            }
            Ok(Resolution::Unknown) | Err(StoreError::InvalidAddress(_)) => {
                Status::Permanent(NO_SUCH_USER.into()).to_record()
            }
            Ok(Resolution::NotLocal) => Status::Permanent(NOT_LOCAL.into()).to_record(),
            Err(e) => {
                error!("resolving {address:?}: {e}");
                Status::Temporary(temporary_reason(&e).into()).to_record()
            }
        }
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        // The state stays consistent even if a holder panicked (every update is complete
        // before anything that could panic), so a poisoned lock is still usable.
        self.throttle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tickets(&self) -> MutexGuard<'_, Tickets> {
        // As for the throttle: every update is complete before anything that could panic.
        self.tickets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a `Z` says for a store error (details are logged, not sent).
fn temporary_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::AliasLoop(_) => ALIAS_LOOP,
        _ => UNAVAILABLE,
    }
}

/// The store's target as the wire carries it.
fn to_wire(target: &Target) -> WireTarget {
    match target {
        Target::Mailbox {
            user,
            maildir,
            quota_bytes,
            detail,
        } => WireTarget {
            kind: TargetKind::Mailbox,
            address: user.clone(),
            maildir: maildir.clone(),
            quota: *quota_bytes,
            detail: detail.clone(),
        },
        Target::Forward(address) => WireTarget {
            kind: TargetKind::Forward,
            address: address.clone(),
            maildir: String::new(),
            quota: None,
            detail: None,
        },
        // The command extension travels in the detail field (PROTOCOLS.md).
        Target::List {
            list_address,
            extension,
        } => WireTarget {
            kind: TargetKind::List,
            address: list_address.clone(),
            maildir: String::new(),
            quota: None,
            detail: extension.clone(),
        },
    }
}

/// Field `i` as text of at most `max` bytes.
fn field<'r>(req: &'r Record, i: usize, max: usize, what: &str) -> Result<&'r str, String> {
    let bytes = req
        .fields
        .get(i)
        .ok_or_else(|| format!("{what} is missing"))?;
    if bytes.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
}

/// `A` [login, password, client IP, service].
fn auth_fields(req: &Record) -> Result<(&str, &str, &str, &str), String> {
    if req.fields.len() != 4 {
        return Err(format!("{} fields instead of 4", req.fields.len()));
    }
    let login = field(req, 0, MAX_LOGIN, "login")?;
    let password = field(req, 1, MAX_PASSWORD, "password")?;
    let ip = field(req, 2, MAX_CLIENT_IP, "client IP")?;
    let service = field(req, 3, 16, "service")?;
    if !SERVICES.contains(&service) {
        return Err(format!("unknown service {service:?}"));
    }
    if login.is_empty() {
        return Err("empty login".into());
    }
    Ok((login, password, ip, service))
}

/// `T` [token, service, client IP].
fn redeem_fields(req: &Record) -> Result<(&str, &str, &str), String> {
    if req.fields.len() != 3 {
        return Err(format!("{} fields instead of 3", req.fields.len()));
    }
    let token = field(req, 0, MAX_TOKEN, "token")?;
    let service = field(req, 1, 16, "service")?;
    let ip = field(req, 2, MAX_CLIENT_IP, "client IP")?;
    if !SERVICES.contains(&service) {
        return Err(format!("unknown service {service:?}"));
    }
    Ok((token, service, ip))
}

/// `R` [address].
fn resolve_fields(req: &Record) -> Result<&str, String> {
    if req.fields.len() != 1 {
        return Err(format!("{} fields instead of 1", req.fields.len()));
    }
    field(req, 0, MAX_ADDRESS, "address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_checks() {
        let ok = Record::new(b'A')
            .field("a@x.test")
            .field("pw")
            .field("")
            .field("imap");
        assert_eq!(auth_fields(&ok), Ok(("a@x.test", "pw", "", "imap")));
        let long_login = Record::new(b'A')
            .field("a".repeat(MAX_LOGIN + 1))
            .field("pw")
            .field("")
            .field("smtp");
        assert!(auth_fields(&long_login).is_err());
        let long_pw = Record::new(b'A')
            .field("a@x.test")
            .field("p".repeat(MAX_PASSWORD + 1))
            .field("")
            .field("smtp");
        let err = auth_fields(&long_pw).expect_err("too long");
        assert!(!err.contains("ppp"), "never echo the password: {err}");
        let bad_service = Record::new(b'A')
            .field("a@x.test")
            .field("pw")
            .field("")
            .field("ftp");
        assert!(auth_fields(&bad_service).is_err());
        let not_utf8 = Record::new(b'A')
            .field("a@x.test")
            .field([0xff, 0xfe])
            .field("")
            .field("smtp");
        assert!(auth_fields(&not_utf8).is_err());
        assert!(auth_fields(&Record::new(b'A').field("a@x.test")).is_err());

        let token = "0f".repeat(32);
        let redeem = Record::new(b'T')
            .field(&token)
            .field("pop3")
            .field("192.0.2.1");
        assert_eq!(
            redeem_fields(&redeem),
            Ok((token.as_str(), "pop3", "192.0.2.1"))
        );
        let long_token = Record::new(b'T')
            .field("0".repeat(MAX_TOKEN + 1))
            .field("imap")
            .field("");
        assert!(redeem_fields(&long_token).is_err());
        let bad_service = Record::new(b'T').field(&token).field("ftp").field("");
        assert!(redeem_fields(&bad_service).is_err());
        assert!(redeem_fields(&Record::new(b'T').field(&token).field("imap")).is_err());

        assert_eq!(
            resolve_fields(&Record::new(b'R').field("a@x.test")),
            Ok("a@x.test")
        );
        assert!(resolve_fields(&Record::new(b'R').field("a".repeat(MAX_ADDRESS + 1))).is_err());
        assert!(resolve_fields(&Record::new(b'R')).is_err());
        assert!(resolve_fields(&Record::new(b'R').field("a").field("b")).is_err());
    }

    #[test]
    fn targets_on_the_wire() {
        let mailbox = Target::Mailbox {
            user: "a@x.test".into(),
            maildir: "x.test/a".into(),
            quota_bytes: Some(100),
            detail: Some("tag".into()),
        };
        let w = to_wire(&mailbox);
        assert_eq!(w.kind, TargetKind::Mailbox);
        assert_eq!(
            (w.address.as_str(), w.maildir.as_str(), w.quota),
            ("a@x.test", "x.test/a", Some(100))
        );
        assert_eq!(w.detail.as_deref(), Some("tag"));
        let w = to_wire(&Target::Forward("r@remote.example".into()));
        assert_eq!(w.kind, TargetKind::Forward);
        assert_eq!((w.maildir.as_str(), w.quota), ("", None));
        let w = to_wire(&Target::List {
            list_address: "dev@x.test".into(),
            extension: Some("sc.ab12-bob=y.test".into()),
        });
        assert_eq!(w.kind, TargetKind::List);
        assert_eq!(
            (w.address.as_str(), w.maildir.as_str(), w.quota),
            ("dev@x.test", "", None)
        );
        assert_eq!(w.detail.as_deref(), Some("sc.ab12-bob=y.test"));
    }
}
