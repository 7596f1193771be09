//! The POP3 session as a sans-I/O state machine: it takes command lines and answers with a
//! [`Step`] that the driver (`connection.rs`) carries out: write a reply, close, start TLS,
//! ask moat-auth, stream a message, or run the UPDATE state. It never touches a socket or a
//! file, so every rule below is unit-tested without either.
//!
//! States (RFC 1939): AUTHORIZATION (USER/PASS, AUTH PLAIN, STLS, CAPA, QUIT), TRANSACTION
//! (STAT LIST RETR DELE NOOP RSET TOP UIDL CAPA QUIT), then UPDATE on QUIT. Response codes
//! (RFC 2449/3206): `[AUTH]` wrong credentials or plaintext refused, `[SYS/TEMP]` moat-auth or
//! the file system unavailable, `[LOGIN-DELAY]` throttled by moat-auth, `[IN-USE]` another
//! POP3 session holds the maildrop.
//!
//! SECURITY: plaintext credentials (USER/PASS, AUTH PLAIN) are refused before TLS unless the
//! client is on loopback and the site allows it, and USER/SASL are not even advertised then.
//! Bounds: at most `MAX_UNAUTHENTICATED` commands before a successful login and
//! `MAX_ERRORS` `-ERR` answers per session, then the session is closed; lines are 255
//! octets (RFC 2449), SASL responses `SASL_LINE` octets. No APOP: it needs stored plaintext
//! passwords. The maildrop snapshot is only reachable after moat-auth said yes.
//!
//! Login split (docs/ARCHITECTURE.md "POP3"): moat-pop3-login runs this session up to the login
//! (its driver turns `Step::Authenticate` into a ticket and a hand-over); moat-pop3d starts one
//! with [`Session::resumed`], already waiting for the maildrop, so it never parses a command
//! before a login. If the maildrop cannot be had there, the `-ERR` is the same as in one
//! process but the connection is closed (RFC 1939 section 4 allows it, as Dovecot does): the
//! mail process serves no client that is not logged in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use moat_common::client::auth::{PlainError, plain_response};

use crate::command::{Command, ParseError, Secret, parse};
use crate::lines::Line;
use crate::maildrop::{Change, Maildrop};

/// The longest command line (RFC 2449 section 4: 255 octets with CRLF).
pub const COMMAND_LINE: usize = 255;
/// The longest SASL response line (RFC 5034 lifts the 255 limit for them).
pub const SASL_LINE: usize = 2048;
/// Commands allowed before a successful login (failed logins included).
pub const MAX_UNAUTHENTICATED: u32 = 20;
/// `-ERR` answers allowed in one session before it is closed.
pub const MAX_ERRORS: u32 = 20;

/// What the driver must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Reply(String),
    /// Write this, then close without UPDATE.
    Close(String),
    /// Write this, forget buffered input, run the TLS handshake, then call `tls_started`.
    StartTls(String),
    /// Ask moat-auth, open the maildrop, then call `auth_result`.
    Authenticate {
        login: String,
        password: Secret,
    },
    /// Stream message `number` (`top`: header + n lines), then call `sent` (or `vanished`).
    Retrieve {
        number: u32,
        base: String,
        octets: u64,
        top: Option<u64>,
    },
    /// QUIT in TRANSACTION: apply the changes, then call `updated`.
    Update(Vec<Change>),
}

/// moat-auth's answer and the maildrop, as the driver saw them.
#[derive(Debug)]
pub enum AuthOutcome {
    LoggedIn(Maildrop),
    Failed,
    /// Throttled by moat-auth (too many failures).
    Throttled,
    /// moat-auth or the store unavailable, or the Maildir unreadable.
    Unavailable,
    InUse,
}

/// Fixed facts about the connection.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    /// A TLS certificate is loaded (STLS can be offered).
    pub tls_available: bool,
    /// Plaintext logins allowed on this connection without TLS (loopback + setting).
    pub plaintext_allowed: bool,
}

#[derive(Debug)]
enum State {
    Authorization {
        user: Option<String>,
    },
    /// `AUTH PLAIN` sent without an initial response: the next line is the response.
    SaslPlain,
    /// Waiting for `auth_result`.
    Authenticating,
    Transaction(Maildrop),
    /// Waiting for `updated`.
    Updating,
    Closed,
}

pub struct Session {
    config: Config,
    state: State,
    tls: bool,
    commands: u32,
    errors: u32,
    /// The login happened in moat-pop3-login: a failed `auth_result` closes.
    resumed: bool,
}

fn ok(text: &str) -> String {
    format!("+OK {text}\r\n")
}

impl Session {
    /// `tls`: true on the implicit-TLS port.
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            state: State::Authorization { user: None },
            tls,
            commands: 0,
            errors: 0,
            resumed: false,
        }
    }

    /// In moat-pop3d, a client moat-pop3-login handed over after moat-auth said yes: no
    /// greeting, waiting for `auth_result` with the maildrop. `tls`: the client's TLS state.
    pub fn resumed(config: Config, tls: bool) -> Session {
        Session {
            state: State::Authenticating,
            resumed: true,
            ..Session::new(config, tls)
        }
    }

    pub fn greeting(&self) -> String {
        ok(&format!("{} Moat POP3 server ready", self.config.hostname))
    }

    /// How long the next line may be.
    pub fn line_limit(&self) -> usize {
        match self.state {
            State::SaslPlain => SASL_LINE,
            _ => COMMAND_LINE,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Transaction(_) | State::Updating)
    }

    fn plaintext_ok(&self) -> bool {
        self.tls || self.config.plaintext_allowed
    }

    /// An `-ERR` that counts towards `MAX_ERRORS`.
    fn err(&mut self, line: &str) -> Step {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.state = State::Closed;
            return Step::Close(format!("{}-ERR too many errors, closing\r\n", line));
        }
        Step::Reply(line.to_string())
    }

    /// One line from the client.
    pub fn line(&mut self, line: Line) -> Step {
        if !self.is_authenticated() {
            self.commands += 1;
            if self.commands > MAX_UNAUTHENTICATED {
                self.state = State::Closed;
                return Step::Close("-ERR too many commands without logging in\r\n".into());
            }
        }
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            Line::TooLong => {
                if matches!(self.state, State::SaslPlain) {
                    self.state = State::Authorization { user: None };
                }
                return self.err("-ERR line too long\r\n");
            }
        };
        if matches!(self.state, State::SaslPlain) {
            self.state = State::Authorization { user: None };
            return self.sasl_plain(&bytes);
        }
        match parse(&bytes) {
            Ok(command) => self.command(command),
            Err(e @ (ParseError::Empty | ParseError::Unknown | ParseError::Syntax(_))) => {
                self.err(e.reply())
            }
        }
    }

    fn command(&mut self, command: Command) -> Step {
        match command {
            Command::Capa => Step::Reply(self.capabilities()),
            Command::Noop if self.is_authenticated() => Step::Reply(ok("")),
            Command::Quit => self.quit(),
            Command::Apop => {
                self.err("-ERR APOP is not supported (it needs plaintext passwords): use AUTH PLAIN or USER/PASS over TLS\r\n")
            }
            _ if matches!(self.state, State::Transaction(_)) => self.transaction(command),
            Command::Stls => self.stls(),
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            _ => self.err("-ERR log in first\r\n"),
        }
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if !self.is_authenticated() {
            if self.plaintext_ok() {
                caps.extend(["USER", "SASL PLAIN"]);
            }
            if self.config.tls_available && !self.tls {
                caps.push("STLS");
            }
        }
        caps.push("IMPLEMENTATION Moat");
        let mut out = ok("capability list follows");
        for c in caps {
            out.push_str(c);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        out
    }

    fn quit(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Updating) {
            State::Transaction(drop) => Step::Update(drop.changes()),
            _ => {
                self.state = State::Closed;
                Step::Close(ok(&format!("{} signing off", self.config.hostname)))
            }
        }
    }

    fn stls(&mut self) -> Step {
        if self.tls {
            return self.err("-ERR TLS is already active\r\n");
        }
        if !self.config.tls_available {
            return self.err("-ERR TLS is not available\r\n");
        }
        self.state = State::Authorization { user: None };
        Step::StartTls(ok("begin TLS negotiation"))
    }

    /// The TLS handshake after STLS succeeded: the session starts over (RFC 2595 section 4).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization { user: None };
    }

    fn plaintext_refused(&mut self) -> Step {
        self.err("-ERR [AUTH] plaintext authentication is not allowed without TLS: use STLS or port 995\r\n")
    }

    fn user(&mut self, name: String) -> Step {
        if !self.plaintext_ok() {
            return self.plaintext_refused();
        }
        self.state = State::Authorization { user: Some(name) };
        Step::Reply(ok("send PASS"))
    }

    fn pass(&mut self, password: Secret) -> Step {
        if !self.plaintext_ok() {
            return self.plaintext_refused();
        }
        match std::mem::replace(&mut self.state, State::Authorization { user: None }) {
            State::Authorization { user: Some(login) } => {
                self.state = State::Authenticating;
                Step::Authenticate { login, password }
            }
            _ => self.err("-ERR USER first\r\n"),
        }
    }

    fn auth(&mut self, mechanism: Option<String>, initial: Option<Secret>) -> Step {
        let Some(mechanism) = mechanism else {
            // RFC 1734 style listing, which some clients probe with.
            return Step::Reply(format!("{}PLAIN\r\n.\r\n", ok("")));
        };
        if mechanism != "PLAIN" {
            return self.err("-ERR [AUTH] unsupported mechanism: use PLAIN\r\n");
        }
        if !self.plaintext_ok() {
            return self.plaintext_refused();
        }
        match initial {
            // "=" is an empty initial response (RFC 5034 section 4).
            Some(Secret(r)) if r == "=" => self.sasl_plain(b""),
            Some(Secret(r)) => self.sasl_plain(r.as_bytes()),
            None => {
                self.state = State::SaslPlain;
                Step::Reply("+ \r\n".into())
            }
        }
    }

    /// A PLAIN response (RFC 4616): base64 of `authzid NUL authcid NUL passwd`.
    fn sasl_plain(&mut self, response: &[u8]) -> Step {
        if response == b"*" {
            return self.err("-ERR authentication cancelled\r\n");
        }
        let decoded = match BASE64.decode(response) {
            Ok(d) => d,
            Err(_) => return self.err("-ERR [AUTH] invalid base64 in the PLAIN response\r\n"),
        };
        let (login, password) = match plain_response(&decoded) {
            Ok(pair) => pair,
            Err(PlainError::Malformed) => {
                return self.err("-ERR [AUTH] malformed PLAIN response\r\n");
            }
            Err(PlainError::OtherUser) => {
                return self.err("-ERR [AUTH] acting as another user is not supported\r\n");
            }
        };
        self.state = State::Authenticating;
        Step::Authenticate {
            login,
            password: Secret(password),
        }
    }

    /// What moat-auth and the maildrop said.
    pub fn auth_result(&mut self, outcome: AuthOutcome) -> Step {
        self.state = State::Authorization { user: None };
        let step = match outcome {
            AuthOutcome::LoggedIn(drop) => {
                let (n, octets) = drop.stat();
                self.state = State::Transaction(drop);
                Step::Reply(ok(&format!(
                    "logged in, maildrop has {n} messages ({octets} octets)"
                )))
            }
            AuthOutcome::Failed => self.err("-ERR [AUTH] authentication failed\r\n"),
            AuthOutcome::Throttled => {
                self.err("-ERR [LOGIN-DELAY] too many failed logins, try again later\r\n")
            }
            AuthOutcome::Unavailable => {
                self.err("-ERR [SYS/TEMP] temporary failure, try again later\r\n")
            }
            AuthOutcome::InUse => {
                self.err("-ERR [IN-USE] the maildrop is in use by another POP3 session\r\n")
            }
        };
        match step {
            Step::Reply(r) if self.resumed && !self.is_authenticated() => {
                self.state = State::Closed;
                Step::Close(r)
            }
            step => step,
        }
    }

    fn transaction(&mut self, command: Command) -> Step {
        let State::Transaction(drop) = &mut self.state else {
            return self.err("-ERR log in first\r\n");
        };
        let no_such = "-ERR no such message\r\n";
        match command {
            Command::Stat => {
                let (n, octets) = drop.stat();
                Step::Reply(format!("+OK {n} {octets}\r\n"))
            }
            Command::Noop => Step::Reply(ok("")),
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(command, Command::Uidl(_));
                let (n, octets) = drop.stat();
                let mut out = ok(&format!("{n} messages ({octets} octets)"));
                for (i, m) in drop.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    let value = if uidl {
                        drop.uidl(m)
                    } else {
                        m.octets.to_string()
                    };
                    out.push_str(&format!("{} {value}\r\n", i + 1));
                }
                out.push_str(".\r\n");
                Step::Reply(out)
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => {
                match drop.get(n).filter(|m| !m.deleted) {
                    Some(m) if matches!(command, Command::Uidl(_)) => {
                        Step::Reply(format!("+OK {n} {}\r\n", drop.uidl(m)))
                    }
                    Some(m) => Step::Reply(format!("+OK {n} {}\r\n", m.octets)),
                    None => self.err(no_such),
                }
            }
            Command::Retr(n) | Command::Top(n, _) => match drop.get(n).filter(|m| !m.deleted) {
                Some(m) => Step::Retrieve {
                    number: n,
                    base: m.base.clone(),
                    octets: m.octets,
                    top: match command {
                        Command::Top(_, lines) => Some(lines),
                        _ => None,
                    },
                },
                None => self.err(no_such),
            },
            Command::Dele(n) => match drop.get_mut(n) {
                Some(m) if m.deleted => self.err(&format!("-ERR message {n} already deleted\r\n")),
                Some(m) => {
                    m.deleted = true;
                    Step::Reply(ok(&format!("message {n} deleted")))
                }
                None => self.err(no_such),
            },
            Command::Rset => {
                for m in &mut drop.messages {
                    m.deleted = false;
                }
                let (n, octets) = drop.stat();
                Step::Reply(ok(&format!("maildrop has {n} messages ({octets} octets)")))
            }
            _ => self.err("-ERR not allowed after login\r\n"),
        }
    }

    /// Message `number` was sent whole by RETR: it gets the Seen flag at QUIT.
    pub fn sent(&mut self, number: u32, was_top: bool) {
        if let (State::Transaction(drop), false) = (&mut self.state, was_top)
            && let Some(m) = drop.get_mut(number)
        {
            m.retrieved = true;
        }
    }

    /// Message `number` was expunged by someone else (IMAP) since the snapshot.
    pub fn vanished(&mut self, number: u32) -> Step {
        self.err(&format!(
            "-ERR message {number} was deleted by another session\r\n"
        ))
    }

    /// The UPDATE state's result: how many changes failed.
    pub fn updated(&mut self, failures: usize) -> Step {
        self.state = State::Closed;
        if failures == 0 {
            Step::Close(ok(&format!("{} signing off", self.config.hostname)))
        } else {
            Step::Close("-ERR [SYS/TEMP] some deleted messages not removed\r\n".into())
        }
    }
}

#[cfg(test)]
mod tests;
