//! Writing IMAP response syntax (RFC 3501 §4, §9): atoms, quoted strings, literals, NIL.
//!
//! Every response byte that carries data from a message or a client goes through here, so the
//! quoting rules live in one place. The choice between quoted and literal is made on the bytes:
//! a quoted string may not hold CR, LF, NUL or 8-bit octets (RFC 3501 `QUOTED-CHAR`), and long
//! values are sent as literals because clients parse those without scanning for escapes.
//!
//! SECURITY: a value that would break the response's framing (CRLF in a quoted string) can never
//! be written as quoted; it always becomes a literal whose length is exact.

/// Longest value sent as a quoted string; anything longer goes as a literal.
const MAX_QUOTED: usize = 1024;

/// An IMAP `string`: quoted when every byte allows it, else a literal.
pub fn string(out: &mut Vec<u8>, value: &[u8]) {
    if value.len() <= MAX_QUOTED && value.iter().all(|&b| quotable(b)) {
        quoted(out, value);
    } else {
        literal(out, value);
    }
}

/// An IMAP `nstring`: `NIL` for `None`.
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An IMAP `astring`: a bare atom when the value is one (mailbox names in LIST look natural),
/// else a string.
pub fn astring(out: &mut Vec<u8>, value: &[u8]) {
    if !value.is_empty() && value.iter().all(|&b| astring_char(b)) {
        out.extend_from_slice(value);
    } else {
        string(out, value);
    }
}

/// A synchronising literal `{n}\r\n` followed by the bytes.
pub fn literal(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(value);
}

/// A quoted string; the caller has checked `quotable` for every byte.
fn quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// RFC 3501 `TEXT-CHAR` minus nothing: any 7-bit byte except NUL, CR and LF (`"` and `\` are
/// escaped).
fn quotable(b: u8) -> bool {
    b != 0 && b != b'\r' && b != b'\n' && b < 0x80
}

/// RFC 3501 `ASTRING-CHAR`: `ATOM-CHAR` or `]`.
fn astring_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(f: fn(&mut Vec<u8>, &[u8]), v: &[u8]) -> String {
        let mut out = Vec::new();
        f(&mut out, v);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings_are_quoted_escaped_or_literal() {
        assert_eq!(w(string, b"plain text"), "\"plain text\"");
        assert_eq!(w(string, b"a \"q\" \\ b"), "\"a \\\"q\\\" \\\\ b\"");
        assert_eq!(w(string, b""), "\"\"");
        assert_eq!(w(string, b"line\r\nbreak"), "{11}\r\nline\r\nbreak");
        assert_eq!(w(string, "caf\u{e9}".as_bytes()), "{5}\r\ncaf\u{e9}");
        assert_eq!(w(string, b"nul\0"), "{4}\r\nnul\0");
        let long = vec![b'x'; MAX_QUOTED + 1];
        assert!(w(string, &long).starts_with("{1025}\r\n"));
    }

    #[test]
    fn astrings_and_nil() {
        assert_eq!(w(astring, b"INBOX"), "INBOX");
        assert_eq!(w(astring, b"Sent/2026]"), "Sent/2026]");
        assert_eq!(w(astring, b"My Folder"), "\"My Folder\"");
        assert_eq!(w(astring, b"50%"), "\"50%\"");
        assert_eq!(w(astring, b""), "\"\"");
        let mut out = Vec::new();
        nstring(&mut out, None);
        out.push(b' ');
        nstring(&mut out, Some(b"x"));
        assert_eq!(out, b"NIL \"x\"");
    }
}
