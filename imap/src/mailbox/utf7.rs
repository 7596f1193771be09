//! Modified UTF-7 (RFC 3501 §5.1.3), the spelling of mailbox names on the wire and, as Dovecot
//! stores them, on disk.
//!
//! Printable US-ASCII stands for itself, except `&`, written `&-`; every other character is
//! UTF-16, in base64 with `,` for `/`, no padding, between `&` and `-`.
//!
//! SECURITY: `decode` is strict (only the canonical spelling of a name is accepted: printable
//! ASCII never inside a base64 run, no two runs in a row, no stray bits, no lone surrogates,
//! no control characters in the result), so one name has exactly one spelling and two
//! different byte strings can never open the same folder.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf7Error(&'static str);

impl fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn sextet(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|i| i as u32)
}

fn printable(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// A Unicode name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if printable(c as u32) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Writes a base64 run `&...-` for the UTF-16 units gathered, and empties it.
fn flush(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let (mut bits, mut nbits) = (0u32, 0u32);
    for unit in run.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out.push('-');
}

/// The Unicode name a modified UTF-7 name stands for; only the canonical spelling is accepted.
pub fn decode(bytes: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    let mut after_run = false;
    while let Some(&b) = bytes.get(i) {
        if !printable(u32::from(b)) {
            return Err(Utf7Error("not printable 7-bit ASCII"));
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            after_run = false;
            continue;
        }
        let start = i + 1;
        let end = bytes
            .get(start..)
            .and_then(|rest| rest.iter().position(|&c| c == b'-'))
            .map(|p| start + p)
            .ok_or(Utf7Error("'&' without its closing '-'"))?;
        let run = bytes.get(start..end).unwrap_or_default();
        if run.is_empty() {
            out.push('&');
            after_run = false;
        } else {
            if after_run {
                return Err(Utf7Error("two encoded runs in a row"));
            }
            decode_run(run, &mut out)?;
            after_run = true;
        }
        i = end + 1;
    }
    Ok(out)
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), Utf7Error> {
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
    for &b in run {
        let v = sextet(b).ok_or(Utf7Error("not a modified base64 character"))?;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push(((bits >> nbits) & 0xffff) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // Canonical: fewer than 6 bits left over, and all of them zero.
    if nbits >= 6 || bits != 0 {
        return Err(Utf7Error("stray bits at the end of an encoded run"));
    }
    for c in char::decode_utf16(units) {
        let c = c.map_err(|_| Utf7Error("a lone UTF-16 surrogate"))?;
        if printable(c as u32) {
            return Err(Utf7Error("printable ASCII inside an encoded run"));
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_and_round_trips() {
        // RFC 3501 §5.1.3.
        assert_eq!(
            encode("~peter/mail/\u{65e5}\u{672c}\u{8a9e}/\u{53f0}\u{5317}"),
            "~peter/mail/&ZeVnLIqe-/&U,BTFw-"
        );
        assert_eq!(
            decode(b"~peter/mail/&ZeVnLIqe-/&U,BTFw-").as_deref(),
            Ok("~peter/mail/\u{65e5}\u{672c}\u{8a9e}/\u{53f0}\u{5317}")
        );
        for name in [
            "INBOX",
            "Entw\u{fc}rfe",
            "\u{e9}t\u{e9}",
            "A & B",
            "&",
            "emoji \u{1f600} here",
            "\u{444}\u{430}\u{439}\u{43b}\u{44b}",
            "",
        ] {
            let e = encode(name);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{e}");
            assert_eq!(decode(e.as_bytes()).as_deref(), Ok(name), "{e}");
        }
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(encode("A & B"), "A &- B");
    }

    #[test]
    fn only_the_canonical_spelling_is_accepted() {
        for bad in [
            &b"caf\xc3\xa9"[..], // 8-bit: raw UTF-8
            b"a&",               // unterminated
            b"a&AOk",            // unterminated
            b"&AGE-",            // 'a' encoded
            b"&AOk-&AOk-",       // two runs in a row
            b"&AOl-",            // stray bits
            b"&AO-",             // too few bits for a unit, not zero
            b"&2D0-",            // lone high surrogate
            b"&*-",              // not base64
            b"tab\there",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode(b"&-&AOk-").as_deref(), Ok("&\u{e9}"));
        // Control characters decode (they must be encoded); `name.rs` refuses them.
        assert_eq!(decode(b"&AAA-").as_deref(), Ok("\0"));
    }
}
