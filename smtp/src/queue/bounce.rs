//! Bounce messages: RFC 3464 delivery status notifications in an RFC 6522 `multipart/report`.
//!
//! Three parts: a human explanation (text/plain), the machine-readable report
//! (`message/delivery-status`: per-message `Reporting-MTA` and `Arrival-Date`, then per failed
//! recipient `Final-Recipient`, `Action: failed`, `Status`, `Diagnostic-Code`), and the original
//! message's header (`text/rfc822-headers`). The bounce goes from the null sender to the original
//! sender; the caller never bounces a message whose sender was null.
//!
//! SECURITY: recipient addresses and diagnostic texts were checked and cleaned when they were
//! stored (no control characters, bounded), so nothing here can add a header line. The original
//! header is copied as-is inside its own part; the boundary carries 64 random bits, so a sender
//! cannot guess it and end the part early.

use super::date::rfc5322;
use super::envelope::clean;

/// How much of the original header goes back to the sender.
pub const MAX_HEADER_COPY: usize = 64 * 1024;

/// One recipient the bounce reports on; `text` starts with an enhanced status code (RFC 3463).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub recipient: String,
    pub text: String,
}

/// Everything a bounce is made from.
pub struct Report<'a> {
    pub hostname: &'a str,
    /// The `From:` address (`bounce_from`).
    pub from: &'a str,
    pub original_id: &'a str,
    pub original_sender: &'a str,
    pub arrival: u64,
    pub now: u64,
    pub failures: &'a [Failure],
    /// The original header, CRLF lines.
    pub headers: &'a [u8],
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

fn address_type(addr: &str) -> &'static str {
    if addr.is_ascii() { "rfc822" } else { "utf-8" }
}

/// The bounce message, CRLF lines, ready to queue.
pub fn compose(r: &Report<'_>) -> Vec<u8> {
    let boundary = format!("=_moat_{}_{:016x}", r.original_id, r.token);
    let date = rfc5322(r.now);
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push_str("\r\n");
    };
    line(&format!("From: {} (Mail Delivery System)", r.from));
    line(&format!("To: <{}>", r.original_sender));
    line("Subject: Undelivered Mail Returned to Sender");
    line(&format!("Date: {date}"));
    line(&format!(
        "Message-ID: <{}.{:x}.bounce@{}>",
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
    line("Your message could not be delivered to one or more recipients.");
    line("It is attached below (its header only).");
    line("");
    for f in r.failures {
        let (_, why) = split_status(&f.text).unwrap_or(("", &f.text));
        line(&format!("<{}>: {}", f.recipient, clean(why, 500)));
    }
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Delivery report");
    line("Content-Type: message/delivery-status");
    line("");
    line(&format!("Reporting-MTA: dns; {}", r.hostname));
    line(&format!("X-Moat-Queue-ID: {}", r.original_id));
    line(&format!("Arrival-Date: {}", rfc5322(r.arrival)));
    for f in r.failures {
        let (status, why) = split_status(&f.text).unwrap_or(("5.0.0", &f.text));
        line("");
        line(&format!(
            "Final-Recipient: {}; {}",
            address_type(&f.recipient),
            f.recipient
        ));
        line("Action: failed");
        line(&format!("Status: {status}"));
        line(&format!("Diagnostic-Code: X-Moat; {}", clean(why, 500)));
        line(&format!("Last-Attempt-Date: {date}"));
    }
    line("");
    line(&format!("--{boundary}"));
    line("Content-Description: Undelivered Message Headers");
    line("Content-Type: text/rfc822-headers");
    line("");
    let mut bytes = out.into_bytes();
    let headers = &r.headers[..r.headers.len().min(MAX_HEADER_COPY)];
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
        }];
        let msg = compose(&Report {
            hostname: "mx.example.test",
            from: "MAILER-DAEMON@mx.example.test",
            original_id: "0123456789ABCDEF",
            original_sender: "alice@example.test",
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            failures: &failures,
            headers: b"Subject: hello\r\n",
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
    }
}
