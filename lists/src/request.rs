//! The `L` request [queue id, list address, extension, envelope sender] (+ message descriptor),
//! checked again: moat-local is trusted to ask, not to be right.

use moat_common::wire::Record;

/// The longest local part a list's own address may have (RFC 5321).
const MAX_LOCAL: usize = 64;
/// The longest extension: command addresses that carry a member's address (VERP, confirmations)
/// may have local parts up to 255 octets (moat-vdomain's `MAX_COMMAND_LOCAL_LEN`).
const MAX_EXTENSION: usize = 255;
/// The longest envelope address taken (RFC 5321's path limit, less the brackets).
const MAX_ADDRESS: usize = 320;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub queue_id: String,
    /// The list's posting address, `local@domain`.
    pub list: String,
    /// What followed `local-` in the recipient ("" = a post).
    pub extension: String,
    /// The envelope sender ("" = the null sender).
    pub sender: String,
}

impl Request {
    /// The list's local part and domain.
    pub fn list_parts(&self) -> (&str, &str) {
        self.list.rsplit_once('@').unwrap_or((&self.list, ""))
    }
}

pub fn parse(record: &Record) -> Result<Request, String> {
    if record.fields.len() != 4 {
        return Err(format!("{} fields (4 expected)", record.fields.len()));
    }
    let text = |i: usize| {
        record
            .text(i)
            .map(str::to_string)
            .map_err(|e| e.to_string())
    };
    let queue_id = text(0)?;
    moat_common::client::check_queue_id(&queue_id)?;
    let list = text(1)?;
    check_address(&list)?;
    let (local, domain) = list.rsplit_once('@').unwrap_or_default();
    if local.len() > MAX_LOCAL
        || !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        || !domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(format!("bad list address {list:?}"));
    }
    let extension = text(2)?;
    if extension.len() > MAX_EXTENSION || !extension.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("bad extension {extension:?}"));
    }
    let sender = text(3)?;
    if !sender.is_empty() {
        check_address(&sender)?;
    }
    Ok(Request {
        queue_id,
        list,
        extension,
        sender,
    })
}

/// An envelope address as it may go into a header or an envelope: no controls (so no line
/// breaks to inject a header with), spaces or brackets, one `@` part on each side.
pub fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= MAX_ADDRESS
        && a.chars().all(|c| {
            !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | '(' | ')' | ',')
        })
        && a.rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!("bad address {a:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> Record {
        fields.iter().fold(Record::new(b'L'), |r, f| r.field(f))
    }

    #[test]
    fn good_and_bad_requests() {
        let ok = parse(&record(&["q1", "dev@example.test", "help", "a@b.example"]));
        assert_eq!(
            ok,
            Ok(Request {
                queue_id: "q1".into(),
                list: "dev@example.test".into(),
                extension: "help".into(),
                sender: "a@b.example".into(),
            })
        );
        assert!(parse(&record(&["q1", "dev@example.test", "", ""])).is_ok());
        for bad in [
            vec!["q/1", "dev@example.test", "", ""],
            vec!["q1", "dev", "", ""],
            vec!["q1", "dev@Example.test", "", ""],
            vec!["q1", "dev@example.test", "a b", ""],
            vec!["q1", "dev@example.test", "", "a\r\nBcc: x@y@z"],
            vec!["q1", "dev@example.test", ""],
        ] {
            assert!(parse(&record(&bad)).is_err(), "{bad:?}");
        }
    }
}
