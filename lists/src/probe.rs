//! The warning probe (ezmlm's `ezmlm-warn`): when a member's bounces reach the threshold, one
//! short message tells them that list mail to them was returned. It goes with the envelope
//! sender `list-return-probe-COOKIE-user=host@domain` (built here, not by the queue's VERP), so
//! if it bounces too the bounce names the member and `bounce.rs` removes them.
//!
//! COOKIE = 8 hex digits of the time the probe went (Unix seconds) followed by the first 10
//! bytes (20 hex digits) of HMAC-SHA256(list secret, `probe` ‖ 0 ‖ address lower-cased ‖ 0 ‖
//! time digits), lower case (the store lower-cases local parts): the style of `cookie.rs`.
//!
//! SECURITY: the cookie makes the probe's return address unguessable: only who received the
//! probe (or its bounce) knows it, so a forged null-sender mail cannot remove a member. The
//! check recomputes the MAC and compares in constant time; the time is inside the MAC. Every
//! value put into the header is the list's address or a member address that passed
//! `request::check_address` (no controls, so no line breaks); the message is marked
//! `Auto-Submitted: auto-generated` (RFC 3834) so robots do not answer it.

use std::path::Path;

use ring::hmac;

use moat_common::client::queue::{Injection, Origin};
use moat_common::date;
use moat_common::wire::Status;

use crate::command::encode_address;

const MAC_BYTES: usize = 10;
/// The probe cookie's length in characters.
pub const COOKIE_LEN: usize = 8 + 2 * MAC_BYTES;
/// The longest envelope sender a probe may have: the 256-octet path less its brackets (its
/// bounce must come back through smtpd's RCPT); the local part stays within the 255 octets
/// moat-auth resolves for list command addresses.
pub const MAX_SENDER: usize = 254;

fn mac(secret: &[u8; 32], address: &str, time: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"probe");
    ctx.update(&[0]);
    ctx.update(address.to_ascii_lowercase().as_bytes());
    ctx.update(&[0]);
    ctx.update(time.as_bytes());
    ctx.sign().as_ref()[..MAC_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cookie of a probe to `address` sent at `sent_at`.
pub fn cookie(secret: &[u8; 32], address: &str, sent_at: u64) -> String {
    let time = format!("{:08x}", sent_at.min(u64::from(u32::MAX)));
    let mac = mac(secret, address, &time);
    format!("{time}{mac}")
}

/// When the probe whose cookie is `cookie` went, if the cookie is ours for `address`.
pub fn check_cookie(secret: &[u8; 32], address: &str, cookie: &str) -> Option<u64> {
    if cookie.len() != COOKIE_LEN || !cookie.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let cookie = cookie.to_ascii_lowercase();
    let (time, given) = cookie.split_at(8);
    let want = mac(secret, address, time);
    // Constant time: every byte is looked at whatever the first difference.
    let diff = want
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return None;
    }
    u64::from_str_radix(time, 16).ok()
}

/// One probe to send.
pub struct Probe<'a> {
    /// The list's posting address, `local@domain`.
    pub list: &'a str,
    /// The member the probe is for.
    pub member: &'a str,
    /// The list's secret (the cookie's key).
    pub secret: &'a [u8; 32],
    /// When the probe goes (in the cookie; the store's `probe_sent_at`).
    pub sent_at: u64,
    /// Bounces counted when the probe went.
    pub bounces: u64,
    /// For the Message-ID: the queue id of the bounce that triggered it.
    pub queue_id: &'a str,
    pub hostname: &'a str,
}

impl Probe<'_> {
    fn parts(&self) -> (&str, &str) {
        self.list.rsplit_once('@').unwrap_or((self.list, ""))
    }

    /// The envelope sender: `list-return-probe-COOKIE-user=host@domain`.
    pub fn envelope_sender(&self) -> String {
        let (local, domain) = self.parts();
        format!(
            "{local}-return-probe-{}-{}@{domain}",
            cookie(self.secret, self.member, self.sent_at),
            encode_address(self.member)
        )
    }

    /// The message, CRLF line ends.
    pub fn compose(&self, now: u64) -> String {
        let (local, domain) = self.parts();
        let (list, member) = (self.list, self.member);
        let mut m = String::new();
        let mut line = |l: &str| {
            m.push_str(l);
            m.push_str("\r\n");
        };
        line(&format!("From: {local}-help@{domain}"));
        line(&format!("To: {member}"));
        line(&format!("Subject: Mail from {list} to you bounced"));
        line(&format!("Date: {}", date::rfc5322(now)));
        line(&format!(
            "Message-ID: <{now}.{}.probe@{}>",
            self.queue_id, self.hostname
        ));
        line("Auto-Submitted: auto-generated");
        line(&format!("List-Id: <{local}.{domain}>"));
        line(&format!("List-Help: <mailto:{local}-help@{domain}>"));
        line(&format!(
            "List-Unsubscribe: <mailto:{local}-unsubscribe@{domain}>"
        ));
        line("MIME-Version: 1.0");
        line("Content-Type: text/plain; charset=utf-8");
        line("Content-Transfer-Encoding: 8bit");
        line("");
        let body = format!(
            "This is the list manager for <{list}>.\n\
             \n\
             Messages from the list to your address <{member}> were returned to us\n\
             as undeliverable ({} time(s) recently).\n\
             \n\
             This message is a probe. If it is returned too, your address will be\n\
             removed from the list. If you can read it, nothing needs to be done:\n\
             your subscription continues.\n\
             \n\
             To leave the list, send an empty message to <{local}-unsubscribe@{domain}>.\n\
             For help, write to <{local}-help@{domain}>.\n",
            self.bounces
        );
        for l in body.lines() {
            line(l);
        }
        m
    }

    /// Composes the probe and commits it to the queue (`Ok(K [new queue id])` once on disk).
    pub async fn send(&self, queue_socket: &Path) -> std::io::Result<Status> {
        let message = self.compose(self.sent_at);
        let mut injection =
            Injection::open(queue_socket, Origin::Sendmail, "moat-lists probe").await?;
        injection.write(message.as_bytes()).await?;
        injection
            .finish(&self.envelope_sender(), &[self.member.to_string()])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_with_its_own_return_address() {
        let p = Probe {
            list: "dev@example.test",
            member: "bob@far.example",
            secret: &KEY,
            sent_at: 0x1234_5678,
            bounces: 3,
            queue_id: "q1",
            hostname: "mx.example.test",
        };
        let sender = p.envelope_sender();
        let cookie = cookie(&KEY, "BOB@far.example", 0x1234_5678);
        assert_eq!(
            sender,
            format!("dev-return-probe-{cookie}-bob=far.example@example.test")
        );
        assert_eq!(cookie.len(), COOKIE_LEN);
        assert!(cookie.starts_with("12345678"));
        assert!(
            cookie
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        let m = p.compose(0);
        assert!(m.starts_with("From: dev-help@example.test\r\nTo: bob@far.example\r\n"));
        assert!(m.contains("\r\nAuto-Submitted: auto-generated\r\n"));
        assert!(m.contains("\r\nList-Id: <dev.example.test>\r\n"));
        assert!(m.contains("(3 time(s) recently)"));
        assert!(!m.replace("\r\n", "").contains('\n'));
    }

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn cookies_checked() {
        let c = cookie(&KEY, "bob@far.example", 1000);
        assert_eq!(check_cookie(&KEY, "Bob@Far.example", &c), Some(1000));
        assert_eq!(
            check_cookie(&KEY, "bob@far.example", &c.to_uppercase()),
            Some(1000)
        );
        // Another address, another key, a moved time, a changed MAC, a bad form: refused.
        assert_eq!(check_cookie(&KEY, "eve@far.example", &c), None);
        assert_eq!(check_cookie(&[8; 32], "bob@far.example", &c), None);
        let moved = format!("{:08x}{}", 2000, &c[8..]);
        assert_eq!(check_cookie(&KEY, "bob@far.example", &moved), None);
        let mut flipped = c.clone().into_bytes();
        flipped[COOKIE_LEN - 1] = if flipped[COOKIE_LEN - 1] == b'0' {
            b'1'
        } else {
            b'0'
        };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(check_cookie(&KEY, "bob@far.example", &flipped), None);
        assert_eq!(check_cookie(&KEY, "bob@far.example", &c[1..]), None);
        assert_eq!(check_cookie(&KEY, "bob@far.example", ""), None);
        let zed = format!("z{}", &c[1..]);
        assert_eq!(check_cookie(&KEY, "bob@far.example", &zed), None);
    }
}
