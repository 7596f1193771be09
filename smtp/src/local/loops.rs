//! Mail loop detection: a message that already carries `Delivered-To:` for an address we are
//! about to deliver to has been here before (an alias or forward pointing back at itself via
//! another system), and a message with more than `MAX_RECEIVED` `Received:` lines has been
//! bounced around too long. Either way it is refused permanently (the queue bounces it), which
//! stops the loop: qmail's rule.
//!
//! SECURITY: looks only at the bounded header section (`message::MAX_HEADER`); a loop hidden
//! past a megabyte of header is still stopped by the Received count of the next hop or by the
//! queue's lifetime.

use crate::local::header::{fields, trim};

/// More `Received:` lines than this is a loop (RFC 5321 section 6.3 suggests at least 100).
pub const MAX_RECEIVED: usize = 100;

/// Why a message is considered looping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loop {
    /// It already has `Delivered-To:` this address.
    DeliveredTo(String),
    /// It has this many `Received:` lines.
    TooManyHops(usize),
}

impl std::fmt::Display for Loop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loop::DeliveredTo(a) => write!(f, "already has Delivered-To: {a}"),
            Loop::TooManyHops(n) => write!(f, "{n} Received: lines"),
        }
    }
}

/// Checks `header` against each of `addresses` (the recipient and every mailbox it resolves
/// to), case-insensitively; angle brackets around a Delivered-To value are ignored.
pub fn detect(header: &[u8], addresses: &[&str]) -> Option<Loop> {
    let mut received = 0;
    for field in fields(header) {
        if field.is("Received") {
            received += 1;
        } else if field.is("Delivered-To") {
            let value = trim(&field.value);
            let value = value
                .strip_prefix(b"<")
                .and_then(|v| v.strip_suffix(b">"))
                .map_or(value, trim);
            if let Some(hit) = addresses
                .iter()
                .find(|a| a.as_bytes().eq_ignore_ascii_case(value))
            {
                return Some(Loop::DeliveredTo((*hit).to_string()));
            }
        }
    }
    (received > MAX_RECEIVED).then_some(Loop::TooManyHops(received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_to_the_same_address() {
        let h = b"Delivered-To: other@example.test\r\ndelivered-to:  <Alice@Example.TEST> \r\n";
        assert_eq!(
            detect(h, &["alias@example.test", "alice@example.test"]),
            Some(Loop::DeliveredTo("alice@example.test".into()))
        );
        assert_eq!(detect(h, &["bob@example.test"]), None);
        // A mention elsewhere is not a loop.
        assert_eq!(
            detect(
                b"X-Original-To: bob@example.test\r\nSubject: bob@example.test\r\n",
                &["bob@example.test"]
            ),
            None
        );
    }

    #[test]
    fn too_many_hops() {
        let mut h = Vec::new();
        for i in 0..MAX_RECEIVED {
            h.extend_from_slice(format!("Received: from h{i}\r\n").as_bytes());
        }
        assert_eq!(detect(&h, &["a@b"]), None, "exactly the limit is fine");
        h.extend_from_slice(b"received: one more\r\n");
        assert_eq!(
            detect(&h, &["a@b"]),
            Some(Loop::TooManyHops(MAX_RECEIVED + 1))
        );
    }
}
