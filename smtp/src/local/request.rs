//! moat-local's two requests, read out of their records and checked: `L` deliver [queue id,
//! sender, recipient] (a list post with RFC 8058 headers adds [one-click attribute], checked
//! again by `OneClick::decode`) and `C` check [recipient, size].
//!
//! SECURITY: the fields come from another process (the queue, or smtpd, which relays what an
//! internet client typed). Every field is re-checked here: exact field counts, UTF-8, bounded
//! lengths, no control characters (the addresses end up in header lines and log lines, so a
//! CR or LF would let a peer forge headers), no angle brackets, and queue ids of plain
//! alphanumerics. Addresses coming back from moat-auth go through `check_address` too.

use moat_common::client::check_queue_id;
use moat_common::client::one_click::OneClick;
use moat_common::wire::Record;

/// The longest address accepted (RFC 5321 allows a 256-octet path; leave room for UTF-8).
pub const MAX_ADDRESS: usize = 512;

/// `L`: deliver the attached message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverRequest {
    pub queue_id: String,
    /// The envelope sender; "" is the null sender.
    pub sender: String,
    pub recipient: String,
    /// A list post's one-click attribute: prepend the recipient's `List-Unsubscribe` fields.
    pub one_click: Option<OneClick>,
}

/// `C`: does this recipient exist, and has it room for `size` bytes?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub recipient: String,
    /// `None` when the client did not announce a size.
    pub size: Option<u64>,
}

impl DeliverRequest {
    pub fn parse(r: &Record) -> Result<DeliverRequest, String> {
        if r.fields.len() != 4 {
            expect_fields(r, 3)?;
        }
        let queue_id = text(r, 0)?;
        check_queue_id(queue_id)?;
        let sender = text(r, 1)?;
        if !sender.is_empty() {
            check_address(sender).map_err(|e| format!("bad sender: {e}"))?;
        }
        let recipient = text(r, 2)?;
        check_address(recipient).map_err(|e| format!("bad recipient: {e}"))?;
        let one_click = match r.fields.len() {
            4 => Some(OneClick::decode(text(r, 3)?)?),
            _ => None,
        };
        Ok(DeliverRequest {
            queue_id: queue_id.to_string(),
            sender: sender.to_string(),
            recipient: recipient.to_string(),
            one_click,
        })
    }
}

impl CheckRequest {
    pub fn parse(r: &Record) -> Result<CheckRequest, String> {
        expect_fields(r, 2)?;
        let recipient = text(r, 0)?;
        check_address(recipient).map_err(|e| format!("bad recipient: {e}"))?;
        let size = match text(r, 1)? {
            "" => None,
            s if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
                Some(s.parse().map_err(|_| format!("bad size {s:?}"))?)
            }
            s => return Err(format!("bad size {s:?}")),
        };
        Ok(CheckRequest {
            recipient: recipient.to_string(),
            size,
        })
    }
}

fn expect_fields(r: &Record, n: usize) -> Result<(), String> {
    if r.fields.len() == n {
        Ok(())
    } else {
        Err(format!(
            "request {:?} has {} fields, expected {n}",
            r.kind as char,
            r.fields.len()
        ))
    }
}

fn text(r: &Record, i: usize) -> Result<&str, String> {
    r.text(i).map_err(|e| e.to_string())
}

/// Checks that `address` is safe to use as an address in a header line, a log line and a
/// request to another process: `local@domain`, both parts non-empty, bounded, no control
/// characters, no angle brackets. (Full RFC 5321 syntax is smtpd's job; this is the boundary
/// check that keeps a confused peer from injecting anything.)
pub fn check_address(address: &str) -> Result<(), &'static str> {
    if address.is_empty() || address.len() > MAX_ADDRESS {
        return Err("empty or too long");
    }
    if address
        .chars()
        .any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err("control character or angle bracket");
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            if domain.chars().any(char::is_whitespace) {
                Err("white space in the domain")
            } else {
                Ok(())
            }
        }
        _ => Err("not local@domain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(id: &str, from: &str, to: &str) -> Record {
        Record::new(b'L').field(id).field(from).field(to)
    }

    #[test]
    fn deliver_requests() {
        let ok = DeliverRequest::parse(&l("1TW2KQ8F0A3C0001", "", "a@example.test"));
        assert_eq!(
            ok,
            Ok(DeliverRequest {
                queue_id: "1TW2KQ8F0A3C0001".into(),
                sender: String::new(),
                recipient: "a@example.test".into(),
                one_click: None,
            })
        );
        let oc = OneClick::for_list("https://l.test", "dev@x.test", &[1; 32]).expect("oc");
        let with = l("Q1", "s@x", "a@example.test").field(oc.encode());
        assert_eq!(
            DeliverRequest::parse(&with).map(|r| r.one_click),
            Ok(Some(oc))
        );
        for bad in [
            l("", "s@x", "a@example.test"),
            l("../etc", "s@x", "a@example.test"),
            l("Q1", "s@x\r\nBcc: x", "a@example.test"),
            l("Q1", "s@x", "a@example.test\n"),
            l("Q1", "s@x", "<a@example.test>"),
            l("Q1", "s@x", "nobody"),
            l("Q1", "s@x", "@example.test"),
            l("Q1", "s@x", "a@"),
            l("Q1", "s@x", &format!("{}@x", "a".repeat(MAX_ADDRESS))),
            Record::new(b'L').field("Q1").field("s@x"),
            l("Q1", "s@x", "a@b").field("extra"),
            l("Q1", "s@x", "a@b").field("").field("more"),
            Record::new(b'L')
                .field("Q1")
                .field("")
                .field([0xffu8, 0xfe]),
        ] {
            assert!(DeliverRequest::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn check_requests() {
        let c =
            |to: &str, size: &str| CheckRequest::parse(&Record::new(b'C').field(to).field(size));
        assert_eq!(
            c("a@example.test", "1234"),
            Ok(CheckRequest {
                recipient: "a@example.test".into(),
                size: Some(1234)
            })
        );
        assert_eq!(c("a@example.test", "").map(|r| r.size), Ok(None));
        for (to, size) in [
            ("a@example.test", "-1"),
            ("a@example.test", "1e3"),
            ("a@example.test", "99999999999999999999999"),
            ("a@example.test", " 12"),
            ("a\0@example.test", "1"),
        ] {
            assert!(c(to, size).is_err(), "{to:?} {size:?}");
        }
    }

    #[test]
    fn addresses() {
        assert!(check_address("\"john doe\"@example.test").is_ok());
        assert!(check_address("ünï@例え.test").is_ok());
        assert!(check_address("a@exa mple").is_err());
        assert!(check_address("a@b\u{7f}").is_err());
    }
}
