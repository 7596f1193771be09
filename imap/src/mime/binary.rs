//! Content-Transfer-Encoding decoding for BINARY[] and BINARY.SIZE[] (RFC 3516) and for
//! SEARCH.
//!
//! The decoders follow RFC 2045's advice for robust readers rather than Dovecot's strictness
//! (Dovecot answers `NO [PARSE]` for a stray character): base64 ignores characters outside its
//! alphabet and treats `=` as the end of a quantum; quoted-printable keeps an `=` that starts
//! no valid escape and drops the white space transport agents add at line ends. So the only
//! failure is an encoding we do not know.

use super::params;
use super::tree::{Kind, Part};

/// Why BINARY cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// No part has that number (the session answers as for a missing BODY section).
    NoSuchPart,
    /// The part's Content-Transfer-Encoding is not one we can decode: `NO [UNKNOWN-CTE]`.
    UnknownCte,
}

/// A part's transfer encoding, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

pub(crate) fn cte(raw: &[u8], part: &Part) -> Cte {
    let Some(token) = part
        .mime
        .encoding
        .clone()
        .and_then(|r| raw.get(r))
        .and_then(params::encoding)
    else {
        return Cte::Identity;
    };
    if ["7bit", "8bit", "binary"]
        .iter()
        .any(|e| token.eq_ignore_ascii_case(e.as_bytes()))
    {
        Cte::Identity
    } else if token.eq_ignore_ascii_case(b"base64") {
        Cte::Base64
    } else if token.eq_ignore_ascii_case(b"quoted-printable") {
        Cte::QuotedPrintable
    } else {
        Cte::Unknown
    }
}

/// The decoded body of `part`. A multipart's body is sent as it is: its encoding can only be
/// an identity one (RFC 2045 §6.4).
pub(crate) fn decode_part(raw: &[u8], part: &Part) -> Result<Vec<u8>, BinaryError> {
    let body = raw.get(part.body.clone()).unwrap_or_default();
    if part.kind == Kind::Multipart {
        return Ok(body.to_vec());
    }
    match cte(raw, part) {
        Cte::Identity => Ok(body.to_vec()),
        Cte::Base64 => Ok(base64(body)),
        Cte::QuotedPrintable => Ok(quoted_printable(body)),
        Cte::Unknown => Err(BinaryError::UnknownCte),
    }
}

/// Lenient base64 (RFC 2045 §6.8).
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut n = 0u8;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                flush(&mut out, acc, n);
                acc = 0;
                n = 0;
                continue;
            }
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            acc = 0;
            n = 0;
        }
    }
    flush(&mut out, acc, n);
    out
}

/// The bytes of an incomplete base64 quantum of `n` sextets.
fn flush(out: &mut Vec<u8>, acc: u32, n: u8) {
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
}

/// Lenient quoted-printable (RFC 2045 §6.7); line ends are kept as written.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, ending) = match line {
            [rest @ .., b'\r', b'\n'] => (rest, &b"\r\n"[..]),
            [rest @ .., b'\n'] => (rest, &b"\n"[..]),
            _ => (line, &b""[..]),
        };
        // Trailing white space was added in transit (rule 3).
        let end = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |p| p + 1);
        let content = content.get(..end).unwrap_or_default();
        let mut j = 0;
        let mut soft = false;
        while let Some(&b) = content.get(j) {
            if b == b'=' {
                if j + 1 == content.len() {
                    soft = true;
                    break;
                }
                let hex = match content.get(j + 1..j + 3) {
                    Some(&[h, l]) => hex_digit(h).zip(hex_digit(l)).map(|(h, l)| h << 4 | l),
                    _ => None,
                };
                if let Some(v) = hex {
                    out.push(v);
                    j += 3;
                    continue;
                }
            }
            out.push(b);
            j += 1;
        }
        if !soft {
            out.extend_from_slice(ending);
        }
    }
    out
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_lenient() {
        assert_eq!(base64(b"AAECAwQF"), [0, 1, 2, 3, 4, 5]);
        assert_eq!(base64(b"AAEC\r\nAw==\r\n"), [0, 1, 2, 3]);
        assert_eq!(base64(b"AAEC!!AwQF"), [0, 1, 2, 3, 4, 5]);
        assert_eq!(base64(b"AAECA"), [0, 1, 2]);
        assert_eq!(base64(b"AA==AAEC"), [0, 0, 1, 2]);
        assert_eq!(base64(b"U3RyYcOfZQ=="), "Straße".as_bytes());
    }

    #[test]
    fn quoted_printable_soft_breaks_escapes_and_stray_equals() {
        assert_eq!(
            quoted_printable(b"line one=0D=0Aline=20two soft=\r\n break =3D sign"),
            b"line one\r\nline two soft break = sign"
        );
        assert_eq!(
            quoted_printable(b"a=zzb=4\r\nc=  \r\nd=3d\r\n"),
            b"a=zzb=4\r\ncd=\r\n"
        );
        assert_eq!(quoted_printable(b"trail   \r\nx"), b"trail\r\nx");
        assert_eq!(quoted_printable(b"Caf=E9 =+1"), b"Caf\xe9 =+1");
    }
}
