//! SMTP replies (RFC 5321 4.2): a three-digit code, an optional enhanced status code
//! (RFC 2034 / RFC 3463) and one or more text lines, formatted `250-...` for every line but the
//! last and `250 ...` for the last.
//!
//! SECURITY: reply text can carry bytes that came from elsewhere (a queue id, a host name from
//! the configuration, a policy message). Every constructor replaces CR, LF and other control
//! characters, so a reply can never add a line to the reply stream or end it early.

use std::fmt;

/// An enhanced status code `class.subject.detail` (RFC 3463), e.g. `(5, 1, 1)`.
pub type Enhanced = (u8, u16, u16);

/// One SMTP reply, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<Enhanced>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply. `code` is 200..=599; `enhanced`, when given, has the same class digit.
    pub fn new(code: u16, enhanced: Option<Enhanced>, text: &str) -> Reply {
        debug_assert!((200..=599).contains(&code), "reply code {code}");
        debug_assert!(
            enhanced.is_none_or(|(class, _, _)| u16::from(class) == code / 100),
            "enhanced class must match reply code {code}"
        );
        Reply {
            code,
            enhanced,
            lines: vec![clean(text)],
        }
    }

    /// The same reply with one more text line.
    pub fn with_line(mut self, text: &str) -> Reply {
        self.lines.push(clean(text));
        self
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn enhanced(&self) -> Option<Enhanced> {
        self.enhanced
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// 221 or 421: the server closes the connection after sending it.
    pub fn is_closing(&self) -> bool {
        self.code == 221 || self.code == 421
    }

    /// Appends the wire form (every line ending in CRLF) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let mut s = format!("{}{}", self.code, sep);
            if let Some((a, b, c)) = self.enhanced {
                s.push_str(&format!("{a}.{b}.{c}"));
                if !line.is_empty() {
                    s.push(' ');
                }
            }
            s.push_str(line);
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    // ---- the common replies -------------------------------------------------------------

    /// 250 2.0.0 OK
    pub fn ok() -> Reply {
        Reply::new(250, Some((2, 0, 0)), "OK")
    }

    /// 221 2.0.0 — answer to QUIT.
    pub fn bye(hostname: &str) -> Reply {
        Reply::new(
            221,
            Some((2, 0, 0)),
            &format!("{hostname} closing connection"),
        )
    }

    /// 220 greeting (no enhanced code: RFC 2034 exempts the greeting).
    pub fn greeting(hostname: &str) -> Reply {
        Reply::new(220, None, &format!("{hostname} ESMTP"))
    }

    /// 421 4.3.2 — the server is shutting down; the client should try again later.
    pub fn shutting_down(hostname: &str) -> Reply {
        Reply::new(
            421,
            Some((4, 3, 2)),
            &format!("{hostname} service shutting down"),
        )
    }

    /// 421 4.4.2 — the client was idle too long (RFC 5321 4.5.3.2).
    pub fn timeout(hostname: &str) -> Reply {
        Reply::new(
            421,
            Some((4, 4, 2)),
            &format!("{hostname} timeout, closing connection"),
        )
    }

    /// 421 4.7.0 — too many errors in this session.
    pub fn too_many_errors() -> Reply {
        Reply::new(421, Some((4, 7, 0)), "Too many errors, closing connection")
    }

    /// 500 5.5.2 — command unrecognized.
    pub fn unrecognized() -> Reply {
        Reply::new(500, Some((5, 5, 2)), "Command unrecognized")
    }

    /// 500 5.5.2 — command line too long (RFC 5321 4.5.3.1.10).
    pub fn line_too_long() -> Reply {
        Reply::new(500, Some((5, 5, 2)), "Line too long")
    }

    /// 501 5.5.4 — syntax error in parameters or arguments.
    pub fn syntax(text: &str) -> Reply {
        Reply::new(501, Some((5, 5, 4)), text)
    }

    /// 502 5.5.1 — command not implemented.
    pub fn not_implemented() -> Reply {
        Reply::new(502, Some((5, 5, 1)), "Command not implemented")
    }

    /// 503 5.5.1 — bad sequence of commands.
    pub fn bad_sequence(text: &str) -> Reply {
        Reply::new(503, Some((5, 5, 1)), text)
    }

    /// 451 4.3.0 — local temporary failure.
    pub fn temp_failure(text: &str) -> Reply {
        Reply::new(451, Some((4, 3, 0)), text)
    }

    /// 552 5.3.4 — message too big (RFC 1870).
    pub fn too_big() -> Reply {
        Reply::new(
            552,
            Some((5, 3, 4)),
            "Message size exceeds fixed maximum message size",
        )
    }
}

impl fmt::Display for Reply {
    /// The wire form, lines ending in CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Replaces control characters (CR and LF among them) so text stays on one reply line.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line() {
        assert_eq!(Reply::ok().to_bytes(), b"250 2.0.0 OK\r\n");
        assert_eq!(Reply::new(354, None, "go").to_bytes(), b"354 go\r\n");
    }

    #[test]
    fn multi_line_uses_dash_until_the_last() {
        let r = Reply::new(250, None, "mx.example.test")
            .with_line("PIPELINING")
            .with_line("SIZE 1000");
        assert_eq!(
            r.to_string(),
            "250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
        );
        let r = Reply::new(550, Some((5, 1, 1)), "a").with_line("b");
        assert_eq!(r.to_string(), "550-5.1.1 a\r\n550 5.1.1 b\r\n");
    }

    #[test]
    fn empty_text_for_auth_challenge() {
        assert_eq!(Reply::new(334, None, "").to_bytes(), b"334 \r\n");
    }

    #[test]
    fn text_cannot_inject_lines() {
        let r = Reply::new(250, Some((2, 0, 0)), "queued as x\r\n250 fake");
        assert_eq!(r.to_bytes(), b"250 2.0.0 queued as x??250 fake\r\n");
        assert_eq!(r.lines().len(), 1);
    }

    #[test]
    fn classification() {
        assert!(Reply::bye("h").is_closing());
        assert!(Reply::too_many_errors().is_closing());
        assert!(!Reply::ok().is_closing());
        assert!(Reply::too_big().is_permanent());
        assert!(!Reply::temp_failure("x").is_permanent());
        assert!(Reply::ok().is_positive());
    }
}
