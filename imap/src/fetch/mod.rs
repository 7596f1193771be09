//! FETCH (RFC 3501 §6.4.5, §7.4.2; BINARY RFC 3516; MODSEQ and CHANGEDSINCE RFC 7162): the
//! request's items → a `Plan`, then one `* n FETCH (...)` line per message, from the index's
//! `Message`, the cached blob and, when needed, the message bytes. Pure: no I/O, no session
//! state; the selected state reads files, stores `\Seen` and calls these.
//!
//! # API
//!
//! ```text
//! pub fn blob(raw: &[u8]) -> Vec<u8>            the index's per-message cache value: ENVELOPE,
//!                                               BODY, BODYSTRUCTURE, Date: (`Index::blob(uid, &fetch::blob)`)
//! pub fn blob_parts(blob: &[u8]) -> Option<BlobParts<'_>>   None: malformed, compute it again
//! pub struct BlobParts<'a> { envelope, body, bodystructure: &'a [u8], sent_date: Option<i64> }
//!
//! pub fn plan(items: &MacroOrMessageDataItemNames<'_>, uid_command: bool, condstore: bool)
//!     -> Result<Plan, String>                   Err: text of a BAD
//! Plan::with_modifiers(self, &[FetchModifier]) -> Result<Plan, String>   CHANGEDSINCE; VANISHED is BAD
//! Plan::with_flags_added(&self) -> Plan         for messages this FETCH gave \Seen
//! Plan::needs_raw / needs_blob / sets_seen / includes_modseq / enables_condstore -> bool
//! Plan::changed_since(&self) -> Option<u64>;  Plan::wants(&self, modseq: u64) -> bool
//!
//! pub struct Input<'a> { seq, msg: &Message, keywords: &Keywords, recent: bool,
//!                        blob: Option<&[u8]>, raw: Option<&[u8]> }
//! pub fn render(plan: &Plan, m: &Input<'_>, out: &mut Vec<u8>) -> Result<(), RenderError>
//! pub enum RenderError { UnknownCte, Missing, TooLarge }   UnknownCte → NO [UNKNOWN-CTE],
//!                                               TooLarge → NO [LIMIT]; out untouched
//! pub const MAX_LINE_EXTRA: usize              a line's size beyond the message's (TooLarge)
//! pub fn render_flags(out, flags: Flags, keywords: &Keywords, recent: bool)   "(\Seen kw \Recent)"
//! pub fn flags_response(out, seq, uid: Option<u32>, flags, keywords, recent, modseq: Option<u64>)
//!                                               STORE's and unsolicited `* n FETCH (FLAGS ...)`
//! pub mod date                                  INTERNALDATE and day arithmetic (SEARCH uses it)
//! ```
//!
//! # How the session uses it
//!
//! 1. `plan(...)?.with_modifiers(&modifiers)?` once per command; `enables_condstore()` turns
//!    CONDSTORE on.
//! 2. If `sets_seen()` and the mailbox is read-write: store `\Seen` on the messages that lack
//!    it first, and render those with `with_flags_added()` and their new flags and MODSEQ.
//! 3. Per message (skipping those `wants(msg.modseq)` refuses): the blob if `needs_blob()`,
//!    the file if `needs_raw()`, then `render`. The flags are rendered here from `msg.flags`
//!    and the folder's `Keywords` (the caller passes `recent`), so FETCH and STORE answers
//!    (`flags_response`) share one spelling.
//!
//! Items come out in the order asked (duplicates once), UID first for UID FETCH when not asked,
//! MODSEQ last when due but not asked. RFC822.SIZE is `msg.size` (the CRLF size); the bodies
//! sent are the file with bare LFs made CRLF, so the two agree. BODY sections hold NUL as 0x80
//! (`mime::section`); BINARY keeps NUL and then uses a `~{n}` literal8. A section or BINARY
//! part the message does not have is `""` (Dovecot's answer); a partial beyond the end is
//! `""`; the label of a partial names its origin only (`BODY[]<0>`). INTERNALDATE is shown
//! in UTC.

mod blob;
pub mod date;
mod plan;
mod render;
#[cfg(test)]
mod tests;

pub use blob::{BlobParts, blob, blob_parts};
pub use plan::{Plan, plan};
pub use render::{Input, MAX_LINE_EXTRA, RenderError, flags_response, render, render_flags};

pub(crate) use blob::sent_date;
