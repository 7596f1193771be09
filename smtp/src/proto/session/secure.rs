//! STARTTLS (RFC 3207) and AUTH (RFC 4954) for a [`Session`].
//!
//! SECURITY: STARTTLS drops every byte pipelined behind it and, once the handshake is done,
//! everything learnt in plaintext (RFC 3207 4.2). AUTH is accepted only after EHLO, only once,
//! never inside a transaction, and only under TLS unless the listener allows plaintext; the
//! credentials go to the driver (moat-auth) and are never checked or logged here.

use super::{Mode, Pending, Session};
use crate::proto::auth::{self, AuthError, Credentials, Mechanism, Secret};
use crate::proto::event::Event;
use crate::proto::reply::Reply;

impl Session {
    pub(super) fn starttls(&mut self) {
        if self.tls {
            return self.error(Reply::bad_sequence("TLS already active"));
        }
        if !self.cfg.starttls {
            return self.error(Reply::not_implemented());
        }
        if self.helo.is_none() {
            return self.error(Reply::bad_sequence("Send EHLO first"));
        }
        self.reset_transaction();
        self.reply(Reply::new(220, Some((2, 0, 0)), "Ready to start TLS"));
        // RFC 3207 4.2 / CVE-2011-0411: nothing sent before the handshake may be used after.
        self.discarded += self.input.len() - self.pos;
        self.input.clear();
        self.pos = 0;
        self.out.push_back(Event::StartTls);
        self.mode = Mode::AwaitingTls;
    }

    pub(super) fn auth(&mut self, mechanism: &str, initial: Option<String>) {
        if !self.cfg.auth {
            return self.error(Reply::not_implemented());
        }
        if !self.auth_offered() {
            return self.error(if self.cfg.starttls {
                Reply::new(530, Some((5, 7, 0)), "Must issue a STARTTLS command first")
            } else {
                Reply::new(
                    538,
                    Some((5, 7, 11)),
                    "Encryption required for requested authentication mechanism",
                )
            });
        }
        if !matches!(self.helo, Some((_, true))) {
            return self.error(Reply::bad_sequence("Send EHLO first"));
        }
        if self.user.is_some() {
            return self.error(Reply::bad_sequence("Already authenticated"));
        }
        if self.txn.is_some() {
            return self.error(Reply::bad_sequence(
                "AUTH not allowed during a mail transaction",
            ));
        }
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return self.error(Reply::new(
                504,
                Some((5, 5, 4)),
                "Unrecognized authentication type",
            ));
        };
        match (mechanism, initial) {
            (Mechanism::Plain, Some(ir)) => self.auth_plain(&ir),
            (Mechanism::Login, Some(ir)) => self.login_user(&ir),
            (Mechanism::Plain, None) => self.challenge(Mode::AuthPlain, ""),
            (Mechanism::Login, None) => {
                self.challenge(Mode::AuthLoginUser, auth::LOGIN_USERNAME_CHALLENGE)
            }
        }
    }

    pub(super) fn challenge(&mut self, mode: Mode, text: &str) {
        self.mode = mode;
        self.lines.set_limit(self.cfg.limits.auth_line);
        self.reply(Reply::new(334, None, text));
    }

    /// An AUTH continuation line (the mode is already back to Command).
    pub(super) fn auth_response(&mut self, line: &[u8], then: impl FnOnce(&mut Session, &str)) {
        self.lines.set_limit(self.cfg.limits.extended_command_line);
        match std::str::from_utf8(line) {
            Ok(text) => then(self, text.trim_end_matches(' ')),
            Err(_) => self.auth_failed(AuthError::BadBase64),
        }
    }

    pub(super) fn auth_plain(&mut self, text: &str) {
        match auth::decode_response(text).and_then(|m| auth::decode_plain(&m)) {
            Ok(creds) => self.pending = Some(Pending::Auth(creds)),
            Err(e) => self.auth_failed(e),
        }
    }

    pub(super) fn login_user(&mut self, text: &str) {
        match auth::decode_response(text).and_then(auth::decode_login_field) {
            Ok(user) if !user.is_empty() => {
                self.challenge(Mode::AuthLoginPass(user), auth::LOGIN_PASSWORD_CHALLENGE)
            }
            Ok(_) => self.auth_failed(AuthError::Malformed),
            Err(e) => self.auth_failed(e),
        }
    }

    pub(super) fn login_password(&mut self, username: String, text: &str) {
        match auth::decode_response(text).and_then(auth::decode_login_field) {
            Ok(password) => {
                let creds = Credentials {
                    username,
                    password: Secret::new(password),
                };
                self.pending = Some(Pending::Auth(creds));
            }
            Err(e) => self.auth_failed(e),
        }
    }

    fn auth_failed(&mut self, e: AuthError) {
        self.error(e.reply());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{codes, events};
    use crate::proto::config::SessionConfig;
    use crate::proto::event::{AuthVerdict, Event};
    use crate::proto::session::Session;

    #[test]
    fn authenticate_event_until_verdict() {
        let mut s = Session::new(SessionConfig::submission("mx.test"), true);
        events(&mut s, "EHLO c\r\n");
        // "\0bob\0pw"
        s.receive(b"AUTH PLAIN AGJvYgBwdw==\r\nMAIL FROM:<bob@x>\r\n");
        let Event::Authenticate(c) = s.next_event(&mut Vec::new()) else {
            panic!("no Authenticate");
        };
        assert_eq!((c.username.as_str(), c.password.expose()), ("bob", "pw"));
        assert!(matches!(
            s.next_event(&mut Vec::new()),
            Event::Authenticate(_)
        ));
        s.auth_verdict(AuthVerdict::Ok);
        assert_eq!(codes(&events(&mut s, "")), vec![235, 250]);
        assert_eq!(s.authenticated(), Some("bob"));
    }

    #[test]
    fn tls_established_forgets_the_plaintext_session() {
        let mut cfg = SessionConfig::new("mx.test");
        cfg.auth = true;
        cfg.plaintext_auth = true;
        let mut s = Session::new(cfg, false);
        events(&mut s, "EHLO c\r\nAUTH PLAIN AGJvYgBwdw==\r\n");
        s.auth_verdict(AuthVerdict::Ok);
        events(&mut s, "MAIL FROM:<a@b>\r\nSTARTTLS\r\n");
        s.tls_established();
        assert_eq!(s.authenticated(), None);
        assert!(s.sender().is_none() && s.helo().is_none());
    }
}
