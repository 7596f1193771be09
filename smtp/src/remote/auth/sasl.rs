//! The client side of SMTP AUTH (RFC 4954) without I/O: which mechanism to use (PLAIN, RFC 4616,
//! else LOGIN, the draft every relay still offers), the base64 responses, whether credentials
//! may be sent on a connection, and the redaction of anything the server echoes back.
//!
//! SECURITY: the responses carry the password; they are built here, handed to the session's
//! write, and never formatted into a text that could reach a log (`Credentials::redact` also
//! scrubs the server's replies, which a hostile server could fill with what we sent).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Credentials;

/// The SASL mechanisms moat-remote can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// The mechanisms an EHLO reply offers: `AUTH PLAIN LOGIN`, or the pre-standard `AUTH=LOGIN`
/// some old servers still send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    pub plain: bool,
    pub login: bool,
    /// Whether AUTH is offered at all (with any mechanism).
    pub any: bool,
}

impl Offered {
    /// Adds one EHLO line's offer, if it is one.
    pub fn add_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { return };
        let upper = first.to_ascii_uppercase();
        let rest: Vec<&str> = match upper.strip_prefix("AUTH=") {
            Some(_) => std::iter::once(&first[5..]).chain(words).collect(),
            None if upper == "AUTH" => words.collect(),
            None => return,
        };
        self.any = true;
        for mechanism in rest {
            match mechanism.to_ascii_uppercase().as_str() {
                "PLAIN" => self.plain = true,
                "LOGIN" => self.login = true,
                _ => {}
            }
        }
    }

    /// PLAIN when offered (one round trip), else LOGIN.
    pub fn choose(&self) -> Option<Mechanism> {
        if self.plain {
            Some(Mechanism::Plain)
        } else if self.login {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Whether the credentials may go out on this connection: under TLS always; without it only
/// when the route allows it (`tls = "none"` to a loopback host) and the address connected to
/// is loopback too. `Err` is the deferral text.
pub fn may_send(
    creds: &Credentials,
    encrypted: bool,
    addr: IpAddr,
    peer: &str,
) -> Result<(), String> {
    if encrypted || (creds.plaintext_allowed && addr.is_loopback()) {
        return Ok(());
    }
    Err(format!(
        "4.7.0 {peer}: the route has credentials and the connection is not encrypted: the \
         password is not sent without TLS"
    ))
}

/// `AUTH PLAIN <base64(\0user\0password)>`: no authorisation identity, the initial response on
/// the command line (RFC 4954 §4).
pub fn plain_command(creds: &Credentials) -> String {
    format!("AUTH PLAIN {}", plain_response(creds))
}

fn plain_response(creds: &Credentials) -> String {
    let mut raw = Vec::with_capacity(creds.user.len() + creds.password().len() + 2);
    raw.push(0);
    raw.extend_from_slice(creds.user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(creds.password().as_bytes());
    STANDARD.encode(raw)
}

/// LOGIN's two responses: the user, then the password, each in base64.
pub fn login_user(creds: &Credentials) -> String {
    STANDARD.encode(creds.user.as_bytes())
}

pub fn login_password(creds: &Credentials) -> String {
    STANDARD.encode(creds.password().as_bytes())
}

/// `text` with every form of the password we send replaced by `***`.
pub fn redact(creds: &Credentials, text: &str) -> String {
    let password = creds.password();
    // Reply texts keep printable ASCII only: a password with other characters shows that way.
    let printable: String = password
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    let mut out = text.to_string();
    for secret in [
        plain_response(creds),
        login_password(creds),
        password.to_string(),
        printable,
    ] {
        // Very short fragments would redact ordinary words; whole passwords are not that short.
        if secret.len() >= 4 {
            out = out.replace(&secret, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::auth::secret;

    fn creds(plaintext_allowed: bool) -> Credentials {
        Credentials {
            route: "*".into(),
            user: "relay@example".into(),
            password: secret::parse(b"s3cret-pw\n").expect("password"),
            plaintext_allowed,
        }
    }

    #[test]
    fn mechanisms_from_ehlo_lines() {
        let mut o = Offered::default();
        for line in [
            "mx.example",
            "PIPELINING",
            "AUTH LOGIN CRAM-MD5",
            "AUTH=LOGIN",
        ] {
            o.add_line(line);
        }
        assert_eq!(o.choose(), Some(Mechanism::Login));
        o.add_line("auth plain");
        assert_eq!(o.choose(), Some(Mechanism::Plain));
        let mut none = Offered::default();
        none.add_line("AUTH CRAM-MD5");
        none.add_line("AUTHX PLAIN");
        assert!(none.any);
        assert_eq!(none.choose(), None);
        let mut old = Offered::default();
        old.add_line("AUTH=PLAIN");
        assert_eq!(old.choose(), Some(Mechanism::Plain));
    }

    #[test]
    fn responses_are_rfc_4616_and_login() {
        let c = creds(false);
        // printf '\0relay@example\0s3cret-pw' | base64
        assert_eq!(
            plain_command(&c),
            "AUTH PLAIN AHJlbGF5QGV4YW1wbGUAczNjcmV0LXB3"
        );
        assert_eq!(login_user(&c), "cmVsYXlAZXhhbXBsZQ==");
        assert_eq!(login_password(&c), "czNjcmV0LXB3");
    }

    #[test]
    fn plaintext_only_on_an_allowed_loopback_route() {
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let far: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(may_send(&creds(false), true, far, "p").is_ok());
        let err = may_send(&creds(false), false, lo, "p").expect_err("plaintext");
        assert!(err.starts_with("4.7.0 p: "), "{err}");
        assert!(may_send(&creds(true), false, lo, "p").is_ok());
        assert!(may_send(&creds(true), false, far, "p").is_err());
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let c = creds(false);
        let echoed =
            "535 bad AHJlbGF5QGV4YW1wbGUAczNjcmV0LXB3 czNjcmV0LXB3 s3cret-pw for relay@example";
        assert_eq!(redact(&c, echoed), "535 bad *** *** *** for relay@example");
    }
}
