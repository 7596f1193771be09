//! The IMAP session of one connection: the not-authenticated, authenticated, selected and
//! logout states of RFC 3501 §3 (the selected state is `selected/`). It takes parsed messages
//! and writes responses into an output buffer; what needs the network (the TLS handshake,
//! moat-auth) is handed back to the driver (`connection.rs`) as a [`Flow`]. Mailbox work runs
//! on the blocking pool.
//!
//! | file | job |
//! |---|---|
//! | `input.rs` | bytes → framed messages, with the size limits; APPEND literals handed through in pieces |
//! | `parse.rs` | framed message → command (imap-codec), LIST (`list_command.rs`) or SASL data |
//! | `capabilities.rs` | what is advertised, in one place |
//! | `response.rs` | tagged/untagged status lines |
//! | `auth.rs` | STARTTLS, LOGIN, AUTHENTICATE PLAIN, the login's result |
//! | `mailboxes.rs` | CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS |
//! | `list.rs` | LIST (RFC 3501, LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB |
//! | `status.rs` | STATUS items and their response |
//! | `misc.rs` | ID, ENABLE, NAMESPACE, GETQUOTA, GETQUOTAROOT, SETQUOTA |
//!
//! The selected state is `selected/` (SELECT/EXAMINE, APPEND and the selected-state commands);
//! the selected mailbox is `Session::selected`, beside the authenticated user.
//!
//! SECURITY: bounded by `MAX_PREAUTH_COMMANDS` commands before login and `MAX_BAD` BAD answers
//! per session (then BYE); plaintext logins only where `capabilities.rs` offers them; the
//! user is moat-auth's answer, and only that user's Maildir is opened.

mod auth;
pub mod capabilities;
pub mod input;
mod list;
pub mod list_command;
mod mailboxes;
mod misc;
pub mod parse;
pub mod response;
mod selected;
pub mod status;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use imap_codec::imap_types::command::{Command, CommandBody};

pub use auth::Password;
use parse::Parsed;

use crate::mailbox::store::{Store, StoreError};

/// Commands allowed before a successful login (failed logins included).
pub const MAX_PREAUTH_COMMANDS: u32 = 10;
/// BAD answers allowed in one session; the next one ends it.
pub const MAX_BAD: u32 = 30;

/// Fixed facts about the connection and the site.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    pub mail_root: PathBuf,
    /// A TLS certificate is loaded (STARTTLS can be offered).
    pub tls_available: bool,
    /// Plaintext logins allowed on this connection without TLS (loopback + setting).
    pub plaintext_allowed: bool,
    /// Who this is, for the log (the peer's address).
    pub who: String,
    /// The largest message APPEND stores (RFC 7889 APPENDLIMIT; `settings::append_limit`).
    pub append_limit: u64,
}

/// What the driver must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Send the output, forget buffered input, run the TLS handshake, call `tls_started`.
    StartTls,
    /// Ask moat-auth, then call `login_result`.
    Login {
        tag: String,
        login: String,
        password: Password,
    },
    /// Send the output and close.
    Close,
    /// Send the output, then call `resume` (a FETCH sent in batches).
    More,
    /// IDLE: send the output, then wait for the client's `DONE` (`idle_done`) and for
    /// `idle_wait` (then `idle_changes`) at once.
    Idle,
}

/// A logged-in user.
#[derive(Debug)]
pub struct User {
    /// moat-auth's spelling of the user.
    pub name: String,
    pub store: Store,
}

#[derive(Debug)]
enum State {
    NotAuthenticated,
    /// AUTHENTICATE without an initial response: the next message is the SASL response.
    Sasl {
        tag: String,
    },
    Authenticated(User),
    Logout,
}

pub struct Session {
    config: Config,
    tls: bool,
    state: State,
    preauth_commands: u32,
    bad: u32,
    /// The user once logged in, for the log (kept after LOGOUT).
    logged_in: Option<String>,
    /// CONDSTORE is on (ENABLE, SELECT (CONDSTORE), or a command using it; RFC 7162).
    pub condstore: bool,
    /// The selected mailbox (only while authenticated).
    selected: Option<selected::Selected>,
    /// The tag of the IDLE waiting for DONE.
    idling: Option<String>,
    /// A FETCH sent in batches (`Flow::More`).
    fetching: Option<selected::FetchJob>,
    /// An APPEND whose literal is arriving (`append_begin` .. `append_done`).
    upload: Option<selected::Upload>,
}

/// Runs blocking mailbox work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("mailbox task failed: {e}"))))
}

impl Session {
    /// `tls`: true on the implicit-TLS port.
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            tls,
            state: State::NotAuthenticated,
            preauth_commands: 0,
            bad: 0,
            logged_in: None,
            condstore: false,
            selected: None,
            idling: None,
            fetching: None,
            upload: None,
        }
    }

    fn facts(&self) -> capabilities::Facts {
        capabilities::Facts {
            authenticated: self.is_authenticated(),
            tls: self.tls,
            tls_available: self.config.tls_available,
            plaintext_allowed: self.config.plaintext_allowed,
            append_limit: self.config.append_limit,
        }
    }

    fn capabilities(&self) -> String {
        capabilities::list(self.facts())
    }

    /// The greeting, with the capabilities (RFC 3501 §7.1: a CAPABILITY response code).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        let text = format!(
            "[CAPABILITY {}] {} Moat IMAP ready.",
            self.capabilities(),
            self.config.hostname
        );
        response::ok(out, "*", &text);
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_))
    }

    /// The next message is a SASL response, not a command.
    pub fn expects_sasl(&self) -> bool {
        matches!(self.state, State::Sasl { .. })
    }

    /// The logged-in user, for the log.
    pub fn user(&self) -> Option<&str> {
        self.logged_in.as_deref()
    }

    /// A BAD answer, counted; past `MAX_BAD` the session ends.
    fn bad(&mut self, out: &mut Vec<u8>, tag: &str, text: &str) -> Flow {
        response::bad(out, tag, text);
        self.bad += 1;
        if self.bad > MAX_BAD {
            response::bye(out, "Too many invalid commands.");
            self.state = State::Logout;
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Input the framing refused (`input::Event::Refused`).
    pub fn refused(
        &mut self,
        tag: Option<String>,
        text: &str,
        close: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        // An APPEND that ended badly: its file goes (this answer replaces the refusal).
        self.upload = None;
        if let State::Sasl { tag } = &self.state {
            // The SASL exchange ends with this error; any other state is kept.
            let tag = tag.clone();
            self.state = State::NotAuthenticated;
            return self.bad(out, &tag, text);
        }
        let flow = self.bad(out, tag.as_deref().unwrap_or("*"), text);
        if close && flow != Flow::Close {
            response::bye(out, text);
            self.state = State::Logout;
            return Flow::Close;
        }
        flow
    }

    /// One framed message.
    pub async fn handle(&mut self, parsed: Parsed, out: &mut Vec<u8>) -> Flow {
        if let State::Sasl { tag } = &self.state {
            let tag = tag.clone();
            self.state = State::NotAuthenticated;
            return match parsed {
                Parsed::Sasl(data) => self.sasl_response(tag, data, out),
                _ => self.bad(out, &tag, "Invalid SASL response."),
            };
        }
        if !self.is_authenticated() {
            self.preauth_commands += 1;
            if self.preauth_commands > MAX_PREAUTH_COMMANDS {
                response::bye(out, "Too many commands without logging in.");
                self.state = State::Logout;
                return Flow::Close;
            }
        }
        match parsed {
            Parsed::Command(command) => self.command(command, out).await,
            Parsed::Esearch(command, options) if self.selected.is_some() => {
                let tag = command.tag.as_ref().to_string();
                match command.body {
                    CommandBody::Search {
                        charset,
                        criteria,
                        uid,
                    } => {
                        self.search(&tag, charset, criteria, uid, Some(options), out)
                            .await
                    }
                    _ => self.bad(out, &tag, "Invalid SEARCH arguments."),
                }
            }
            Parsed::Esearch(command, _) => {
                let tag = command.tag.as_ref().to_string();
                self.bad(out, &tag, "SEARCH: no mailbox selected.")
            }
            Parsed::List(list) if self.is_authenticated() => self.list(list, out).await,
            Parsed::List(list) => self.bad(out, &list.tag, "Log in first."),
            Parsed::Sasl(_) => self.bad(out, "*", "Unexpected SASL response."),
            Parsed::Bad { tag, text } => self.bad(out, tag.as_deref().unwrap_or("*"), &text),
        }
    }

    async fn command(&mut self, command: Command<'static>, out: &mut Vec<u8>) -> Flow {
        let tag = command.tag.as_ref().to_string();
        let name = command.name();
        if self.is_authenticated() {
            if selected::handles(&command.body, self.selected.is_some()) {
                return self.selected_command(tag, command.body, out).await;
            }
            if !matches!(command.body, CommandBody::Logout)
                && let Some(flow) = self.updates_before(out).await
            {
                return flow;
            }
        }
        match command.body {
            CommandBody::Capability => {
                response::untagged(
                    out,
                    format!("CAPABILITY {}", self.capabilities()).as_bytes(),
                );
                response::ok(out, &tag, "CAPABILITY completed.");
                Flow::Continue
            }
            CommandBody::Noop => {
                response::ok(out, &tag, "NOOP completed.");
                Flow::Continue
            }
            CommandBody::Logout => {
                response::bye(out, "Logging out.");
                response::ok(out, &tag, "LOGOUT completed.");
                self.state = State::Logout;
                Flow::Close
            }
            CommandBody::Id { parameters } => self.id(&tag, parameters, out),
            CommandBody::StartTLS => self.starttls(&tag, out),
            CommandBody::Login { username, password } => self.login(tag, username, password, out),
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(tag, mechanism, initial_response, out),
            _ if !self.is_authenticated() => self.bad(out, &tag, "Log in first."),
            CommandBody::Create { mailbox } => self.create(&tag, mailbox, out).await,
            CommandBody::Delete { mailbox } => self.delete(&tag, mailbox, out).await,
            CommandBody::Rename { from, to } => self.rename(&tag, from, to, out).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, mailbox, true, out).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&tag, mailbox, false, out).await,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, mailbox, &item_names, out).await,
            CommandBody::Namespace => self.namespace(&tag, out),
            CommandBody::Enable { capabilities } => self.enable(&tag, capabilities, out),
            CommandBody::GetQuotaRoot { mailbox } => self.quota_root(&tag, mailbox, out).await,
            CommandBody::GetQuota { root } => self.quota(&tag, root, out).await,
            CommandBody::SetQuota { .. } => {
                response::no(
                    out,
                    &tag,
                    "[CANNOT] Quotas are set by the administrator (moat user quota).",
                );
                Flow::Continue
            }
            _ => self.selected(&tag, name, out),
        }
    }

    /// A selected-state command without a selected mailbox (or one we do not implement).
    fn selected(&mut self, tag: &str, name: &str, out: &mut Vec<u8>) -> Flow {
        self.bad(out, tag, &format!("{name}: no mailbox selected."))
    }

    /// The user, for the authenticated-state commands (only called in that state).
    fn user_store(&self) -> Option<Store> {
        match &self.state {
            State::Authenticated(u) => Some(u.store.clone()),
            _ => None,
        }
    }

    /// The client hears a mailbox error; trouble on our side is logged.
    fn store_error(&self, out: &mut Vec<u8>, tag: &str, e: StoreError) {
        let text = match e {
            StoreError::NonExistent => "[NONEXISTENT] Mailbox doesn't exist.".to_string(),
            StoreError::AlreadyExists => "[ALREADYEXISTS] Mailbox already exists.".to_string(),
            StoreError::Cannot(why) => format!("[CANNOT] {why}."),
            StoreError::Limit(why) => format!("[LIMIT] {why}."),
            StoreError::Io(e) => {
                moat_common::error!("{}: {}: {e}", self.config.who, self.user().unwrap_or("-"));
                "[UNAVAILABLE] Internal error, try again later.".to_string()
            }
        };
        response::no(out, tag, &text);
    }
}
