//! Status responses (RFC 3501 §7.1): tagged and untagged OK/NO/BAD/BYE with an optional
//! response code (RFC 5530), written straight into the output buffer.
//!
//! SECURITY: the human-readable text is ours, never the client's bytes; anything that could
//! end the line early (CR, LF, other controls) is replaced by a space before it is written.

/// Appends `<tag> <status> [<code>] <text>\r\n`; `tag` `*` makes it untagged.
pub fn status(out: &mut Vec<u8>, tag: &str, status: &str, text: &str) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    out.extend(
        text.bytes()
            .map(|b| if b.is_ascii_control() { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

pub fn ok(out: &mut Vec<u8>, tag: &str, text: &str) {
    status(out, tag, "OK", text);
}

pub fn no(out: &mut Vec<u8>, tag: &str, text: &str) {
    status(out, tag, "NO", text);
}

pub fn bad(out: &mut Vec<u8>, tag: &str, text: &str) {
    status(out, tag, "BAD", text);
}

pub fn bye(out: &mut Vec<u8>, text: &str) {
    status(out, "*", "BYE", text);
}

/// An untagged data line: `* <text>\r\n` (the caller built `text` with `wire`).
pub fn untagged(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cannot_be_split() {
        let mut out = Vec::new();
        no(&mut out, "a1", "[CANNOT] bad\r\n* OK injected");
        bye(&mut out, "bye");
        assert_eq!(out, b"a1 NO [CANNOT] bad  * OK injected\r\n* BYE bye\r\n");
    }
}
