//! Header fields of one header block: iteration (capped at `MAX_HEADER_LINES` lines), value
//! clean-up as IMAP shows it, and the MIME fields a part's structure depends on.

use std::ops::Range;

use super::limits::MAX_HEADER_LINES;

/// One header field: its first line and any continuation lines.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// Where the field starts and ends (after its last line ending).
    pub whole: Range<usize>,
    /// The name, trailing white space trimmed; empty for a line without a colon.
    pub name: Range<usize>,
    /// After the colon and the white space following it, up to the last line ending
    /// (exclusive); folding CRLFs inside are kept.
    pub value: Range<usize>,
}

/// Iterates the fields in `raw[range]` (the header without its blank line), at most
/// `MAX_HEADER_LINES` lines.
pub(crate) struct Fields<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
    lines_left: usize,
}

pub(crate) fn fields(raw: &[u8], range: Range<usize>) -> Fields<'_> {
    Fields {
        raw,
        pos: range.start,
        end: range.end.min(raw.len()),
        lines_left: MAX_HEADER_LINES,
    }
}

impl Fields<'_> {
    /// What the line limit left unparsed (empty unless the header had more lines).
    pub(crate) fn unparsed(&self) -> Range<usize> {
        self.pos.min(self.end)..self.end
    }

    /// The end of the line starting at `pos` (after its LF), within the header.
    fn line_end(&self, pos: usize) -> usize {
        let rest = self.raw.get(pos..self.end).unwrap_or_default();
        memchr::memchr(b'\n', rest).map_or(self.end, |i| pos + i + 1)
    }
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        if self.pos >= self.end || self.lines_left == 0 {
            return None;
        }
        let start = self.pos;
        let mut end = self.line_end(start);
        self.lines_left -= 1;
        // Continuation lines belong to this field (a header starting with one makes it a
        // nameless field, as nothing precedes it).
        while end < self.end
            && self.lines_left > 0
            && matches!(self.raw.get(end), Some(b' ' | b'\t'))
        {
            end = self.line_end(end);
            self.lines_left -= 1;
        }
        self.pos = end;

        let first = self.raw.get(start..end).unwrap_or_default();
        let first_line = first.split(|&b| b == b'\n').next().unwrap_or_default();
        let colon = if matches!(first.first(), Some(b' ' | b'\t')) {
            None
        } else {
            first_line.iter().position(|&b| b == b':')
        };
        let content_end = end - trailing_newline(first);
        let Some(colon) = colon else {
            return Some(Field {
                whole: start..end,
                name: start..start,
                value: start..content_end,
            });
        };
        let name_len = first_line
            .get(..colon)
            .unwrap_or_default()
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let mut value_start = start + colon + 1;
        while value_start < content_end && matches!(self.raw.get(value_start), Some(b' ' | b'\t')) {
            value_start += 1;
        }
        Some(Field {
            whole: start..end,
            name: start..start + name_len,
            value: value_start..content_end.max(value_start),
        })
    }
}

/// Length of the CRLF or LF ending `bytes` (0 if none).
fn trailing_newline(bytes: &[u8]) -> usize {
    match bytes {
        [.., b'\r', b'\n'] => 2,
        [.., b'\n'] => 1,
        _ => 0,
    }
}

impl Field {
    pub(crate) fn is(&self, raw: &[u8], name: &str) -> bool {
        raw.get(self.name.clone())
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// A header value as Dovecot's `nstring_nolf` shows it: CR and LF removed, everything else
/// (folding white space, trailing blanks) kept.
pub(crate) fn nolf(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// A value "for humans" (Dovecot's ENVELOPE subject): runs of white space and line breaks
/// become one space, leading and trailing ones go.
pub(crate) fn for_humans(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut pending_space = false;
    for &b in value {
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
        }
    }
    out
}

/// The MIME fields of a part (first occurrence of each wins, as in Dovecot), as value ranges.
#[derive(Debug, Clone, Default)]
pub(crate) struct MimeFields {
    pub content_type: Option<Range<usize>>,
    pub encoding: Option<Range<usize>>,
    pub id: Option<Range<usize>>,
    pub description: Option<Range<usize>>,
    pub md5: Option<Range<usize>>,
    pub disposition: Option<Range<usize>>,
    pub language: Option<Range<usize>>,
    pub location: Option<Range<usize>>,
    pub mime_version: bool,
}

impl MimeFields {
    pub(crate) fn collect(raw: &[u8], range: Range<usize>) -> Self {
        let mut m = MimeFields::default();
        for f in fields(raw, range) {
            let name = raw.get(f.name.clone()).unwrap_or_default();
            if name.eq_ignore_ascii_case(b"MIME-Version") {
                m.mime_version = true;
                continue;
            }
            let Some(suffix) = name
                .get(..8)
                .filter(|p| p.eq_ignore_ascii_case(b"Content-"))
                .and_then(|_| name.get(8..))
            else {
                continue;
            };
            let slot = match suffix.to_ascii_lowercase().as_slice() {
                b"type" => &mut m.content_type,
                b"transfer-encoding" => &mut m.encoding,
                b"id" => &mut m.id,
                b"description" => &mut m.description,
                b"md5" => &mut m.md5,
                b"disposition" => &mut m.disposition,
                b"language" => &mut m.language,
                b"location" => &mut m.location,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(f.value);
            }
        }
        m
    }

    /// A part that is not MIME (a message without MIME-Version or Content-Type) keeps only
    /// its Content-Type: Dovecot ignores the other Content-* fields there, and so do we, so
    /// BODYSTRUCTURE and BINARY agree with each other.
    pub(crate) fn only_content_type(self) -> Self {
        MimeFields {
            content_type: self.content_type,
            ..MimeFields::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &[u8]) -> Vec<(String, String)> {
        fields(raw, 0..raw.len())
            .map(|f| {
                (
                    String::from_utf8_lossy(&raw[f.name]).into_owned(),
                    String::from_utf8_lossy(&raw[f.value]).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn fields_fold_trim_and_tolerate_garbage() {
        let raw = b"Subject : a\r\n  b\r\nX:\r\n\tcont\r\nno colon here\r\nTo:x";
        assert_eq!(
            list(raw),
            vec![
                ("Subject".into(), "a\r\n  b".into()),
                ("X".into(), "\r\n\tcont".into()),
                ("".into(), "no colon here".into()),
                ("To".into(), "x".into()),
            ]
        );
        assert_eq!(nolf(b"a\r\n b  "), b"a b  ");
        assert_eq!(for_humans(b" \t=?x?= and\r\n more  "), b"=?x?= and more");
    }

    #[test]
    fn line_limit_leaves_the_rest_unparsed() {
        let mut raw = Vec::new();
        for i in 0..MAX_HEADER_LINES + 5 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        let mut it = fields(&raw, 0..raw.len());
        assert_eq!(it.by_ref().count(), MAX_HEADER_LINES);
        let rest = it.unparsed();
        assert_eq!(
            &raw[rest],
            b"X-10000: v\r\nX-10001: v\r\nX-10002: v\r\nX-10003: v\r\nX-10004: v\r\n"
        );
    }
}
