//! MIME header values: Content-Type, Content-Disposition, Content-Language,
//! Content-Transfer-Encoding (RFC 2045, RFC 2183, RFC 3282) and RFC 2231 parameters.
//!
//! The rules follow what Dovecot 2.3 shows in BODYSTRUCTURE, so cached structures look the same
//! to clients after a migration: names and values keep their case, quoted pairs are undone,
//! encoded words stay encoded, RFC 2231 continuations are joined (`name*0`, `name*1` → `name`;
//! with an extended piece → `name*` = `charset'lang'...`), a broken Content-Type keeps what
//! could be read and drops its parameters.

use super::lex::Lexer;

/// One `name=value` parameter, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// A parsed Content-Type. `ty`/`sub` are empty strings when the value was unreadable (Dovecot
/// shows `("" "" NIL ...)` then).
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentType {
    pub ty: Vec<u8>,
    pub sub: Vec<u8>,
    pub params: Vec<Param>,
}

impl ContentType {
    pub(crate) fn is(&self, ty: &str, sub: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty.as_bytes()) && self.sub.eq_ignore_ascii_case(sub.as_bytes())
    }

    /// The first parameter of that name (names compare case-insensitively).
    pub(crate) fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|p| p.value.as_slice())
    }
}

/// `type "/" subtype *(";" parameter)`.
pub(crate) fn content_type(value: &[u8]) -> ContentType {
    let mut lex = Lexer::new(value);
    lex.skip_cfws();
    let ty = lex.token();
    if ty.is_empty() {
        return ContentType::default();
    }
    lex.skip_cfws();
    if lex.peek() != Some(b'/') {
        // "text" alone: the type is kept, the rest is not trusted (Dovecot does the same).
        return ContentType {
            ty: ty.to_vec(),
            ..ContentType::default()
        };
    }
    lex.bump();
    lex.skip_cfws();
    let sub = lex.token();
    lex.skip_cfws();
    if sub.is_empty() || !matches!(lex.peek(), None | Some(b';')) {
        // `text/`, or `multipart/mixed boundary=...` without its `;`: nothing is trusted, and
        // the part is not a multipart (what Dovecot does).
        return ContentType::default();
    }
    ContentType {
        ty: ty.to_vec(),
        sub: sub.to_vec(),
        params: parameters(&mut lex),
    }
}

/// `disposition-type *(";" parameter)`; the type may be empty (`Content-Disposition: ;`).
pub(crate) fn disposition(value: &[u8]) -> (Vec<u8>, Vec<Param>) {
    let mut lex = Lexer::new(value);
    lex.skip_cfws();
    let ty = lex.token().to_vec();
    (ty, parameters(&mut lex))
}

/// The transfer encoding's token (`BASE64 (comment)` → `BASE64`), or None if unreadable
/// (`8 bit` is; the part then counts as 7bit, as in Dovecot).
pub(crate) fn encoding(value: &[u8]) -> Option<&[u8]> {
    let mut lex = Lexer::new(value);
    lex.skip_cfws();
    let token = lex.token();
    lex.skip_cfws();
    (!token.is_empty() && lex.at_end()).then_some(token)
}

/// Content-Language: a comma-separated list of language tags; empty elements and garbage are
/// skipped.
pub(crate) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut lex = Lexer::new(value);
    let mut out = Vec::new();
    loop {
        lex.skip_cfws();
        if lex.at_end() {
            return out;
        }
        let tag = lex.atom();
        if tag.is_empty() {
            lex.skip_unit();
        } else {
            out.push(tag.to_vec());
        }
    }
}

/// `*(";" attribute "=" value)` after the type, then RFC 2231 joining. Anything unreadable is
/// skipped up to the next `;`, so one bad parameter does not lose the others.
fn parameters(lex: &mut Lexer<'_>) -> Vec<Param> {
    let mut raw = Vec::new();
    loop {
        lex.skip_cfws();
        match lex.peek() {
            None => break,
            Some(b';') => lex.bump(),
            Some(_) => {
                lex.skip_unit();
                continue;
            }
        }
        lex.skip_cfws();
        // An empty name is kept when a value follows (`; =x`), as Dovecot keeps it.
        let name = lex.token();
        lex.skip_cfws();
        if lex.peek() != Some(b'=') {
            continue;
        }
        lex.bump();
        lex.skip_cfws();
        let mut value = Vec::new();
        if lex.peek() == Some(b'"') {
            if !lex.quoted(&mut value) {
                continue;
            }
        } else {
            let token = lex.token();
            if token.is_empty() {
                continue;
            }
            value.extend_from_slice(token);
        }
        raw.push(Param {
            name: name.to_vec(),
            value,
        });
    }
    join_rfc2231(raw)
}

/// One `name*N[*]` piece of an RFC 2231 parameter.
struct Piece {
    key: Vec<u8>,
    index: u32,
    extended: bool,
    value: Vec<u8>,
}

/// Splits `name*`, `name*3`, `name*3*` into (name, index, extended); None for anything else.
fn piece_name(name: &[u8]) -> Option<(&[u8], u32, bool)> {
    let star = name.iter().position(|&b| b == b'*')?;
    let (key, rest) = name.split_at(star);
    let rest = rest.get(1..).unwrap_or_default();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (num, tail) = rest.split_at(digits);
    let index = if num.is_empty() {
        0
    } else {
        std::str::from_utf8(num).ok()?.parse().ok()?
    };
    match tail {
        [] => Some((key, index, num.is_empty())),
        [b'*'] => Some((key, index, true)),
        _ => None,
    }
}

/// Joins RFC 2231 continuations as Dovecot does: plain parameters first in their order, then
/// the joined ones sorted by name. A set with a missing index is shown piece by piece.
fn join_rfc2231(raw: Vec<Param>) -> Vec<Param> {
    let mut plain = Vec::new();
    let mut pieces = Vec::new();
    for p in raw {
        match piece_name(&p.name) {
            Some((key, index, extended)) => pieces.push(Piece {
                key: key.to_vec(),
                index,
                extended,
                value: p.value,
            }),
            None => plain.push(p),
        }
    }
    if pieces.is_empty() {
        return plain;
    }
    pieces.sort_by(|a, b| {
        a.key
            .to_ascii_lowercase()
            .cmp(&b.key.to_ascii_lowercase())
            .then(a.index.cmp(&b.index))
    });
    let mut i = 0;
    while let Some(first) = pieces.get(i) {
        let next = pieces
            .iter()
            .skip(i)
            .position(|p| !p.key.eq_ignore_ascii_case(&first.key))
            .map_or(pieces.len(), |n| i + n);
        let group = pieces.get(i..next).unwrap_or_default();
        let complete = group.iter().zip(0u32..).all(|(p, n)| p.index == n);
        let any_extended = group.iter().any(|p| p.extended);
        if !complete {
            for p in group {
                let mut name = p.key.clone();
                name.extend_from_slice(format!("*{}", p.index).as_bytes());
                if p.extended {
                    name.push(b'*');
                }
                plain.push(Param {
                    name,
                    value: p.value.clone(),
                });
            }
        } else {
            let mut value = Vec::new();
            if any_extended && !first.extended {
                value.extend_from_slice(b"''");
            }
            for p in group {
                if any_extended && !p.extended {
                    percent_escape(&mut value, &p.value);
                } else {
                    value.extend_from_slice(&p.value);
                }
            }
            let mut name = first.key.clone();
            if any_extended {
                name.push(b'*');
            }
            plain.push(Param { name, value });
        }
        i = next;
    }
    plain
}

/// A plain piece joined into an extended value must be percent-encoded where RFC 2231 would.
fn percent_escape(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b == b'%' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(params: &[Param]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.name).into_owned(),
                    String::from_utf8_lossy(&p.value).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn content_type_forms() {
        let ct = content_type(b"TEXT/Plain; CharSet=\"ISO-8859-1\"; Format=Flowed");
        assert_eq!(
            (ct.ty.as_slice(), ct.sub.as_slice()),
            (&b"TEXT"[..], &b"Plain"[..])
        );
        assert!(ct.is("text", "plain"));
        assert_eq!(ct.param("charset"), Some(&b"ISO-8859-1"[..]));
        let ct = content_type(b" text / plain ; charset = \"utf-8\" (c)");
        assert_eq!(names_values(&ct.params), pairs(&[("charset", "utf-8")]));
        let ct = content_type(b"garbage");
        assert_eq!(
            (ct.ty.as_slice(), ct.sub.as_slice()),
            (&b"garbage"[..], &b""[..])
        );
        for broken in [&b""[..], b"/plain", b"text/"] {
            let ct = content_type(broken);
            assert!(ct.ty.is_empty() && ct.sub.is_empty() && ct.params.is_empty());
        }
        // A bad parameter is skipped, the next one is kept.
        let ct = content_type(b"text/plain; name=a b c; x=y; charset; q=\"a\\\"b\"; =e; u=\"open");
        assert_eq!(
            names_values(&ct.params),
            pairs(&[("name", "a"), ("x", "y"), ("q", "a\"b"), ("", "e")])
        );
        // Garbage right after the subtype makes the whole value untrusted.
        for broken in [
            &b"text/plain charset=x"[..],
            b"multipart/mixed\r\n\tboundary=b",
        ] {
            assert!(content_type(broken).ty.is_empty());
        }
        assert!(content_type(b"text/plain (c) ;; x=y;").is("text", "plain"));
    }

    #[test]
    fn rfc2231_joining_matches_dovecot() {
        // Dovecot 2.3.19.1 shows these as ("charset" "y" "a" "xz" "c*" "us-ascii''%42C").
        let ct = content_type(b"text/plain; a*0=x; charset=y; a*1=z; c*0*=us-ascii''%42; c*1=C");
        assert_eq!(
            names_values(&ct.params),
            pairs(&[("charset", "y"), ("a", "xz"), ("c*", "us-ascii''%42C")])
        );
        let (ty, params) = disposition(b"attachment; filename*=utf-8''%C3%A9t%C3%A9.txt");
        assert_eq!(ty, b"attachment");
        assert_eq!(
            names_values(&params),
            pairs(&[("filename*", "utf-8''%C3%A9t%C3%A9.txt")])
        );
        let ct = content_type(b"application/x; a*1=x; a*2=y");
        assert_eq!(
            names_values(&ct.params),
            pairs(&[("a*1", "x"), ("a*2", "y")])
        );
        let ct = content_type(b"text/plain; name*0*=utf-8''a%20b; name*1=\" c%\"");
        assert_eq!(
            names_values(&ct.params),
            pairs(&[("name*", "utf-8''a%20b c%25")])
        );
    }

    #[test]
    fn languages_and_encodings() {
        assert_eq!(
            languages(b"en-GB, fr"),
            vec![b"en-GB".to_vec(), b"fr".to_vec()]
        );
        assert_eq!(
            languages(b" (c) en_US, , *"),
            vec![b"en_US".to_vec(), b"*".to_vec()]
        );
        assert!(languages(b"  ").is_empty());
        assert_eq!(encoding(b" BASE64 (comment)"), Some(&b"BASE64"[..]));
        assert_eq!(encoding(b" @@"), None);
        assert_eq!(encoding(b"8 bit"), None);
        assert_eq!(disposition(b";"), (Vec::new(), Vec::new()));
    }
}
