//! SEARCH text: decoded header values, decoded text bodies, and case-insensitive matching.
//!
//! What is searched follows Dovecot 2.3 (checked against it): HEADER/FROM/SUBJECT/... look at
//! the message's own header fields, RFC 2047 decoded; BODY looks at the text/* parts anywhere
//! in the tree (also inside attached messages), transfer-decoded and converted to UTF-8, never
//! at non-text parts, MIME headers, preambles or epilogues; TEXT adds every header block of
//! the tree (the message's, the parts' MIME headers, attached messages') to BODY.

use super::binary::{self, Cte};
use super::header::fields;
use super::tree::{Kind, Part, Tree};
use super::words::{decode_header, to_utf8};

/// Unicode simple case folding, one character to one: lower-case of the upper-case, so
/// `ς`/`σ`/`Σ`, `ſ`/`s` and `K` (Kelvin)/`k` meet; `ß` stays `ß` (full folding's `ss` would
/// need more than one character, and Dovecot does not match STRASSE against Straße either).
pub(crate) fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    it.next().is_none().then_some(c)
}

/// Decoded values of the message's header fields called `name`.
pub(crate) fn header_values(raw: &[u8], tree: &Tree, name: &str) -> Vec<String> {
    let Some(root) = tree.part(0) else {
        return Vec::new();
    };
    fields(raw, root.fields_range())
        .filter(|f| f.is(raw, name))
        .map(|f| decode_header(raw.get(f.value).unwrap_or_default()))
        .collect()
}

/// The text/* parts' bodies, decoded and in UTF-8, in message order.
pub(crate) fn body_texts(raw: &[u8], tree: &Tree) -> Vec<String> {
    tree.parts
        .iter()
        .filter(|p| p.kind == Kind::Leaf && p.is_text())
        .map(|p| part_text(raw, p))
        .collect()
}

fn part_text(raw: &[u8], part: &Part) -> String {
    let body = raw.get(part.body.clone()).unwrap_or_default();
    let decoded = match binary::cte(raw, part) {
        Cte::Base64 => binary::base64(body),
        Cte::QuotedPrintable => binary::quoted_printable(body),
        Cte::Identity | Cte::Unknown => body.to_vec(),
    };
    let charset = part.ctype.as_ref().and_then(|c| c.param("charset"));
    to_utf8(&decoded, charset)
}

/// Every header field of every header block in the tree, as `Name: decoded value`.
fn all_header_lines(raw: &[u8], tree: &Tree) -> impl Iterator<Item = String> {
    tree.parts.iter().flat_map(move |p| {
        fields(raw, p.fields_range()).map(move |f| {
            let name = String::from_utf8_lossy(raw.get(f.name.clone()).unwrap_or_default());
            format!(
                "{name}: {}",
                decode_header(raw.get(f.value).unwrap_or_default())
            )
        })
    })
}

fn contains(haystack: &str, needle_folded: &str) -> bool {
    needle_folded.is_empty() || fold(haystack).contains(needle_folded)
}

/// SEARCH HEADER name needle (and FROM, TO, SUBJECT, ...): an empty needle matches any
/// message that has the field.
pub(crate) fn header_contains(raw: &[u8], tree: &Tree, name: &str, needle: &str) -> bool {
    let needle = fold(needle);
    header_values(raw, tree, name)
        .iter()
        .any(|v| contains(v, &needle))
}

/// SEARCH BODY needle.
pub(crate) fn body_contains(raw: &[u8], tree: &Tree, needle: &str) -> bool {
    let needle = fold(needle);
    needle.is_empty() || body_texts(raw, tree).iter().any(|t| contains(t, &needle))
}

/// SEARCH TEXT needle: every header block, then the bodies.
pub(crate) fn text_contains(raw: &[u8], tree: &Tree, needle: &str) -> bool {
    let needle = fold(needle);
    needle.is_empty()
        || all_header_lines(raw, tree).any(|l| contains(&l, &needle))
        || body_texts(raw, tree).iter().any(|t| contains(t, &needle))
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn simple_case_folding() {
        assert_eq!(fold("HÔTEL Straße ΣΑΣ ſ \u{212a}"), "hôtel straße σασ s k");
        assert_ne!(fold("STRASSE"), fold("straße"));
        assert_eq!(fold("ς"), fold("Σ"));
    }
}
