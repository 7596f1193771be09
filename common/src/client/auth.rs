//! moat-auth's protocol: authenticate (`A`) and resolve (`R`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};
use crate::{info, warn};

/// The text of moat-auth's `D` reply to `R` for an address that does not exist.
pub const NO_SUCH_USER: &str = "no such user";
/// The text of moat-auth's `D` reply to `R` for an address in a domain we do not host.
pub const NOT_LOCAL: &str = "not a local domain";

/// Fields per resolved target in an `R` reply.
pub const TARGET_FIELDS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    Mailbox,
    Forward,
    /// A mailing list (docs/LISTS.md): `address` is the list's posting address and
    /// `detail` the command extension after `list-` (`None` for a post).
    List,
}

/// Where mail for an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// The mailbox user (`local@domain`), the remote address, or the list's address.
    pub address: String,
    /// For a mailbox: its folder relative to the mail root, `domain/local`.
    pub maildir: String,
    /// For a mailbox: the quota in bytes; `None` = unlimited.
    pub quota: Option<i64>,
    /// For a mailbox, the sub-address tag (`user+tag`), if any; for a list, the command
    /// extension (`subscribe`, `return-12-bob=example.org`, ...), `None` for a post.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAnswer {
    /// Authenticated as this user address.
    Ok(String),
    /// Wrong login or password (or disabled).
    Failed,
    /// Try later (store down, throttled).
    Temporary(String),
}

/// The quota moat-auth sent with a successful login (the second field of its `K`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginQuota {
    /// The user's quota in the store now, in bytes (`None` = unlimited), as in a `Target`.
    Store(Option<i64>),
    /// moat-auth sent none, or one that is not a number (an older or confused moat-auth):
    /// whatever the Maildir says stays as it is, so a bad answer never lifts a limit.
    NotSent,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The user address (moat-auth's spelling, not what the client typed).
    pub user: String,
    pub quota: LoginQuota,
}

/// moat-auth's `K` reply to `A`: the user address, then the user's quota in bytes ("" =
/// unlimited). The quota rides along so moat-imapd can apply an admin's `moat user quota` at
/// the next login, not only at the next delivery; clients that want only the address read
/// field 0 and ignore the rest.
pub fn login_reply(address: &str, quota: Option<i64>) -> Record {
    Status::Ok(address.to_string())
        .to_record()
        .field(quota.map(|q| q.to_string()).unwrap_or_default())
}

/// The quota in a `K` reply to `A` (see `login_reply`).
pub fn login_quota(r: &Record) -> LoginQuota {
    match r.text(1) {
        Ok("") => LoginQuota::Store(None),
        Ok(q) => q
            .parse()
            .map_or(LoginQuota::NotSent, |q| LoginQuota::Store(Some(q))),
        Err(_) => LoginQuota::NotSent,
    }
}

/// What a mail-access server (moat-pop3d, moat-imapd) does with moat-auth's answer to a
/// login: each case has its own reply (POP3 `[AUTH]`/`[LOGIN-DELAY]`/`[SYS/TEMP]`, IMAP
/// `[AUTHENTICATIONFAILED]`/`[UNAVAILABLE]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logged in.
    User(LoggedIn),
    /// Wrong login or password, or a disabled account.
    Failed,
    /// moat-auth did not check: too many failed logins from this login or network.
    Throttled,
    /// moat-auth or its store could not be asked: try later.
    Unavailable,
}

/// A login a pre-auth login process checked with moat-auth (`L`): the user and the one-time
/// token the mail process redeems for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub user: String,
    pub token: String,
}

/// The length of a login token: 32 random bytes in lowercase hex.
pub const TOKEN_LEN: usize = 64;

/// Whether `token` has the shape moat-auth gives its tokens (checked before it is sent on).
pub fn valid_token(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A refused `A` or `L` (never `Status::Ok`) as a `Login`, logged under `who`.
fn refusal(status: Status, login: &str, who: &str) -> Login {
    match status {
        // moat-auth's throttling answer (PROTOCOLS.md): the only temporary refusal that is
        // the client's doing.
        Status::Temporary(why) if why.contains("too many failed") => {
            info!("{who}: login {login:?} throttled: {why}");
            Login::Throttled
        }
        Status::Temporary(why) => {
            warn!("{who}: moat-auth: {why}");
            Login::Unavailable
        }
        Status::Ok(_) | Status::Permanent(_) => {
            info!("{who}: authentication failed for {login:?}");
            Login::Failed
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Targets(Vec<Target>),
    /// No such address in a domain we host.
    Unknown,
    /// The domain is not ours: relay (after AUTH) or refuse, never deliver here.
    NotLocal,
    Temporary(String),
}

impl Target {
    pub fn push_fields(&self, mut r: Record) -> Record {
        let kind = match self.kind {
            TargetKind::Mailbox => "mailbox",
            TargetKind::Forward => "forward",
            TargetKind::List => "list",
        };
        r = r
            .field(kind)
            .field(&self.address)
            .field(&self.maildir)
            .field(self.quota.map(|q| q.to_string()).unwrap_or_default())
            .field(self.detail.as_deref().unwrap_or(""));
        r
    }

    /// Reads the targets of a `K` reply (fields after the status text).
    pub fn from_reply(r: &Record) -> Result<Vec<Target>, String> {
        let rest = r.fields.len().saturating_sub(1);
        if !rest.is_multiple_of(TARGET_FIELDS) || rest == 0 {
            return Err(format!("resolve reply has {rest} target fields"));
        }
        let text = |i: usize| r.text(i).map_err(|e| e.to_string());
        (0..rest / TARGET_FIELDS)
            .map(|t| {
                let at = 1 + t * TARGET_FIELDS;
                let kind = match text(at)? {
                    "mailbox" => TargetKind::Mailbox,
                    "forward" => TargetKind::Forward,
                    "list" => TargetKind::List,
                    other => return Err(format!("unknown target kind {other:?}")),
                };
                let quota = match text(at + 3)? {
                    "" => None,
                    q => Some(q.parse().map_err(|_| format!("bad quota {q:?}"))?),
                };
                let detail = Some(text(at + 4)?.to_string()).filter(|d| !d.is_empty());
                Ok(Target {
                    kind,
                    address: text(at + 1)?.to_string(),
                    maildir: text(at + 2)?.to_string(),
                    quota,
                    detail,
                })
            })
            .collect()
    }
}

/// Why a SASL PLAIN response cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainError {
    /// Not `authzid NUL authcid NUL passwd` with a UTF-8 login and password.
    Malformed,
    /// An authorisation identity other than the login: acting for another user.
    OtherUser,
}

/// A decoded SASL PLAIN response (RFC 4616: `authzid NUL authcid NUL passwd`) → the login and
/// the password, for servers that take PLAIN (moat-pop3d, moat-imapd). The authorisation
/// identity must be empty or the login itself; login and password are UTF-8 without control
/// characters, as moat-auth's record fields are text.
pub fn plain_response(decoded: &[u8]) -> Result<(String, String), PlainError> {
    let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
    let [authz, login, password] = parts.as_slice() else {
        return Err(PlainError::Malformed);
    };
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
            .map(str::to_string)
    };
    let (Some(login), Some(password)) = (text(login), text(password)) else {
        return Err(PlainError::Malformed);
    };
    if !authz.is_empty() && *authz != login.as_bytes() {
        return Err(PlainError::OtherUser);
    }
    Ok((login, password))
}

/// A client of `auth.sock`.
#[derive(Debug, Clone)]
pub struct AuthClient {
    path: PathBuf,
    timeout: Duration,
}

impl AuthClient {
    pub fn new(path: &Path) -> AuthClient {
        AuthClient {
            path: path.to_path_buf(),
            timeout: Duration::from_secs(30),
        }
    }

    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
        service: &str,
    ) -> std::io::Result<AuthAnswer> {
        Ok(self
            .authenticate_reply(login, password, client_ip, service)
            .await?
            .0)
    }

    /// `authenticate`, with the whole reply (a `K` also carries the quota, `login_quota`).
    async fn authenticate_reply(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
        service: &str,
    ) -> std::io::Result<(AuthAnswer, Record)> {
        let req = Record::new(b'A')
            .field(login)
            .field(password)
            .field(client_ip)
            .field(service);
        let (status, record) = self.ask(&req).await?;
        let answer = match status {
            Status::Ok(user) => AuthAnswer::Ok(user),
            Status::Permanent(_) => AuthAnswer::Failed,
            Status::Temporary(why) => AuthAnswer::Temporary(why),
        };
        Ok((answer, record))
    }

    /// A login for a mail-access `service` (`pop3`, `imap`) from `client_ip`, with the refusals
    /// logged under `who` (the peer and session, for the log).
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
        service: &str,
        who: &str,
    ) -> Login {
        match self
            .authenticate_reply(login, password, client_ip, service)
            .await
            .map(|(answer, record)| (answer, login_quota(&record)))
        {
            Ok((AuthAnswer::Ok(user), quota)) => {
                if quota == LoginQuota::NotSent {
                    warn!("{who}: moat-auth sent no usable quota for {user}");
                }
                Login::User(LoggedIn { user, quota })
            }
            Ok((AuthAnswer::Failed, _)) => refusal(Status::Permanent(String::new()), login, who),
            Ok((AuthAnswer::Temporary(why), _)) => refusal(Status::Temporary(why), login, who),
            Err(e) => {
                warn!("{who}: cannot ask moat-auth: {e}");
                Login::Unavailable
            }
        }
    }

    /// A login in a pre-auth login process (moat-imap-login, moat-pop3-login): moat-auth's `L`,
    /// which checks the password as `A` does and, on success, issues a one-time token that the
    /// mail process redeems (`redeem`) when the connection is handed to it. The `Err` is never
    /// `Login::User`; refusals are logged under `who` as for `login`.
    pub async fn login_ticket(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
        service: &str,
        who: &str,
    ) -> Result<Ticket, Login> {
        let req = Record::new(b'L')
            .field(login)
            .field(password)
            .field(client_ip)
            .field(service);
        match self.ask(&req).await {
            Ok((Status::Ok(user), record)) => match record.text(2) {
                Ok(token) if valid_token(token) => Ok(Ticket {
                    user,
                    token: token.to_string(),
                }),
                _ => {
                    warn!("{who}: moat-auth sent no usable login token for {user}");
                    Err(Login::Unavailable)
                }
            },
            Ok((status, _)) => Err(refusal(status, login, who)),
            Err(e) => {
                warn!("{who}: cannot ask moat-auth: {e}");
                Err(Login::Unavailable)
            }
        }
    }

    /// Redeems a login process's token (moat-auth's `T`) in the mail process: the user it was
    /// issued for, or `Login::Failed` for a token moat-auth does not know (forged, replayed,
    /// expired or for another service), or `Login::Unavailable`.
    pub async fn redeem(
        &self,
        token: &str,
        service: &str,
        client_ip: &str,
        who: &str,
    ) -> Result<LoggedIn, Login> {
        let req = Record::new(b'T')
            .field(token)
            .field(service)
            .field(client_ip);
        match self.ask(&req).await {
            Ok((Status::Ok(user), record)) => Ok(LoggedIn {
                user,
                quota: login_quota(&record),
            }),
            Ok((Status::Permanent(why), _)) => {
                warn!("{who}: moat-auth refused the login token: {why}");
                Err(Login::Failed)
            }
            Ok((Status::Temporary(why), _)) => {
                warn!("{who}: moat-auth: {why}");
                Err(Login::Unavailable)
            }
            Err(e) => {
                warn!("{who}: cannot ask moat-auth: {e}");
                Err(Login::Unavailable)
            }
        }
    }

    /// One request, its status reply (and the whole record), within the timeout.
    async fn ask(&self, req: &Record) -> std::io::Result<(Status, Record)> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            conn.send(req).await?;
            conn.status().await
        })
        .await
    }

    pub async fn resolve(&self, address: &str) -> std::io::Result<Resolved> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            conn.send(&Record::new(b'R').field(address)).await?;
            let (status, record) = conn.status().await?;
            Ok(match status {
                Status::Ok(_) => Resolved::Targets(
                    Target::from_reply(&record)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
                ),
                // Only "no such user" (or a request moat-auth found malformed, i.e. an address
                // that can never exist) means Unknown. Any other refusal, such as "permission
                // denied" from a wrong peers_* setting, is a configuration fault: mail waits
                // for the admin instead of bouncing.
                Status::Permanent(why)
                    if why == NO_SUCH_USER || why.starts_with("malformed request") =>
                {
                    Resolved::Unknown
                }
                Status::Permanent(why) if why == NOT_LOCAL => Resolved::NotLocal,
                Status::Permanent(why) => Resolved::Temporary(format!("moat-auth refused: {why}")),
                Status::Temporary(why) => Resolved::Temporary(why),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(
            plain_response(b"\0alice@x.test\0pw"),
            Ok(("alice@x.test".into(), "pw".into()))
        );
        assert!(plain_response(b"alice@x.test\0alice@x.test\0pw").is_ok());
        assert_eq!(
            plain_response(b"bob@x.test\0alice@x.test\0pw"),
            Err(PlainError::OtherUser)
        );
        for bad in [
            &b"alice\0pw"[..],
            b"\0\0pw",
            b"\0a\0",
            b"\0a\0p\0q",
            b"\0a\n\0p",
        ] {
            assert_eq!(plain_response(bad), Err(PlainError::Malformed));
        }
    }

    #[test]
    fn targets_round_trip() {
        let targets = vec![
            Target {
                kind: TargetKind::Mailbox,
                address: "a@example.test".into(),
                maildir: "example.test/a".into(),
                quota: Some(1 << 20),
                detail: Some("lists".into()),
            },
            Target {
                kind: TargetKind::Forward,
                address: "x@remote.example".into(),
                maildir: String::new(),
                quota: None,
                detail: None,
            },
            Target {
                kind: TargetKind::List,
                address: "dev@example.test".into(),
                maildir: String::new(),
                quota: None,
                detail: Some("return-7-bob=remote.example".into()),
            },
        ];
        let mut r = Status::Ok("2 targets".into()).to_record();
        for t in &targets {
            r = t.push_fields(r);
        }
        assert_eq!(Target::from_reply(&r), Ok(targets));
        assert!(Target::from_reply(&Status::Ok("none".into()).to_record()).is_err());
        assert!(Target::from_reply(&Record::new(b'K').field("x").field("mailbox")).is_err());
    }

    #[test]
    fn login_replies_carry_the_quota() {
        let r = login_reply("a@example.test", Some(1 << 20));
        assert_eq!(
            Status::from_record(&r),
            Ok(Status::Ok("a@example.test".into()))
        );
        assert_eq!(login_quota(&r), LoginQuota::Store(Some(1 << 20)));
        let r = login_reply("a@example.test", None);
        assert_eq!(login_quota(&r), LoginQuota::Store(None));
        // An older moat-auth (no field) or garbage: the Maildir's quota is left alone.
        assert_eq!(
            login_quota(&Status::Ok("a@example.test".into()).to_record()),
            LoginQuota::NotSent
        );
        let r = Status::Ok("a@x".into()).to_record().field("lots");
        assert_eq!(login_quota(&r), LoginQuota::NotSent);
    }
}
