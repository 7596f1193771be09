//! Strings from a message into IMAP syntax, through `crate::wire`.
//!
//! The one rule added here: a NUL byte (which no IMAP4rev1 string may hold, quoted or literal)
//! becomes U+FFFD, as Dovecot's answers show it.

use std::borrow::Cow;

use crate::wire;

pub(crate) fn string(out: &mut Vec<u8>, value: &[u8]) {
    wire::string(out, &without_nul(value));
}

pub(crate) fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn without_nul(value: &[u8]) -> Cow<'_, [u8]> {
    if !value.contains(&0) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len() + 8);
    for &b in value {
        if b == 0 {
            out.extend_from_slice("\u{fffd}".as_bytes());
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_never_reaches_the_wire() {
        let mut out = Vec::new();
        super::string(&mut out, b"a\0b");
        assert_eq!(out, "{5}\r\na\u{fffd}b".as_bytes());
    }
}
