//! SEARCH and UID SEARCH (RFC 3501 §6.4.4, §7.2.5), ESEARCH (RFC 4731), the MODSEQ key and
//! response (RFC 7162 §3.1.5). Pure: the selected state walks its view and calls these.
//!
//! # API
//!
//! ```text
//! pub fn compile(keys: &[SearchKey<'_>], charset: Option<&Charset<'_>>) -> Result<Query, SearchError>
//! pub enum SearchError { BadCharset, TooComplex }    .text(): the NO's text ([BADCHARSET (US-ASCII UTF-8)], [LIMIT])
//! Query::needs_raw / needs_blob / uses_modseq -> bool
//! pub struct MessageFacts<'a> { seq, msg: &Message, recent, keywords: &Keywords, max_seq, max_uid,
//!                               blob: Option<&[u8]>, raw: Option<&[u8]> }
//! pub fn matches(q: &Query, m: &MessageFacts<'_>) -> bool
//! pub fn decide(q: &Query, m: &MessageFacts<'_>) -> Option<bool>   None: needs the data not given
//!
//! pub fn parse_return_options(message: &[u8]) -> Result<Option<(ReturnOptions, Vec<u8>)>, String>
//! pub struct ReturnOptions { min, max, all, count: bool }
//! pub struct Hit { id: u32, modseq: u64 }
//! pub fn render_search(out, hits: &[Hit], modseq: bool)
//! pub fn render_esearch(out, tag: &str, uid: bool, hits: &[Hit], opts: &ReturnOptions, modseq: bool)
//! pub fn compact_set(out, ids: &[u32])                            `2:4,7,9`
//! pub const MAX_KEYS: usize = 1000, MAX_DEPTH: usize = 32
//! ```
//!
//! # How the session uses it
//!
//! 1. A message imap-codec refuses goes through `parse_return_options`; `Some` gives the
//!    ESEARCH options and the message to decode again without the clause.
//! 2. `compile(&criteria, charset.as_ref())`; an error is a tagged NO with `text()`.
//! 3. Per message of the view (no EXPUNGE may be sent meanwhile): `decide` with what the index
//!    holds (`blob` too if `needs_blob()` and cached); if `None`, read the file and `matches`
//!    with `raw`. Collect `Hit { id: seq or uid, modseq }`.
//! 4. `render_esearch` (RETURN given) or `render_search`, `modseq = q.uses_modseq()`.
//!
//! Matching: flags and keywords from `msg.flags` (a keyword the folder does not know is set on
//! no message); `*` is `max_seq`/`max_uid`; BEFORE/ON/SINCE compare INTERNALDATE's UTC day
//! (what FETCH shows), SENT* the date written in `Date:` (none: no match); LARGER/SMALLER
//! RFC822.SIZE; FROM/TO/CC/BCC/SUBJECT/HEADER/BODY/TEXT are `mime`'s decoded, case-folded
//! substring tests (encoded words and charsets decoded; an empty string matches). Search
//! strings must be UTF-8 (US-ASCII included; 8-bit UTF-8 without CHARSET is accepted).

mod compile;
mod esearch;
mod eval;
#[cfg(test)]
mod tests;

pub use compile::{MAX_DEPTH, MAX_KEYS, Query, SearchError, compile};
pub use esearch::{
    Hit, ReturnOptions, compact_set, parse_return_options, render_esearch, render_search,
};
pub use eval::{MessageFacts, decide, matches};
