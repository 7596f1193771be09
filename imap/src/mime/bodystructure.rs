//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) as IMAP wire bytes.
//!
//! Shaped like Dovecot 2.3's answers: type, subtype, parameter names and values as written in
//! the message; text/* without a charset gets `("charset" "us-ascii")` appended; no
//! Content-Type means text/plain (message/rfc822 in a digest); sizes are the octets of the
//! encoded body as stored; lines count LFs; body-fld-md5 is Content-MD5's value (NIL without
//! one). A multipart without parts (no boundary, or none found) shows one empty text/plain
//! part, since the syntax needs at least one.

use super::emit::{nstring, string};
use super::envelope;
use super::header::nolf;
use super::params::{self, Param};
use super::tree::{Kind, Part, Tree};

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

/// Writes the structure of part `id` (recursion is bounded by the tree's `MAX_DEPTH`).
pub(crate) fn write(out: &mut Vec<u8>, raw: &[u8], tree: &Tree, id: usize, extended: bool) {
    let Some(part) = tree.part(id) else {
        out.extend_from_slice(if extended {
            EMPTY_BODYSTRUCTURE
        } else {
            EMPTY_BODY
        });
        return;
    };
    if part.kind == Kind::Multipart {
        multipart(out, raw, tree, part, extended);
    } else {
        single(out, raw, tree, part, extended);
    }
}

fn multipart(out: &mut Vec<u8>, raw: &[u8], tree: &Tree, part: &Part, extended: bool) {
    out.push(b'(');
    if part.children.is_empty() {
        out.extend_from_slice(if extended {
            EMPTY_BODYSTRUCTURE
        } else {
            EMPTY_BODY
        });
    }
    for &child in &part.children {
        write(out, raw, tree, child, extended);
    }
    out.push(b' ');
    let params = part
        .ctype
        .as_ref()
        .map(|c| c.params.as_slice())
        .unwrap_or_default();
    string(
        out,
        part.ctype
            .as_ref()
            .map(|c| c.sub.as_slice())
            .unwrap_or_default(),
    );
    if extended {
        out.push(b' ');
        write_params(out, params, false);
        extension_common(out, raw, part);
    }
    out.push(b')');
}

fn single(out: &mut Vec<u8>, raw: &[u8], tree: &Tree, part: &Part, extended: bool) {
    let value = |r: &Option<std::ops::Range<usize>>| r.clone().and_then(|r| raw.get(r)).map(nolf);
    let text = part.is_text();
    out.push(b'(');
    let no_params: &[Param] = &[];
    let params = match (part.kind, &part.ctype) {
        (Kind::Opaque, _) => {
            out.extend_from_slice(b"\"application\" \"octet-stream\"");
            no_params
        }
        (_, Some(ct)) => {
            string(out, &ct.ty);
            out.push(b' ');
            string(out, &ct.sub);
            &ct.params
        }
        (_, None) if part.digest_default => {
            out.extend_from_slice(b"\"message\" \"rfc822\"");
            no_params
        }
        (_, None) => {
            out.extend_from_slice(b"\"text\" \"plain\"");
            no_params
        }
    };
    out.push(b' ');
    write_params(out, params, text);
    out.push(b' ');
    nstring(out, value(&part.mime.id).as_deref());
    out.push(b' ');
    nstring(out, value(&part.mime.description).as_deref());
    out.push(b' ');
    let encoding = part
        .mime
        .encoding
        .clone()
        .and_then(|r| raw.get(r))
        .and_then(params::encoding);
    string(out, encoding.unwrap_or(b"7bit"));
    out.push(b' ');
    out.extend_from_slice(part.body.len().to_string().as_bytes());
    if text {
        out.push(b' ');
        out.extend_from_slice(lines(raw, part).to_string().as_bytes());
    } else if part.kind == Kind::Message {
        let child = part.children.first().copied().unwrap_or(usize::MAX);
        out.push(b' ');
        envelope::write(out, raw, tree, child);
        out.push(b' ');
        write(out, raw, tree, child, extended);
        out.push(b' ');
        out.extend_from_slice(lines(raw, part).to_string().as_bytes());
    }
    if extended {
        out.push(b' ');
        nstring(out, value(&part.mime.md5).as_deref());
        extension_common(out, raw, part);
    }
    out.push(b')');
}

/// Disposition, language and location, shared by both forms.
fn extension_common(out: &mut Vec<u8>, raw: &[u8], part: &Part) {
    let field = |r: &Option<std::ops::Range<usize>>| r.clone().and_then(|r| raw.get(r));
    out.push(b' ');
    match field(&part.mime.disposition) {
        Some(v) => {
            let (ty, params) = params::disposition(v);
            out.push(b'(');
            string(out, &ty);
            out.push(b' ');
            write_params(out, &params, false);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let langs = field(&part.mime.language)
        .map(params::languages)
        .unwrap_or_default();
    if langs.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, lang) in langs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(out, lang);
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring(out, field(&part.mime.location).map(nolf).as_deref());
}

/// `("name" "value" ...)` or NIL; text parts get a default charset at the end.
fn write_params(out: &mut Vec<u8>, params: &[Param], default_charset: bool) {
    if params.is_empty() && !default_charset {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, &p.name);
        out.push(b' ');
        string(out, &p.value);
    }
    if default_charset
        && !params
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(b"charset"))
    {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

/// Lines of the body: its LF count (a last line without one does not count, as in Dovecot).
fn lines(raw: &[u8], part: &Part) -> usize {
    memchr::memchr_iter(b'\n', raw.get(part.body.clone()).unwrap_or_default()).count()
}
