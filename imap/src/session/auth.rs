//! The not-authenticated state's commands: STARTTLS (RFC 3501 §6.2.1), LOGIN (§6.2.3),
//! AUTHENTICATE PLAIN (§6.2.2, RFC 4616) with SASL-IR (RFC 4959) or a continuation, and what
//! follows moat-auth's answer: the user's Maildir is opened (created at the first login, with
//! the special-use folders), the quota moat-auth sent with the answer is written into its
//! `maildirsize` (as moat-local does at delivery, so an admin's `moat user quota` shows in
//! GETQUOTA and limits APPEND from the next login on), and the session is authenticated.
//!
//! SECURITY: passwords are checked by moat-auth only; without TLS they are refused
//! (`[PRIVACYREQUIRED]`) unless this connection may log in in plaintext (loopback + setting).
//! A password never reaches a log line (`Password` prints as `***`). The user we act for is
//! moat-auth's answer, never the name the client typed.

use std::borrow::Cow;
use std::fmt;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::secret::Secret;
use moat_common::client::auth::{LoggedIn, Login, LoginQuota, PlainError, plain_response};
use moat_common::daemon::user_maildir::user_maildir;
use moat_common::{error, info, warn};
use moat_maildir::Quota;

use super::{Flow, Session, State, User, blocking, response};
use crate::mailbox::special::SPECIAL_USE;
use crate::mailbox::store::{Store, StoreError};
use crate::mailbox::subscriptions;

/// A password on its way to moat-auth; prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A login or password as text moat-auth can take (UTF-8, no control characters).
fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
        .map(str::to_string)
}

impl Session {
    fn plaintext_ok(&self) -> bool {
        self.tls || self.config.plaintext_allowed
    }

    fn privacy_required(&self, tag: &str, out: &mut Vec<u8>) -> Flow {
        response::no(
            out,
            tag,
            "[PRIVACYREQUIRED] Plaintext logins are not allowed without TLS: use STARTTLS or \
             port 993.",
        );
        Flow::Continue
    }

    pub(super) fn starttls(&mut self, tag: &str, out: &mut Vec<u8>) -> Flow {
        if self.is_authenticated() {
            return self.bad(out, tag, "Already logged in.");
        }
        if self.tls {
            return self.bad(out, tag, "TLS is already active.");
        }
        if !self.config.tls_available {
            return self.bad(out, tag, "TLS is not available.");
        }
        response::ok(out, tag, "Begin TLS negotiation now.");
        Flow::StartTls
    }

    /// The TLS handshake after STARTTLS succeeded: capabilities change (RFC 3501 §6.2.1).
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    pub(super) fn login(
        &mut self,
        tag: String,
        username: AString<'static>,
        password: Secret<AString<'static>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        if self.is_authenticated() {
            return self.bad(out, &tag, "Already logged in.");
        }
        if !self.plaintext_ok() {
            return self.privacy_required(&tag, out);
        }
        match (
            text(username.as_ref()),
            text(password.declassify().as_ref()),
        ) {
            (Some(login), Some(password)) => Flow::Login {
                tag,
                login,
                password: Password(password),
            },
            _ => {
                response::no(out, &tag, "[AUTHENTICATIONFAILED] Authentication failed.");
                Flow::Continue
            }
        }
    }

    pub(super) fn authenticate(
        &mut self,
        tag: String,
        mechanism: AuthMechanism<'static>,
        initial: Option<Secret<Cow<'static, [u8]>>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        if self.is_authenticated() {
            return self.bad(out, &tag, "Already logged in.");
        }
        if mechanism != AuthMechanism::Plain {
            response::no(
                out,
                &tag,
                "[CANNOT] Unsupported authentication mechanism: use PLAIN.",
            );
            return Flow::Continue;
        }
        if !self.plaintext_ok() {
            return self.privacy_required(&tag, out);
        }
        match initial {
            Some(data) => self.plain(tag, data.declassify(), out),
            None => {
                out.extend_from_slice(b"+ \r\n");
                self.state = State::Sasl { tag };
                Flow::Continue
            }
        }
    }

    /// The response to the `+` of AUTHENTICATE; `None`: cancelled with `*`.
    pub(super) fn sasl_response(
        &mut self,
        tag: String,
        data: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        match data {
            Some(data) => self.plain(tag, &data, out),
            None => self.bad(out, &tag, "AUTHENTICATE cancelled."),
        }
    }

    fn plain(&mut self, tag: String, decoded: &[u8], out: &mut Vec<u8>) -> Flow {
        match plain_response(decoded) {
            Ok((login, password)) => Flow::Login {
                tag,
                login,
                password: Password(password),
            },
            Err(PlainError::Malformed) => {
                response::no(out, &tag, "[AUTHENTICATIONFAILED] Authentication failed.");
                Flow::Continue
            }
            Err(PlainError::OtherUser) => {
                response::no(
                    out,
                    &tag,
                    "[AUTHORIZATIONFAILED] Acting as another user is not supported.",
                );
                Flow::Continue
            }
        }
    }

    /// The login process handed the logged-in client to moat-imapd (`connection.rs`): this
    /// session is over here; `user` (moat-auth's answer) is kept for the log.
    pub fn handed_off(&mut self, user: &str) {
        self.logged_in = Some(user.to_string());
        self.state = State::Logout;
    }

    /// moat-auth's answer to `Flow::Login`.
    pub async fn login_result(&mut self, tag: &str, login: Login, out: &mut Vec<u8>) -> Flow {
        let LoggedIn { user, quota } = match login {
            Login::User(logged_in) => logged_in,
            Login::Failed => {
                response::no(out, tag, "[AUTHENTICATIONFAILED] Authentication failed.");
                return Flow::Continue;
            }
            Login::Throttled => {
                response::no(
                    out,
                    tag,
                    "[UNAVAILABLE] Too many failed logins, try again later.",
                );
                return Flow::Continue;
            }
            Login::Unavailable => {
                response::no(
                    out,
                    tag,
                    "[UNAVAILABLE] Temporary failure, try again later.",
                );
                return Flow::Continue;
            }
        };
        match self.open_store(&user, quota).await {
            Ok(store) => {
                info!(
                    "{}: {user} logged in ({})",
                    self.config.who,
                    if self.tls { "TLS" } else { "plaintext" }
                );
                self.logged_in = Some(user.clone());
                self.state = State::Authenticated(User { name: user, store });
                let text = format!("[CAPABILITY {}] Logged in.", self.capabilities());
                response::ok(out, tag, &text);
            }
            Err(e) => {
                error!(
                    "{}: {user}: cannot open the mailbox: {e:?}",
                    self.config.who
                );
                response::no(
                    out,
                    tag,
                    "[UNAVAILABLE] Your mailbox cannot be opened now, try again later.",
                );
            }
        }
        Flow::Continue
    }

    /// The user's Maildir, created with the special-use folders where missing; the folders it
    /// had to create are subscribed too (Dovecot's `auto = subscribe`). The store's quota is
    /// then applied to it.
    async fn open_store(&self, user: &str, quota: LoginQuota) -> Result<Store, StoreError> {
        let Some(path) = user_maildir(&self.config.mail_root, user) else {
            return Err(StoreError::Io(format!(
                "unusable user name {user:?} from moat-auth"
            )));
        };
        let who = self.config.who.clone();
        let user = user.to_string();
        let mail_root = self.config.mail_root.clone();
        blocking(move || {
            let names: Vec<&str> = SPECIAL_USE.iter().map(|(name, _)| *name).collect();
            let (store, created) = Store::open(&mail_root, &path, &names)?;
            for name in created {
                if let Err(e) = subscriptions::set(store.root().path(), &name, true) {
                    warn!("{who}: {user}: cannot subscribe {name}: {e:?}");
                }
            }
            apply_quota(&store, quota, &who, &user);
            Ok(store)
        })
        .await
    }
}

/// Writes the quota moat-auth sent into the Maildir's `maildirsize`, the one place GETQUOTA,
/// APPEND and COPY read it from (blocking). A failure is logged and the login goes on: the
/// quota is then what moat-local last wrote, as before logins applied it, and mail access
/// should not depend on the quota file.
fn apply_quota(store: &Store, quota: LoginQuota, who: &str, user: &str) {
    let LoginQuota::Store(bytes) = quota else {
        return;
    };
    match moat_maildir::store_limit(bytes) {
        Ok(limit) => {
            if let Err(e) = Quota::apply(store.root(), limit) {
                warn!("{who}: {user}: cannot apply the quota: {e}");
            }
        }
        // Never lift a limit on a bad answer: the file keeps the last good one.
        Err(e) => error!("{who}: {user}: bad quota from moat-auth: {e}"),
    }
}
