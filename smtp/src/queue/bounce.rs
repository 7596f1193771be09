//! Bounce messages and delay notices: RFC 3464 delivery status notifications in an RFC 6522
//! `multipart/report`.
//!
//! A delay notice (`Kind::Delayed`, sent by `delay_notice.rs`) has the same three parts with
//! `Action: delayed`, a 4.x.x `Status` (the last temporary reason) and `Will-Retry-Until`, and
//! always carries the header only (RET=HDRS style, as Postfix does for its delay warnings).
//!
//! Three parts: a human explanation (text/plain), the machine-readable report
//! (`message/delivery-status`: per-message `Reporting-MTA` and `Arrival-Date`, then per failed
//! recipient `Final-Recipient`, `Action: failed`, `Status`, `Diagnostic-Code`), and the original
//! message's header (`text/rfc822-headers`), or with RET=FULL the whole message
//! (`message/rfc822`) when it is at most `MAX_FULL_COPY` bytes (bigger: the header only, as
//! Postfix does). The DSN request (RFC 3461) adds `Original-Envelope-Id` (ENVID, xtext) and
//! `Original-Recipient` (ORCPT); recipients whose NOTIFY excludes FAILURE are left out by the
//! caller (`RcptDsn::wants_failure`). At most `MAX_LISTED` recipients are named; the rest are
//! counted (a list post failing for thousands makes a report of bounded size). The bounce goes
//! from the null sender to the original
//! sender; the caller never bounces a message whose sender was null.
//!
//! SECURITY: recipient addresses and diagnostic texts were checked and cleaned when they were
//! stored (no control characters, bounded), so nothing here can add a header line. The original
//! header is copied as-is inside its own part; the boundary carries 64 random bits, so a sender
//! cannot guess it and end the part early.

use super::envelope::clean;
use moat_common::client::queue::Orcpt;
use moat_common::date::rfc5322;

/// How much of the original header goes back to the sender.
pub const MAX_HEADER_COPY: usize = 64 * 1024;
/// The biggest message returned whole under RET=FULL.
pub const MAX_FULL_COPY: usize = 1024 * 1024;
/// The most recipients a report names (each in both parts); the rest are counted ("and N
/// more", and `X-Moat-Unlisted-Recipients` in the per-message fields).
pub const MAX_LISTED: usize = 100;

/// One recipient the bounce reports on; `text` starts with an enhanced status code (RFC 3463).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub recipient: String,
    pub text: String,
    /// ORCPT of this recipient, if given.
    pub orcpt: Option<Orcpt>,
}

/// Which report: a bounce (`Action: failed`) or a delay notice (`Action: delayed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failed,
    /// Still being retried, until this unix time (the queue lifetime's end).
    Delayed {
        retry_until: u64,
    },
}

/// Everything a bounce or a delay notice is made from.
pub struct Report<'a> {
    pub kind: Kind,
    pub hostname: &'a str,
    /// The `From:` address (`bounce_from`).
    pub from: &'a str,
    pub original_id: &'a str,
    /// Where the report goes (`To:`): the sender, or for VERP that recipient's VERP address.
    pub original_sender: &'a str,
    pub arrival: u64,
    pub now: u64,
    pub failures: &'a [Failure],
    /// The original header, CRLF lines.
    pub headers: &'a [u8],
    /// The whole original message (RET=FULL and small enough): sent instead of `headers`.
    pub full: Option<&'a [u8]>,
    /// ENVID, decoded.
    pub envid: Option<&'a str>,
    /// Random bits for the MIME boundary.
    pub token: u64,
}

/// Splits `4.4.7 text` into (`4.4.7`, `text`); `None` if `text` does not start with a status.
pub fn split_status(text: &str) -> Option<(&str, &str)> {
    let (code, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = code.split('.');
    let class = parts.next()?;
    let ok = matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some((code, rest))
}

/// A permanent failure text for a done mark: kept if it starts with a status, else `5.0.0 ...`.
pub fn permanent_text(text: &str) -> String {
    match split_status(text) {
        Some(_) => text.to_string(),
        None => format!("5.0.0 {text}"),
    }
}

/// RFC 3461 4: xtext, `+XX` for `+`, `=` and anything outside `!`..`~`.
pub fn xtext_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn address_type(addr: &str) -> &'static str {
    if addr.is_ascii() { "rfc822" } else { "utf-8" }
}

/// The status and the diagnostic text of a delayed recipient: its text's own status when that is
/// a 4.x.x one, else `4.0.0` and the whole text (a delay is never reported as permanent).
pub fn delayed_status(text: &str) -> (&str, &str) {
    match split_status(text) {
        Some((code, why)) if code.starts_with("4.") => (code, why),
        _ => ("4.0.0", text),
    }
}

/// The status and the diagnostic text of one reported recipient.
fn status_of(kind: Kind, text: &str) -> (&str, &str) {
    match kind {
        Kind::Failed => split_status(text).unwrap_or(("5.0.0", text)),
        Kind::Delayed { .. } => delayed_status(text),
    }
}

/// The report message, CRLF lines, ready to queue.
pub fn compose(r: &Report<'_>) -> Vec<u8> {
    let boundary = format!("=_moat_{}_{:016x}", r.original_id, r.token);
    let date = rfc5322(r.now);
    let (subject, suffix) = match r.kind {
        Kind::Failed => ("Undelivered Mail Returned to Sender", "bounce"),
        Kind::Delayed { .. } => ("Delayed Mail (still being retried)", "delay"),
    };
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push_str("\r\n");
    };
    line(&format!("From: {} (Mail Delivery System)", r.from));
    line(&format!("To: <{}>", r.original_sender));
    line(&format!("Subject: {subject}"));
    line(&format!("Date: {date}"));
    line(&format!(
        "Message-ID: <{}.{:x}.{suffix}@{}>",
        r.original_id, r.token, r.hostname
    ));
    line("Auto-Submitted: auto-replied");
    line("MIME-Version: 1.0");
    line("Content-Type: multipart/report; report-type=delivery-status;");
    line(&format!("\tboundary=\"{boundary}\""));
    line("");
    line("This is a MIME-encapsulated message.");
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Notification");
    line("Content-Type: text/plain; charset=utf-8");
    line("");
    line(&format!("This is the mail system at host {}.", r.hostname));
    line("");
    match r.kind {
        Kind::Failed => line("Your message could not be delivered to one or more recipients."),
        Kind::Delayed { retry_until } => {
            line("Your message could not be delivered yet to one or more recipients.");
            line(&format!(
                "It is still being tried until {}; you do not need to send it again.",
                rfc5322(retry_until)
            ));
        }
    }
    line(if r.full.is_some() {
        "It is attached below."
    } else {
        "It is attached below (its header only)."
    });
    line("");
    // At most `MAX_LISTED` recipients in either part: a message to a list's thousands of members
    // that fails for them all makes a report of bounded size, not one block per member.
    let listed = &r.failures[..r.failures.len().min(MAX_LISTED)];
    for f in listed {
        let (_, why) = status_of(r.kind, &f.text);
        line(&format!("<{}>: {}", f.recipient, clean(why, 500)));
    }
    let unlisted = r.failures.len() - listed.len();
    if unlisted > 0 {
        line(&format!(
            "... and {unlisted} more recipient(s), not listed in this report."
        ));
    }
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Delivery report");
    line("Content-Type: message/delivery-status");
    line("");
    line(&format!("Reporting-MTA: dns; {}", r.hostname));
    line(&format!("X-Moat-Queue-ID: {}", r.original_id));
    if let Some(envid) = r.envid {
        line(&format!("Original-Envelope-Id: {}", xtext_encode(envid)));
    }
    line(&format!("Arrival-Date: {}", rfc5322(r.arrival)));
    if unlisted > 0 {
        line(&format!("X-Moat-Unlisted-Recipients: {unlisted}"));
    }
    for f in listed {
        let (status, why) = status_of(r.kind, &f.text);
        line("");
        if let Some(o) = &f.orcpt {
            line(&format!(
                "Original-Recipient: {}; {}",
                clean(&o.addr_type, 32),
                clean(&o.addr, 500)
            ));
        }
        line(&format!(
            "Final-Recipient: {}; {}",
            address_type(&f.recipient),
            f.recipient
        ));
        line(match r.kind {
            Kind::Failed => "Action: failed",
            Kind::Delayed { .. } => "Action: delayed",
        });
        line(&format!("Status: {status}"));
        line(&format!("Diagnostic-Code: X-Moat; {}", clean(why, 500)));
        line(&format!("Last-Attempt-Date: {date}"));
        if let Kind::Delayed { retry_until } = r.kind {
            line(&format!("Will-Retry-Until: {}", rfc5322(retry_until)));
        }
    }
    line("");
    line(&format!("--{boundary}"));
    if r.full.is_some() {
        line("Content-Description: Undelivered Message");
        line("Content-Type: message/rfc822");
    } else {
        line("Content-Description: Undelivered Message Headers");
        line("Content-Type: text/rfc822-headers");
    }
    line("");
    let mut bytes = out.into_bytes();
    let headers = match r.full {
        Some(full) => &full[..full.len().min(MAX_FULL_COPY)],
        None => &r.headers[..r.headers.len().min(MAX_HEADER_COPY)],
    };
    bytes.extend_from_slice(headers);
    if !headers.is_empty() && !headers.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            split_status("5.1.1 no such user"),
            Some(("5.1.1", "no such user"))
        );
        assert_eq!(split_status("4.4.7"), Some(("4.4.7", "")));
        assert_eq!(split_status("no such user"), None);
        assert_eq!(split_status("5.1 x"), None);
        assert_eq!(split_status("9.1.1 x"), None);
        assert_eq!(permanent_text("no such user"), "5.0.0 no such user");
        assert_eq!(permanent_text("5.2.2 full"), "5.2.2 full");
    }

    #[test]
    fn a_report_has_three_parts() {
        let failures = [Failure {
            recipient: "bad@example.test".into(),
            text: "5.1.1 no such user".into(),
            orcpt: None,
        }];
        let msg = compose(&Report {
            kind: Kind::Failed,
            hostname: "mx.example.test",
            from: "MAILER-DAEMON@mx.example.test",
            original_id: "0123456789ABCDEF",
            original_sender: "alice@example.test",
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            failures: &failures,
            headers: b"Subject: hello\r\n",
            full: None,
            envid: None,
            token: 7,
        });
        let text = String::from_utf8(msg).expect("utf8");
        assert!(text.contains("report-type=delivery-status"));
        assert_eq!(
            text.matches("--=_moat_0123456789ABCDEF_0000000000000007")
                .count(),
            4
        );
        assert!(text.contains("\r\nFinal-Recipient: rfc822; bad@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: X-Moat; no such user\r\n"));
        assert!(text.contains("Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"));
        assert!(text.contains("text/rfc822-headers\r\n\r\nSubject: hello\r\n\r\n--"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert!(!text.contains("Original-"));
    }

    #[test]
    fn a_report_for_ten_thousand_failures_is_bounded() {
        let failures: Vec<Failure> = (0..10_000)
            .map(|i| Failure {
                recipient: format!("member{i}@far.example"),
                text: "5.1.1 no such user".into(),
                orcpt: None,
            })
            .collect();
        let msg = compose(&Report {
            kind: Kind::Failed,
            hostname: "mx.example.test",
            from: "MAILER-DAEMON@mx.example.test",
            original_id: "0123456789ABCDEF",
            original_sender: "list-return-1@example.test",
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            failures: &failures,
            headers: b"Subject: hello\r\n",
            full: None,
            envid: None,
            token: 7,
        });
        assert!(msg.len() < 64 * 1024, "{} bytes", msg.len());
        let text = String::from_utf8(msg).expect("utf8");
        assert_eq!(text.matches("Final-Recipient:").count(), MAX_LISTED);
        assert_eq!(text.matches("<member").count(), MAX_LISTED);
        assert!(text.contains("<member99@far.example>: no such user\r\n"));
        assert!(!text.contains("member100@"));
        assert!(
            text.contains("\r\n... and 9900 more recipient(s), not listed in this report.\r\n")
        );
        assert!(text.contains("\r\nX-Moat-Unlisted-Recipients: 9900\r\n"));
    }

    #[test]
    fn dsn_fields_and_full_return() {
        let failures = [Failure {
            recipient: "bad@example.test".into(),
            text: "5.1.1 no such user".into(),
            orcpt: Some(Orcpt {
                addr_type: "rfc822".into(),
                addr: "first@example.test".into(),
            }),
        }];
        let original = b"Subject: hello\r\n\r\nthe body\r\n";
        let msg = compose(&Report {
            kind: Kind::Failed,
            hostname: "mx.example.test",
            from: "MAILER-DAEMON@mx.example.test",
            original_id: "0123456789ABCDEF",
            original_sender: "alice@example.test",
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            failures: &failures,
            headers: b"Subject: hello\r\n",
            full: Some(original),
            envid: Some("id+1 x"),
            token: 7,
        });
        let text = String::from_utf8(msg).expect("utf8");
        assert!(text.contains("\r\nOriginal-Envelope-Id: id+2B1+20x\r\n"));
        assert!(text.contains("\r\n\r\nOriginal-Recipient: rfc822; first@example.test\r\nFinal-Recipient: rfc822; bad@example.test\r\n"));
        assert!(text.contains(
            "Content-Type: message/rfc822\r\n\r\nSubject: hello\r\n\r\nthe body\r\n\r\n--"
        ));
        assert!(!text.contains("text/rfc822-headers"));
        assert_eq!(xtext_encode("a=b"), "a+3Db");
    }

    #[test]
    fn a_delay_notice_says_delayed_and_until_when() {
        let delayed = [
            Failure {
                recipient: "slow@far.example".into(),
                text: "4.3.0 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again later".into(),
                orcpt: None,
            },
            Failure {
                recipient: "odd@far.example".into(),
                text: "remote delivery is not available".into(),
                orcpt: None,
            },
        ];
        let msg = compose(&Report {
            kind: Kind::Delayed {
                retry_until: 1_700_432_000,
            },
            hostname: "mx.example.test",
            from: "MAILER-DAEMON@mx.example.test",
            original_id: "0123456789ABCDEF",
            original_sender: "alice@example.test",
            arrival: 1_700_000_000,
            now: 1_700_014_400,
            failures: &delayed,
            headers: b"Subject: hello\r\n",
            full: None,
            envid: None,
            token: 7,
        });
        let text = String::from_utf8(msg).expect("utf8");
        assert!(text.contains("\r\nSubject: Delayed Mail (still being retried)\r\n"));
        assert!(text.contains(".7.delay@mx.example.test>"));
        assert!(text.contains(
            "Final-Recipient: rfc822; slow@far.example\r\nAction: delayed\r\nStatus: 4.3.0\r\n\
             Diagnostic-Code: X-Moat; 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again later\r\n"
        ));
        assert!(text.contains(
            "Action: delayed\r\nStatus: 4.0.0\r\n\
             Diagnostic-Code: X-Moat; remote delivery is not available\r\n"
        ));
        assert_eq!(
            text.matches("\r\nWill-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n")
                .count(),
            2
        );
        assert!(text.contains("tried until Sun, 19 Nov 2023 22:13:20 +0000;"));
        assert!(text.contains("text/rfc822-headers\r\n\r\nSubject: hello\r\n"));
        assert!(!text.contains("Action: failed"));
        assert_eq!(delayed_status("5.1.1 odd"), ("4.0.0", "5.1.1 odd"));
    }
}
