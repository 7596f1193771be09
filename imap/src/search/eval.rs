//! Running a `Query` on one message.
//!
//! Evaluation is three-valued so that a session can first decide what the index alone
//! decides (flags, sets, sizes, dates, MODSEQ) and read message files only for the messages
//! whose answer still depends on their text: `decide` is `None` exactly then.

use std::borrow::Cow;
use std::cell::OnceCell;

use super::compile::{Bound, Cmp, DateField, Key, Query};
use crate::fetch::{self, date};
use crate::index::{Keywords, Message};
use crate::mime;

/// What a SEARCH may look at for one message.
#[derive(Debug, Clone, Copy)]
pub struct MessageFacts<'a> {
    /// The sequence number in the session's view (the UID is `msg.uid`).
    pub seq: u32,
    pub msg: &'a Message,
    /// The session reports the message as `\Recent`.
    pub recent: bool,
    pub keywords: &'a Keywords,
    /// `*` in a sequence set: the number of messages.
    pub max_seq: u32,
    /// `*` in a UID set: the largest UID in the mailbox.
    pub max_uid: u32,
    /// The cached blob, for `needs_blob()` (the `Date:` field); `raw` serves too.
    pub blob: Option<&'a [u8]>,
    /// The message bytes, for `needs_raw()`.
    pub raw: Option<&'a [u8]>,
}

/// True if the message matches; a key whose data was not given does not match.
pub fn matches(q: &Query, m: &MessageFacts<'_>) -> bool {
    decide(q, m).unwrap_or(false)
}

/// `Some(answer)`, or `None` when the answer depends on data not given (`raw`, or the blob
/// for the sent-date keys): call again with it.
pub fn decide(q: &Query, m: &MessageFacts<'_>) -> Option<bool> {
    let raw: Option<Cow<'_, [u8]>> = m.raw.map(mime::to_crlf);
    let ctx = Ctx {
        m,
        crlf: raw.as_deref(),
        parsed: OnceCell::new(),
        sent: OnceCell::new(),
    };
    ctx.eval(&q.root)
}

struct Ctx<'a, 'm> {
    m: &'m MessageFacts<'a>,
    crlf: Option<&'m [u8]>,
    /// Parsed on first use: one parse per message whatever the number of text keys.
    parsed: OnceCell<Option<mime::Parsed<'m>>>,
    /// The `Date:` field's day: outer None = unknown (no data), inner None = none.
    sent: OnceCell<Option<Option<i64>>>,
}

impl<'a, 'm> Ctx<'a, 'm> {
    fn parsed(&self) -> Option<&mime::Parsed<'m>> {
        self.parsed
            .get_or_init(|| self.crlf.map(mime::Parsed::new))
            .as_ref()
    }

    fn sent_date(&self) -> Option<Option<i64>> {
        *self.sent.get_or_init(|| {
            if let Some(parts) = self.m.blob.and_then(fetch::blob_parts) {
                return Some(parts.sent_date);
            }
            self.parsed().map(fetch::sent_date)
        })
    }

    fn eval(&self, key: &Key) -> Option<bool> {
        let m = self.m;
        let msg = m.msg;
        Some(match key {
            Key::All => true,
            Key::Flag { letter, set } => msg.flags.has(*letter) == *set,
            Key::Keyword { name, set } => {
                let has = m.keywords.letter(name).is_some_and(|c| msg.flags.has(c));
                has == *set
            }
            Key::Recent(want) => m.recent == *want,
            Key::New => m.recent && !msg.flags.has('S'),
            Key::Seq(ranges) => in_set(ranges, m.seq, m.max_seq),
            Key::Uid(ranges) => in_set(ranges, msg.uid, m.max_uid),
            Key::Larger(n) => msg.size > *n,
            Key::Smaller(n) => msg.size < *n,
            Key::ModSeq(n) => msg.modseq >= *n,
            Key::Date { field, cmp, day } => {
                let have = match field {
                    DateField::Internal => Some(date::day_of(msg.internal_date)),
                    DateField::Sent => self.sent_date()?,
                };
                // A message without a Date: field has no sent date: no SENT* key matches it.
                have.is_some_and(|have| match cmp {
                    Cmp::Before => have < *day,
                    Cmp::On => have == *day,
                    Cmp::Since => have >= *day,
                })
            }
            Key::Header { name, needle } => self.parsed()?.header_contains(name, needle),
            Key::Body(needle) => self.parsed()?.body_contains(needle),
            Key::Text(needle) => self.parsed()?.text_contains(needle),
            Key::Not(k) => !self.eval(k)?,
            Key::Or(a, b) => match self.eval(a) {
                Some(true) => true,
                first => match (first, self.eval(b)) {
                    (_, Some(true)) => true,
                    (Some(false), Some(false)) => false,
                    _ => return None,
                },
            },
            Key::And(keys) => {
                let mut unknown = false;
                for k in keys {
                    match self.eval(k) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    return None;
                }
                true
            }
        })
    }
}

/// `n` is in the set; `*` is `max`, and a range is taken with its ends in either order
/// (RFC 3501 §9: `4:2` is `2:4`; `7:*` with 5 messages includes 5).
fn in_set(ranges: &[(Bound, Bound)], n: u32, max: u32) -> bool {
    let value = |b: &Bound| match b {
        Bound::N(v) => *v,
        Bound::Star => max,
    };
    ranges.iter().any(|(a, b)| {
        let (a, b) = (value(a), value(b));
        a.min(b) <= n && n <= a.max(b)
    })
}
