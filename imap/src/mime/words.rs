//! Text for SEARCH: RFC 2047 encoded words and charsets converted to UTF-8.
//!
//! Encoded words are found by a scan that stops each attempt at the next `?` or white space,
//! so the work is linear in the value's length. (mail-parser's own header decoder rescans from
//! every `=?` to the end of the line: a 100 KB crafted Subject took 2.8 s in a release build.)
//! Only the charset tables come from mail-parser.

use mail_parser::decoders::charsets::map::charset_decoder;

use super::binary;

/// Converts `bytes` in `charset` to UTF-8. Unknown charsets, US-ASCII and none at all are
/// read as UTF-8 with bad sequences replaced (mislabelled 8-bit text is common and UTF-8 is
/// its most likely encoding).
pub(crate) fn to_utf8(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let decoder = charset
        .filter(|c| {
            !["utf-8", "utf8", "us-ascii", "ascii"]
                .iter()
                .any(|u| c.eq_ignore_ascii_case(u.as_bytes()))
        })
        .and_then(charset_decoder);
    match decoder {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A header value with its folding removed and encoded words decoded; white space between
/// two adjacent encoded words is dropped (RFC 2047 §6.2).
pub(crate) fn decode_header(value: &[u8]) -> String {
    let mut out = String::new();
    let mut plain: Vec<u8> = Vec::new();
    let mut after_word = false;
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'='
            && value.get(i + 1) == Some(&b'?')
            && let Some((text, next)) = encoded_word(value, i)
        {
            let only_space = plain.iter().all(|c| matches!(c, b' ' | b'\t'));
            if !(after_word && only_space) {
                out.push_str(&String::from_utf8_lossy(&plain));
            }
            plain.clear();
            out.push_str(&text);
            after_word = true;
            i = next;
            continue;
        }
        if b != b'\r' && b != b'\n' {
            plain.push(b);
        }
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&plain));
    out
}

/// `=?charset?encoding?text?=` at `start`: the decoded text and the index after it.
fn encoded_word(value: &[u8], start: usize) -> Option<(String, usize)> {
    let rest = value.get(start + 2..)?;
    let q1 = field_end(rest)?;
    let charset = rest.get(..q1)?;
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') || charset.is_empty() {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = field_end(rest.get(text_start..)?)?;
    let text = rest.get(text_start..text_start + text_len)?;
    if rest.get(text_start + text_len + 1) != Some(&b'=') {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => binary::base64(text),
        b'Q' | b'q' => q_decode(text),
        _ => return None,
    };
    // RFC 2231 §5 allows `charset*language`.
    let charset = charset.split(|&c| c == b'*').next().unwrap_or(charset);
    let next = start + 2 + text_start + text_len + 2;
    Some((to_utf8(&bytes, Some(charset)), next))
}

/// Length up to the next `?`, or None if white space (or the end) comes first.
fn field_end(s: &[u8]) -> Option<usize> {
    s.iter()
        .position(|&b| b == b'?' || b.is_ascii_whitespace())
        .filter(|&i| s.get(i) == Some(&b'?'))
}

/// The "Q" encoding: quoted-printable with `_` for space.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = text
        .iter()
        .map(|&b| if b == b'_' { b' ' } else { b })
        .collect();
    binary::quoted_printable(&spaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_decode_and_join() {
        assert_eq!(
            decode_header(b"=?ISO-8859-1?Q?R=E9union_=E0?= =?UTF-8?B?UGFyaXM=?= demain"),
            "Réunion àParis demain"
        );
        assert_eq!(
            decode_header(b"=?utf-8?B?w6l0w6k=?= and\r\n more"),
            "été and more"
        );
        assert_eq!(
            decode_header(b"\"=?utf-8?q?J=C3=BCrgen?=\" <j@x>"),
            "\"Jürgen\" <j@x>"
        );
        assert_eq!(decode_header(b"=?utf-8*fr?q?=C3=A9?="), "é");
        // Not encoded words: kept as written.
        assert_eq!(
            decode_header(b"=?bad =?x?z?y?= a=?b"),
            "=?bad =?x?z?y?= a=?b"
        );
    }

    #[test]
    fn charsets() {
        assert_eq!(to_utf8(b"H\xd4TEL", Some(b"ISO-8859-1")), "HÔTEL");
        assert_eq!(to_utf8(b"caf\xc3\xa9", Some(b"us-ascii")), "café");
        assert_eq!(
            to_utf8(b"\x1b$B$3$s$K$A$O\x1b(B", Some(b"ISO-2022-JP")),
            "こんにちは"
        );
        assert_eq!(to_utf8(b"x\xff", Some(b"no-such-charset")), "x\u{fffd}");
    }

    #[test]
    fn crafted_values_stay_linear() {
        let mut v = Vec::new();
        while v.len() < 1_000_000 {
            v.extend_from_slice(b"x=?ab?q?");
        }
        let started = std::time::Instant::now();
        let _ = decode_header(&v);
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
    }
}
