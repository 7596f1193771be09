//! The per-message blob the index caches (`Index::blob(uid, &fetch::blob)`): everything FETCH
//! and SEARCH want from a message that needs a parse, computed once per message.
//!
//! Layout (integers little-endian):
//! ```text
//! "MFB1"                          magic and version
//! u32 len, ENVELOPE bytes         the ENVELOPE value as wire bytes
//! u32 len, BODY bytes             non-extensible BODYSTRUCTURE
//! u32 len, BODYSTRUCTURE bytes
//! u8 0                            no usable Date: field, or
//! u8 1, i64 days                  the Date: field's calendar date, days since 1970-01-01
//! ```
//! Nothing may follow. A blob that does not read exactly this way (another version, a cache
//! written by something else, damage the index's CRC missed) is `None`: the caller computes
//! it again from the message.

use super::date::days_from_civil;
use crate::mime;

const MAGIC: &[u8; 4] = b"MFB1";

/// The parts of a blob, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobParts<'a> {
    pub envelope: &'a [u8],
    pub body: &'a [u8],
    pub bodystructure: &'a [u8],
    /// The `Date:` field's date (days since 1970-01-01), for SENTBEFORE/SENTON/SENTSINCE;
    /// `None` when the message has no parsable one.
    pub sent_date: Option<i64>,
}

/// Computes the blob of a message (the file's bytes; bare LFs are made CRLF first, as FETCH
/// sends them).
pub fn blob(raw: &[u8]) -> Vec<u8> {
    let raw = mime::to_crlf(raw);
    let parsed = mime::Parsed::new(&raw);
    let envelope = parsed.envelope();
    let body = parsed.bodystructure(false);
    let bodystructure = parsed.bodystructure(true);
    let sent = sent_date(&parsed);
    let mut out =
        Vec::with_capacity(4 + 12 + envelope.len() + body.len() + bodystructure.len() + 9);
    out.extend_from_slice(MAGIC);
    for part in [&envelope, &body, &bodystructure] {
        // A part over 4 GiB cannot come from a message the index accepts (blobs ≤ 16 MiB);
        // writing a length that does not match makes the blob unreadable, never misread.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    match sent {
        Some(days) => {
            out.push(1);
            out.extend_from_slice(&days.to_le_bytes());
        }
        None => out.push(0),
    }
    out
}

/// Reads a blob; `None` if it is not exactly one `blob` wrote.
pub fn blob_parts(blob: &[u8]) -> Option<BlobParts<'_>> {
    let mut rest = blob.strip_prefix(MAGIC)?;
    let mut part = || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let (bytes, tail) = tail.split_at_checked(len)?;
        rest = tail;
        Some(bytes)
    };
    let envelope = part()?;
    let body = part()?;
    let bodystructure = part()?;
    let sent_date = match rest {
        [0] => None,
        [1, days @ ..] => Some(i64::from_le_bytes(days.try_into().ok()?)),
        _ => return None,
    };
    Some(BlobParts {
        envelope,
        body,
        bodystructure,
        sent_date,
    })
}

/// The calendar date written in the message's first `Date:` field, if it parses.
pub(crate) fn sent_date(parsed: &mime::Parsed<'_>) -> Option<i64> {
    let value = parsed.header_values("Date").into_iter().next()?;
    let dt = mail_parser::DateTime::parse_rfc822(&value)?;
    let (month, day) = (u32::from(dt.month), u32::from(dt.day));
    ((1..=12).contains(&month) && (1..=31).contains(&day))
        .then(|| days_from_civil(i64::from(dt.year), month, day))
}
