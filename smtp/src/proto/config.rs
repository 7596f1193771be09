//! What a listener tells a session: its name, what it offers (STARTTLS, AUTH, BINARYMIME), what
//! it requires (AUTH on submission) and the limits.
//!
//! SECURITY: the defaults are the safe ones — AUTH only under TLS, no BINARYMIME, RFC limits.

/// Limits of one session. Every one is enforced by the session, not left to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Command line, with CRLF, for every command but MAIL and RCPT (RFC 5321: 512).
    pub command_line: usize,
    /// MAIL and RCPT lines, which extensions lengthen (SIZE +26, DSN ENVID +100 / ORCPT +500,
    /// AUTH= +500, RFC 1870/3461/4954). Also the line reader's hard bound.
    pub extended_command_line: usize,
    /// AUTH continuation lines (RFC 4954 4: at least 12288).
    pub auth_line: usize,
    /// Text line in a message, with CRLF (RFC 5321: 1000).
    pub text_line: usize,
    /// Message size in octets, announced in EHLO `SIZE` and enforced while reading.
    pub message_size: u64,
    /// Recipients per message (RFC 5321 4.5.3.1.8: at least 100); beyond, 452 4.5.3.
    pub recipients: usize,
    /// 452 "too many recipients" replies a session gets for free; each one beyond counts as
    /// an error (Postfix's smtpd_recipient_overshoot_limit).
    pub excess_recipients: u32,
    /// Errors before the session is closed with 421 4.7.0.
    pub errors: u32,
    /// NOOP, RSET, VRFY and HELP a session gets for free; each one beyond counts as an error.
    pub junk_commands: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            command_line: 512,
            extended_command_line: 2048,
            auth_line: 12288,
            text_line: 1000,
            message_size: 25 * 1024 * 1024,
            recipients: 100,
            excess_recipients: 1000,
            errors: 10,
            junk_commands: 100,
        }
    }
}

/// Per-listener configuration of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// This server's name, in the greeting and the EHLO reply.
    pub hostname: String,
    /// A certificate is loaded: offer STARTTLS while the connection is plaintext.
    pub starttls: bool,
    /// Offer AUTH PLAIN and LOGIN (under TLS, or without it if `plaintext_auth`).
    pub auth: bool,
    /// Allow AUTH without TLS (tests, or a loopback-only listener).
    pub plaintext_auth: bool,
    /// MAIL requires an authenticated session (submission ports 587 and 465).
    pub require_auth: bool,
    /// After AUTH, ask the driver whether the user may use the MAIL FROM address
    /// (`Event::CheckSender`; moat-smtpd's `sender_login_match`).
    pub check_sender: bool,
    /// Offer BINARYMIME (BODY=BINARYMIME over BDAT). Off by default: remote delivery cannot
    /// down-convert a binary body for a next hop without it.
    pub binarymime: bool,
    pub limits: Limits,
}

impl SessionConfig {
    /// The defaults for a port-25 listener named `hostname`: STARTTLS offered, no AUTH.
    pub fn new(hostname: impl Into<String>) -> SessionConfig {
        SessionConfig {
            hostname: hostname.into(),
            starttls: true,
            auth: false,
            plaintext_auth: false,
            require_auth: false,
            check_sender: false,
            binarymime: false,
            limits: Limits::default(),
        }
    }

    /// The defaults for a submission listener: AUTH offered (under TLS) and required.
    pub fn submission(hostname: impl Into<String>) -> SessionConfig {
        SessionConfig {
            auth: true,
            require_auth: true,
            ..SessionConfig::new(hostname)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_rfcs() {
        let l = Limits::default();
        assert_eq!(l.command_line, 512);
        assert_eq!(l.text_line, 1000);
        assert!(l.recipients >= 100);
        assert!(l.auth_line >= 12288);
        let c = SessionConfig::new("mx.example.test");
        assert!(!c.auth && !c.plaintext_auth && !c.binarymime);
        let s = SessionConfig::submission("mx.example.test");
        assert!(s.auth && s.require_auth && !s.plaintext_auth);
    }
}
