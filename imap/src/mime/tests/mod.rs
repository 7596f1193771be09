//! Whole-message tests: the corpus against Dovecot's answers (`dovecot.rs`, with the answers
//! in `refs.rs` for the messages in `corpus.rs`), the cases the session relies on
//! (`cases.rs`), and the limits on generated hostile messages, timed (`limits.rs`).

mod cases;
mod corpus;
mod dovecot;
mod limits;
mod refs;

use corpus::ALL;

/// The corpus is written with LF; messages are stored and served with CRLF.
pub(super) fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

pub(super) fn message(name: &str) -> Vec<u8> {
    let (_, text) = ALL
        .iter()
        .find(|(n, _)| *n == name)
        .expect("corpus message");
    crlf(text)
}

/// Reads one IMAP string (quoted, literal or literal8) at `v[i..]`: (bytes, index after).
pub(super) fn imap_string(v: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    match v.get(i)? {
        b'"' => {
            let mut out = Vec::new();
            let mut j = i + 1;
            loop {
                match *v.get(j)? {
                    b'"' => return Some((out, j + 1)),
                    b'\\' => {
                        out.push(*v.get(j + 1)?);
                        j += 2;
                    }
                    b => {
                        out.push(b);
                        j += 1;
                    }
                }
            }
        }
        b'{' | b'~' => {
            let open = i + usize::from(v.get(i) == Some(&b'~'));
            let close = open + v.get(open..)?.iter().position(|&b| b == b'}')?;
            let n: usize = std::str::from_utf8(v.get(open + 1..close)?)
                .ok()?
                .parse()
                .ok()?;
            let start = close + 3;
            Some((v.get(start..start + n)?.to_vec(), start + n))
        }
        _ => None,
    }
}

/// An IMAP value with every string re-written by our writer, so Dovecot's choice between
/// quoted and literal does not matter.
pub(super) fn canon(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        if matches!(b, b'"' | b'{' | b'~')
            && let Some((s, next)) = imap_string(v, i)
        {
            crate::wire::string(&mut out, &s);
            i = next;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

pub(super) fn show(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}
