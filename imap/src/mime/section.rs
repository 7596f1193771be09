//! BODY[section] extraction (RFC 3501 §6.4.5): exact bytes of the stored message.
//!
//! Part numbers resolve as in Dovecot (see `Tree::resolve`); HEADER, HEADER.FIELDS[.NOT] and
//! TEXT need the message or a message/rfc822 part; MIME needs a part number. A section that
//! does not exist is None (Dovecot then sends an empty string). The bytes are the stored ones
//! except NUL, which becomes 0x80 (a literal may not hold NUL; BINARY keeps it).

use super::header::fields;
use super::tree::Tree;

/// A BODY section: `part` is the dotted part number (empty for the whole message), `text` the
/// optional section-text after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// RFC 3501 `section-msgtext` and `MIME`. Field names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<Vec<u8>>),
    HeaderFieldsNot(Vec<Vec<u8>>),
    Text,
    Mime,
}

pub(crate) fn extract(raw: &[u8], tree: &Tree, spec: &Section) -> Option<Vec<u8>> {
    let mut bytes = bytes(raw, tree, spec)?;
    // No IMAP4rev1 string may carry NUL; Dovecot sends it as 0x80, a 1:1 swap that keeps
    // every size and offset.
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
    Some(bytes)
}

fn bytes(raw: &[u8], tree: &Tree, spec: &Section) -> Option<Vec<u8>> {
    let slice = |r: std::ops::Range<usize>| raw.get(r).map(<[u8]>::to_vec);
    match &spec.text {
        None if spec.part.is_empty() => Some(raw.to_vec()),
        None => slice(tree.part(tree.resolve(&spec.part)?)?.body.clone()),
        Some(SectionText::Mime) => {
            if spec.part.is_empty() {
                return None;
            }
            slice(tree.part(tree.resolve(&spec.part)?)?.header.clone())
        }
        Some(SectionText::Header) => slice(tree.part(tree.message_at(&spec.part)?)?.header.clone()),
        Some(SectionText::Text) => slice(tree.part(tree.message_at(&spec.part)?)?.body.clone()),
        Some(SectionText::HeaderFields(names)) => Some(filter(
            raw,
            tree,
            tree.message_at(&spec.part)?,
            names,
            false,
        )),
        Some(SectionText::HeaderFieldsNot(names)) => {
            Some(filter(raw, tree, tree.message_at(&spec.part)?, names, true))
        }
    }
}

/// The fields named (or, with `not`, not named) in `names`, in message order, each with its
/// folding as stored, then the blank line. Lines past the parse limit are not looked at: `.NOT`
/// passes them on unfiltered, a field list cannot select them.
fn filter(raw: &[u8], tree: &Tree, id: usize, names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(part) = tree.part(id) else {
        return out;
    };
    let mut it = fields(raw, part.fields_range());
    for f in it.by_ref() {
        let name = raw.get(f.name.clone()).unwrap_or_default();
        let listed = !name.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != not {
            let bytes = raw.get(f.whole.clone()).unwrap_or_default();
            out.extend_from_slice(bytes);
            if !bytes.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if not {
        let rest = raw.get(it.unparsed()).unwrap_or_default();
        out.extend_from_slice(rest);
        if !rest.is_empty() && !rest.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `<origin.count>` applied to a section's bytes (the part of it that exists; empty past the
/// end).
pub fn partial(data: &[u8], origin: u32, count: u32) -> &[u8] {
    let start = usize::try_from(origin)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start
        .saturating_add(usize::try_from(count).unwrap_or(usize::MAX))
        .min(data.len());
    data.get(start..end).unwrap_or_default()
}
