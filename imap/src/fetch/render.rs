//! One message's `* n FETCH (...)` line, and the flag list that STORE's answers share.

use std::borrow::Cow;
use std::cell::OnceCell;

use moat_maildir::Flags;

use super::blob::{BlobParts, blob_parts};
use super::date;
use super::plan::{Item, Plan};
use crate::index::{Keywords, Message};
use crate::mime::{self, BinaryError};

/// What `render` knows about one message.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The message's sequence number in the session's view.
    pub seq: u32,
    /// The message as it is after any `\Seen` this FETCH stored (flags and MODSEQ).
    pub msg: &'a Message,
    /// The folder's keyword names, for the keyword letters in `msg.flags`.
    pub keywords: &'a Keywords,
    /// The session reports this message as `\Recent`.
    pub recent: bool,
    /// The cached blob (`Index::blob(uid, &fetch::blob)`); wanted when `plan.needs_blob()`.
    /// Missing or malformed, ENVELOPE/BODY/BODYSTRUCTURE are computed from `raw` if given.
    pub blob: Option<&'a [u8]>,
    /// The message file's bytes; wanted when `plan.needs_raw()`. Bare LFs are made CRLF here.
    pub raw: Option<&'a [u8]>,
}

/// Why a message's FETCH line cannot be written. Nothing was written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderError {
    /// BINARY of a part whose Content-Transfer-Encoding we cannot decode: the command's
    /// answer is `NO [UNKNOWN-CTE]` (RFC 3516 §4.3).
    UnknownCte,
    /// The plan needed the blob or the message bytes and `Input` had neither (the session's
    /// bug, or the file vanished).
    Missing,
    /// The line would pass `MAX_LINE_EXTRA` + the message's size: the command's answer is
    /// `NO [LIMIT]`. Distinct partials of one section (`BODY.PEEK[]<0.n> BODY.PEEK[]<1.n>
    /// ...`) would otherwise copy the message thousands of times into one line in memory.
    TooLarge,
}

/// What one message's FETCH line may hold beyond the message's own size: the whole message
/// once plus 32 MiB of other items (every section again, several times, for normal mail).
pub const MAX_LINE_EXTRA: usize = 32 << 20;

/// Writes `* <seq> FETCH (<items in plan order>)\r\n`. On error `out` is left as it was.
pub fn render(plan: &Plan, m: &Input<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let start = out.len();
    let result = write_line(plan, m, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The message bytes (CRLF) and their MIME parse, made on first use: a FETCH of FLAGS only
/// never parses, one of several sections parses once.
struct Source<'a> {
    crlf: Option<&'a [u8]>,
    parsed: OnceCell<mime::Parsed<'a>>,
}

impl<'a> Source<'a> {
    fn parsed(&self) -> Result<&mime::Parsed<'a>, RenderError> {
        let bytes = self.crlf.ok_or(RenderError::Missing)?;
        Ok(self.parsed.get_or_init(|| mime::Parsed::new(bytes)))
    }
}

fn write_line(plan: &Plan, m: &Input<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let raw: Option<Cow<'_, [u8]>> = m.raw.map(mime::to_crlf);
    let limit = out.len() + MAX_LINE_EXTRA + raw.as_deref().map_or(0, <[u8]>::len);
    // Checked before each body item is copied in, so the line never grows past `limit` plus
    // one item.
    let room = |out: &Vec<u8>, more: usize| {
        if out.len().saturating_add(more) > limit {
            Err(RenderError::TooLarge)
        } else {
            Ok(())
        }
    };
    let src = Source {
        crlf: raw.as_deref(),
        parsed: OnceCell::new(),
    };
    let parse = || src.parsed();
    let cached: Option<BlobParts<'_>> = m.blob.and_then(blob_parts);
    out.extend_from_slice(b"* ");
    push_number(out, u64::from(m.seq));
    out.extend_from_slice(b" FETCH (");
    for (i, item) in plan.items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match item {
            Item::Flags => {
                out.extend_from_slice(b"FLAGS ");
                render_flags(out, m.msg.flags, m.keywords, m.recent);
            }
            Item::Uid => {
                out.extend_from_slice(b"UID ");
                push_number(out, u64::from(m.msg.uid));
            }
            Item::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE ");
                date::internal_date(out, m.msg.internal_date);
            }
            Item::Size => {
                out.extend_from_slice(b"RFC822.SIZE ");
                push_number(out, m.msg.size);
            }
            Item::ModSeq => {
                out.extend_from_slice(b"MODSEQ (");
                push_number(out, m.msg.modseq);
                out.push(b')');
            }
            Item::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                match cached {
                    Some(c) => out.extend_from_slice(c.envelope),
                    None => out.extend_from_slice(&parse()?.envelope()),
                }
            }
            Item::Body => {
                out.extend_from_slice(b"BODY ");
                match cached {
                    Some(c) => out.extend_from_slice(c.body),
                    None => out.extend_from_slice(&parse()?.bodystructure(false)),
                }
            }
            Item::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                match cached {
                    Some(c) => out.extend_from_slice(c.bodystructure),
                    None => out.extend_from_slice(&parse()?.bodystructure(true)),
                }
            }
            Item::Section {
                label,
                spec,
                partial,
            } => {
                out.extend_from_slice(label);
                origin(out, *partial);
                out.push(b' ');
                // A section the message does not have is an empty string, as Dovecot sends.
                let data = parse()?.section(spec).unwrap_or_default();
                let data = cut(&data, *partial);
                room(out, data.len())?;
                body(out, data, false);
            }
            Item::Binary { part, partial } => {
                out.extend_from_slice(b"BINARY[");
                dotted(out, part);
                out.push(b']');
                origin(out, *partial);
                out.push(b' ');
                let data = match parse()?.binary(part) {
                    Ok(d) => d,
                    Err(BinaryError::NoSuchPart) => Vec::new(),
                    Err(BinaryError::UnknownCte) => return Err(RenderError::UnknownCte),
                };
                let data = cut(&data, *partial);
                room(out, data.len())?;
                body(out, data, true);
            }
            Item::BinarySize { part } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                dotted(out, part);
                out.extend_from_slice(b"] ");
                let size = match parse()?.binary_size(part) {
                    Ok(n) => n,
                    Err(BinaryError::NoSuchPart) => 0,
                    Err(BinaryError::UnknownCte) => return Err(RenderError::UnknownCte),
                };
                out.extend_from_slice(size.to_string().as_bytes());
            }
        }
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

/// `<origin>` after a partial section's label (RFC 3501: the response names the origin only).
fn origin(out: &mut Vec<u8>, partial: Option<(u32, u32)>) {
    if let Some((o, _)) = partial {
        out.extend_from_slice(format!("<{o}>").as_bytes());
    }
}

fn cut(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        Some((o, c)) => mime::partial(data, o, c),
        None => data,
    }
}

fn dotted(out: &mut Vec<u8>, part: &[u32]) {
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// Body data: `""` when empty, else a literal; BINARY data holding NUL is a `~{n}` literal8
/// (RFC 3516 §4.2), the only form that may carry it.
fn body(out: &mut Vec<u8>, data: &[u8], binary: bool) {
    if data.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    if binary && memchr::memchr(0, data).is_some() {
        out.push(b'~');
    }
    crate::wire::literal(out, data);
}

/// Writes `n` in decimal. FETCH writes several numbers per message, tens of thousands of
/// messages per command: `format!` would allocate a string for each.
fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // n % 10 < 10: the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// A message's flag list: `(\Answered \Flagged \Deleted \Seen \Draft keyword... \Recent)`,
/// system flags in that order, then keywords in letter order; letters without an IMAP name are
/// left out (`Keywords::imap_flags`).
pub fn render_flags(out: &mut Vec<u8>, flags: Flags, keywords: &Keywords, recent: bool) {
    out.push(b'(');
    let mut first = true;
    for name in keywords
        .imap_flags_iter(flags)
        .chain(recent.then_some("\\Recent"))
    {
        if !first {
            out.push(b' ');
        }
        first = false;
        // Keyword names are atoms (`valid_keyword`), system names fixed: written as they are.
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b')');
}

/// The untagged FETCH of a flag change (STORE without .SILENT, changes by others):
/// `* <seq> FETCH (UID <uid> FLAGS (...) MODSEQ (<modseq>))\r\n`; `uid` for UID STORE and
/// unsolicited changes, `modseq` once CONDSTORE is on (RFC 7162 §3.1.3).
pub fn flags_response(
    out: &mut Vec<u8>,
    seq: u32,
    uid: Option<u32>,
    flags: Flags,
    keywords: &Keywords,
    recent: bool,
    modseq: Option<u64>,
) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    if let Some(uid) = uid {
        out.extend_from_slice(format!("UID {uid} ").as_bytes());
    }
    out.extend_from_slice(b"FLAGS ");
    render_flags(out, flags, keywords, recent);
    if let Some(modseq) = modseq {
        out.extend_from_slice(format!(" MODSEQ ({modseq})").as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}
