//! The header lines moat-smtpd writes: `Received:` (RFC 5321 4.4, protocol names of RFC 3848
//! and RFC 6531) first in every message, and on submission `Date:` and `Message-ID:` when the
//! client left them out (RFC 6409 8.2, 8.3).
//!
//! ```text
//! Received: from client.example ([192.0.2.1])
//!         by mx.example.test (moat) with ESMTPSA id 3KQ9F1ZC7TX2
//!         (TLSv1.3 cipher TLS13_AES_256_GCM_SHA384)
//!         (authenticated as alice@example.test);
//!         Tue, 14 Nov 2023 22:13:20 +0000
//! ```
//!
//! SECURITY: every piece of text that did not come from us is made safe for a comment or a
//! token before it is written: control characters (CR and LF among them), parentheses and
//! backslashes are replaced, so no client text can end a comment early or add a header line.
//! The HELO name is already limited to domain or address-literal syntax by the parser. Lines
//! are folded below 78 characters where possible and always below RFC 5322's 998.

use std::net::IpAddr;

use rand::Rng;

use super::tls::TlsInfo;
use crate::proto::Domain;

/// What the Received line says about one message.
pub struct Stamp<'a> {
    pub helo: &'a Domain,
    pub esmtp: bool,
    pub smtputf8: bool,
    pub client_ip: IpAddr,
    pub hostname: &'a str,
    pub session: &'a str,
    pub tls: Option<&'a TlsInfo>,
    pub user: Option<&'a str>,
    /// RFC 5322 date-time.
    pub date: &'a str,
}

/// The `with` protocol: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848), UTF8SMTP... (RFC 6531).
pub fn protocol(esmtp: bool, smtputf8: bool, tls: bool, auth: bool) -> String {
    let base = match (esmtp, smtputf8) {
        (false, _) => return "SMTP".to_string(),
        (true, true) => "UTF8SMTP",
        (true, false) => "ESMTP",
    };
    let mut p = base.to_string();
    if tls {
        p.push('S');
    }
    if auth {
        p.push('A');
    }
    p
}

/// `text` safe inside a header comment: no control characters, parentheses or backslashes,
/// at most `max` characters.
pub fn comment_safe(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| match c {
            '(' | ')' | '\\' => '?',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// An address literal for TCP-info: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => format!("[{a}]"),
        IpAddr::V6(a) => format!("[IPv6:{a}]"),
    }
}

impl Stamp<'_> {
    /// The whole header field, folded, ending in CRLF.
    pub fn header(&self) -> String {
        let helo = comment_safe(&self.helo.to_string(), 255);
        let with = protocol(
            self.esmtp,
            self.smtputf8,
            self.tls.is_some(),
            self.user.is_some(),
        );
        let mut clauses = vec![
            format!("from {helo} ({})", address_literal(self.client_ip)),
            format!("by {} (moat)", self.hostname),
            format!("with {with}"),
            format!("id {}", self.session),
        ];
        if let Some(t) = self.tls {
            clauses.push(format!(
                "({} cipher {})",
                comment_safe(&t.version, 32),
                comment_safe(&t.cipher, 64)
            ));
        }
        if let Some(user) = self.user {
            clauses.push(format!("(authenticated as {})", comment_safe(user, 320)));
        }
        if let Some(last) = clauses.last_mut() {
            last.push(';');
        }
        clauses.push(self.date.to_string());
        fold("Received:", &clauses)
    }
}

/// Joins `clauses` after `name`, folding (CRLF TAB) before a clause that would pass 78
/// characters. Ends in CRLF.
pub fn fold(name: &str, clauses: &[String]) -> String {
    let mut out = String::from(name);
    let mut line_len = name.len();
    for clause in clauses {
        if line_len + 1 + clause.len() > 78 && line_len > name.len() {
            out.push_str("\r\n\t");
            line_len = 8;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(clause);
        line_len += clause.len();
    }
    out.push_str("\r\n");
    out
}

/// A new Message-ID value, `<unixtime.random@hostname>`.
pub fn message_id(hostname: &str, unix: u64) -> String {
    let token: u64 = rand::rng().random();
    format!("<{unix}.{token:016x}@{hostname}>")
}

/// A session id: 12 characters of `[0-9A-Z]`, random (also the `id` of Received).
pub fn session_id() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(protocol(false, false, true, true), "SMTP");
        assert_eq!(protocol(true, false, false, false), "ESMTP");
        assert_eq!(protocol(true, false, true, false), "ESMTPS");
        assert_eq!(protocol(true, false, true, true), "ESMTPSA");
        assert_eq!(protocol(true, true, true, false), "UTF8SMTPS");
    }

    #[test]
    fn received_is_folded_and_safe() {
        let helo = Domain::parse_helo("client.example").expect("helo");
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
        };
        let h = Stamp {
            helo: &helo,
            esmtp: true,
            smtputf8: false,
            client_ip: "192.0.2.1".parse().expect("ip"),
            hostname: "mx.example.test",
            session: "ABCDEF123456",
            tls: Some(&tls),
            user: Some("alice@example.test)\r\nX-Evil: 1"),
            date: "Tue, 14 Nov 2023 22:13:20 +0000",
        }
        .header();
        assert!(
            h.starts_with("Received: from client.example ([192.0.2.1])"),
            "{h}"
        );
        assert!(h.contains("with ESMTPSA id ABCDEF123456"), "{h}");
        assert!(
            h.contains("(TLSv1.3 cipher TLS13_AES_256_GCM_SHA384)"),
            "{h}"
        );
        assert!(
            h.contains("(authenticated as alice@example.test???X-Evil: 1);"),
            "{h}"
        );
        assert!(
            h.ends_with(";\r\n\tTue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{h}"
        );
        for line in h.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 78, "{line:?}");
        }
        // Every line after the first is a continuation: nothing can start a new field.
        assert!(
            h.trim_end()
                .split("\r\n")
                .skip(1)
                .all(|l| l.starts_with('\t'))
        );
    }

    #[test]
    fn literals_and_ids() {
        assert_eq!(
            address_literal("::ffff:192.0.2.9".parse().expect("ip")),
            "[192.0.2.9]"
        );
        assert_eq!(
            address_literal("2001:db8::1".parse().expect("ip")),
            "[IPv6:2001:db8::1]"
        );
        let id = session_id();
        assert_eq!(id.len(), 12);
        assert_ne!(id, session_id());
        let m = message_id("mx.example.test", 1_700_000_000);
        assert!(m.starts_with("<1700000000.") && m.ends_with("@mx.example.test>"));
    }
}
