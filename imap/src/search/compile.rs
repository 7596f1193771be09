//! imap-codec's `SearchKey` tree → `Query`: flags as Maildir letters, dates as day numbers,
//! strings checked as UTF-8, with the size of the tree bounded.

use chrono::Datelike;
use imap_codec::imap_types::core::{AString, Charset};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::fetch::date::days_from_civil;

/// The most keys (every node of the tree counts) one SEARCH may hold.
pub const MAX_KEYS: usize = 1000;
/// The deepest nesting of NOT/OR/parentheses (imap-codec stops at 9 already; this keeps the
/// evaluator's recursion bounded whoever builds the keys).
pub const MAX_DEPTH: usize = 32;

/// Why a SEARCH cannot run; `text()` is the text of the tagged NO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// A CHARSET other than US-ASCII or UTF-8, or a string that is not UTF-8.
    BadCharset,
    /// Over `MAX_KEYS` keys or `MAX_DEPTH` levels.
    TooComplex,
}

impl SearchError {
    /// The tagged NO's text, response code included.
    pub fn text(&self) -> &'static str {
        match self {
            SearchError::BadCharset => "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset.",
            SearchError::TooComplex => "[LIMIT] Search too complex.",
        }
    }
}

/// One end of a sequence-set range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    N(u32),
    /// `*`: the largest sequence number or UID in the mailbox.
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateField {
    /// INTERNALDATE (BEFORE, ON, SINCE).
    Internal,
    /// The `Date:` field (SENTBEFORE, SENTON, SENTSINCE).
    Sent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Before,
    On,
    Since,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    All,
    /// A system flag by Maildir letter; `set`: the flag must be set (else clear).
    Flag {
        letter: char,
        set: bool,
    },
    Keyword {
        name: String,
        set: bool,
    },
    Recent(bool),
    /// `\Recent` and not `\Seen`.
    New,
    Seq(Vec<(Bound, Bound)>),
    Uid(Vec<(Bound, Bound)>),
    Larger(u64),
    Smaller(u64),
    Date {
        field: DateField,
        cmp: Cmp,
        day: i64,
    },
    /// HEADER, and FROM/TO/CC/BCC/SUBJECT as HEADER of that field.
    Header {
        name: String,
        needle: String,
    },
    Body(String),
    Text(String),
    /// MODSEQ: the message's MODSEQ is at least this (RFC 7162 §3.1.5; per-flag entries use
    /// the message's MODSEQ, the only one kept).
    ModSeq(u64),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

impl Key {
    /// The key reads the message (text, or the `Date:` field).
    fn costly(&self) -> bool {
        match self {
            Key::Header { .. } | Key::Body(_) | Key::Text(_) => true,
            Key::Date { field, .. } => *field == DateField::Sent,
            Key::Not(k) => k.costly(),
            Key::Or(a, b) => a.costly() || b.costly(),
            Key::And(keys) => keys.iter().any(Key::costly),
            _ => false,
        }
    }
}

/// AND's keys with those that need no message data first (a stable reorder: AND commutes),
/// so a failing flag test spares the parse.
fn cheap_first(mut keys: Vec<Key>) -> Vec<Key> {
    keys.sort_by_key(Key::costly);
    keys
}

/// A compiled SEARCH: run it with `matches`/`decide` per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub(crate) root: Key,
    needs_raw: bool,
    needs_sent_date: bool,
    uses_modseq: bool,
}

impl Query {
    /// Some key reads the message text (BODY, TEXT, HEADER, FROM, ...): pass `raw`.
    pub fn needs_raw(&self) -> bool {
        self.needs_raw
    }

    /// Some key reads the `Date:` field (SENTBEFORE, SENTON, SENTSINCE): pass the cached
    /// `blob` (or `raw`).
    pub fn needs_blob(&self) -> bool {
        self.needs_sent_date
    }

    /// A MODSEQ key was used: the response carries the highest MODSEQ found (RFC 7162 §3.1.5).
    pub fn uses_modseq(&self) -> bool {
        self.uses_modseq
    }
}

/// Compiles the criteria of a SEARCH (ANDed) with its CHARSET (none, US-ASCII and UTF-8 are
/// accepted, in any case).
pub fn compile(
    keys: &[SearchKey<'_>],
    charset: Option<&Charset<'_>>,
) -> Result<Query, SearchError> {
    if let Some(cs) = charset {
        let name: &str = cs.as_ref();
        if !name.eq_ignore_ascii_case("UTF-8") && !name.eq_ignore_ascii_case("US-ASCII") {
            return Err(SearchError::BadCharset);
        }
    }
    let mut c = Compiler::default();
    let mut all = Vec::with_capacity(keys.len());
    for k in keys {
        all.push(c.key(k, 0)?);
    }
    let root = match all.len() {
        1 => all.pop().unwrap_or(Key::All),
        _ => Key::And(cheap_first(all)),
    };
    Ok(Query {
        root,
        needs_raw: c.needs_raw,
        needs_sent_date: c.needs_sent_date,
        uses_modseq: c.uses_modseq,
    })
}

#[derive(Default)]
struct Compiler {
    count: usize,
    needs_raw: bool,
    needs_sent_date: bool,
    uses_modseq: bool,
}

impl Compiler {
    fn key(&mut self, k: &SearchKey<'_>, depth: usize) -> Result<Key, SearchError> {
        self.count += 1;
        if self.count > MAX_KEYS || depth > MAX_DEPTH {
            return Err(SearchError::TooComplex);
        }
        use SearchKey as S;
        let flag = |letter, set| Ok(Key::Flag { letter, set });
        match k {
            S::And(keys) => {
                let mut out = Vec::new();
                for k in keys.as_ref() {
                    out.push(self.key(k, depth + 1)?);
                }
                Ok(Key::And(cheap_first(out)))
            }
            S::Not(k) => Ok(Key::Not(Box::new(self.key(k, depth + 1)?))),
            S::Or(a, b) => Ok(Key::Or(
                Box::new(self.key(a, depth + 1)?),
                Box::new(self.key(b, depth + 1)?),
            )),
            S::SequenceSet(set) => Ok(Key::Seq(ranges(set))),
            S::Uid(set) => Ok(Key::Uid(ranges(set))),
            S::All => Ok(Key::All),
            S::Answered => flag('R', true),
            S::Unanswered => flag('R', false),
            S::Deleted => flag('T', true),
            S::Undeleted => flag('T', false),
            S::Draft => flag('D', true),
            S::Undraft => flag('D', false),
            S::Flagged => flag('F', true),
            S::Unflagged => flag('F', false),
            S::Seen => flag('S', true),
            S::Unseen => flag('S', false),
            S::Recent => Ok(Key::Recent(true)),
            S::Old => Ok(Key::Recent(false)),
            S::New => Ok(Key::New),
            S::Keyword(atom) => Ok(Key::Keyword {
                name: atom.as_ref().to_owned(),
                set: true,
            }),
            S::Unkeyword(atom) => Ok(Key::Keyword {
                name: atom.as_ref().to_owned(),
                set: false,
            }),
            S::Larger(n) => Ok(Key::Larger(u64::from(*n))),
            S::Smaller(n) => Ok(Key::Smaller(u64::from(*n))),
            S::Before(d) => Ok(self.date(DateField::Internal, Cmp::Before, d)),
            S::On(d) => Ok(self.date(DateField::Internal, Cmp::On, d)),
            S::Since(d) => Ok(self.date(DateField::Internal, Cmp::Since, d)),
            S::SentBefore(d) => Ok(self.date(DateField::Sent, Cmp::Before, d)),
            S::SentOn(d) => Ok(self.date(DateField::Sent, Cmp::On, d)),
            S::SentSince(d) => Ok(self.date(DateField::Sent, Cmp::Since, d)),
            S::From(s) => self.header("From", s),
            S::To(s) => self.header("To", s),
            S::Cc(s) => self.header("Cc", s),
            S::Bcc(s) => self.header("Bcc", s),
            S::Subject(s) => self.header("Subject", s),
            S::Header(name, s) => {
                let name = text(name)?;
                self.header(&name, s)
            }
            S::Body(s) => {
                self.needs_raw = true;
                Ok(Key::Body(text(s)?))
            }
            S::Text(s) => {
                self.needs_raw = true;
                Ok(Key::Text(text(s)?))
            }
            S::ModSequence { modseq, .. } => {
                self.uses_modseq = true;
                Ok(Key::ModSeq(*modseq))
            }
        }
    }

    fn date(&mut self, field: DateField, cmp: Cmp, d: &NaiveDate) -> Key {
        if field == DateField::Sent {
            self.needs_sent_date = true;
        }
        let d: &chrono::NaiveDate = d.as_ref();
        Key::Date {
            field,
            cmp,
            day: days_from_civil(i64::from(d.year()), d.month(), d.day()),
        }
    }

    fn header(&mut self, name: &str, needle: &AString<'_>) -> Result<Key, SearchError> {
        self.needs_raw = true;
        Ok(Key::Header {
            name: name.to_owned(),
            needle: text(needle)?,
        })
    }
}

/// A search string: UTF-8 (US-ASCII is a subset; 8-bit text sent without CHARSET is taken as
/// UTF-8 when it is, as clients do send it), anything else is a charset we do not know.
fn text(s: &AString<'_>) -> Result<String, SearchError> {
    String::from_utf8(s.as_ref().to_vec()).map_err(|_| SearchError::BadCharset)
}

fn bound(b: &SeqOrUid) -> Bound {
    match b {
        SeqOrUid::Value(n) => Bound::N(n.get()),
        SeqOrUid::Asterisk => Bound::Star,
    }
}

fn ranges(set: &SequenceSet) -> Vec<(Bound, Bound)> {
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(b) => (bound(b), bound(b)),
            Sequence::Range(a, b) => (bound(a), bound(b)),
        })
        .collect()
}
