//! FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; CHANGEDSINCE, RFC 7162 §3.1.4), rendered by
//! `crate::fetch`. Output is bounded: messages are rendered in batches of at most `BATCH_BYTES`
//! (or one message, however large) on the blocking pool, and between batches the session
//! returns `Flow::More` so the driver writes them out before the next batch is made. A
//! 2 GB answer therefore never sits in memory; one message's literal does.
//!
//! Non-PEEK body items store `\Seen` first (not in a read-only mailbox), and those messages'
//! lines carry FLAGS (RFC 3501 §6.4.5).

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::sequence::SequenceSet;
use moat_maildir::Flags;

use super::with_index;
use crate::fetch::{self, Plan, RenderError};
use crate::index::{Index, StoreOp};
use crate::mailbox::store::StoreError;
use crate::session::{Flow, Session, response};

/// A batch of FETCH output stops growing at this size (past it after one message).
const BATCH_BYTES: usize = 256 * 1024;
/// At most this many messages per batch when each needs its blob or file read (a batch of
/// flags and UIDs only is bounded by its bytes alone).
const BATCH_MESSAGES: usize = 1000;
/// Blobs fetched (and, the first time, computed) per call to the index: one lock for the lot.
const BLOB_CHUNK: usize = 64;
/// Files larger than this are not read for FETCH (above any APPENDLIMIT we advertise).
const MAX_RAW: u64 = 1 << 30;

/// The blob the index caches for a message (`Index::blob(uid, &blob_of)`).
pub fn blob_of(raw: &[u8]) -> Vec<u8> {
    fetch::blob(raw)
}

/// A FETCH in progress across `Flow::More`.
pub struct FetchJob {
    tag: String,
    plan: Arc<Plan>,
    /// (sequence number, UID) still to send. Shared with each batch's blocking task, not
    /// copied: a FETCH of 50,000 messages runs many batches.
    todo: Arc<Vec<(u32, u32)>>,
    next: usize,
    /// Messages this FETCH gave \Seen.
    seen_now: Arc<BTreeSet<u32>>,
    /// The session's \Recent set when the FETCH began (it changes only when changes are
    /// reported, after the last batch).
    recent: Arc<BTreeSet<u32>>,
}

/// What one batch produced.
struct Batch {
    bytes: Vec<u8>,
    next: usize,
    /// The command ends with this NO (a message that cannot be rendered).
    refused: Option<&'static str>,
}

impl Session {
    pub(in crate::session) async fn fetch(
        &mut self,
        tag: &str,
        set: SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let plan = match fetch::plan(&items, uid, self.condstore)
            .and_then(|p| p.with_modifiers(&modifiers))
        {
            Ok(p) => p,
            Err(text) => return self.bad(out, tag, &text),
        };
        if plan.enables_condstore() {
            self.condstore = true;
        }
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        if !uid && sel.out_of_range(&set) {
            return self.bad(out, tag, "Invalid message sequence number.");
        }
        let todo: Vec<(u32, u32)> = sel
            .resolve(&set, uid)
            .into_iter()
            .filter_map(|i| Some((u32::try_from(i + 1).ok()?, *sel.uids.get(i)?)))
            .collect();
        let mut seen_now = BTreeSet::new();
        if plan.sets_seen() && !sel.read_only {
            let uids: Vec<u32> = todo.iter().map(|t| t.1).collect();
            let stored = with_index(&sel.index, move |ix| {
                let unseen: Vec<u32> = uids
                    .into_iter()
                    .filter(|u| {
                        ix.message(*u)
                            .is_some_and(|m| !m.flags.contains(Flags::SEEN))
                    })
                    .collect();
                Ok(ix.store_flags(&unseen, StoreOp::Add, Flags::SEEN, None)?)
            })
            .await;
            match stored {
                Ok(o) => seen_now.extend(o.changed.iter().map(|c| c.uid)),
                Err(e) => return self.index_error(out, tag, e),
            }
        }
        let recent = self
            .selected
            .as_ref()
            .map(|sel| sel.recent.clone())
            .unwrap_or_default();
        self.fetching = Some(FetchJob {
            tag: tag.to_string(),
            plan: Arc::new(plan),
            todo: Arc::new(todo),
            next: 0,
            seen_now: Arc::new(seen_now),
            recent: Arc::new(recent),
        });
        self.resume(out).await
    }

    /// Sends the next batch of a FETCH; `Flow::More` until the last one.
    pub async fn resume(&mut self, out: &mut Vec<u8>) -> Flow {
        let (Some(job), Some(sel)) = (self.fetching.take(), &self.selected) else {
            self.fetching = None;
            return Flow::Continue;
        };
        let recent = Arc::clone(&job.recent);
        let plan = Arc::clone(&job.plan);
        let seen_now = Arc::clone(&job.seen_now);
        let todo = Arc::clone(&job.todo);
        let from = job.next;
        let batch = with_index(&sel.index, move |ix| {
            Ok(render_batch(ix, &plan, &todo, from, &recent, &seen_now))
        })
        .await;
        let batch = match batch {
            Ok(Ok(b)) => b,
            Ok(Err(e)) | Err(e) => return self.index_error(out, &job.tag, e),
        };
        out.extend_from_slice(&batch.bytes);
        if let Some(text) = batch.refused {
            response::no(out, &job.tag, text);
            return Flow::Continue;
        }
        if batch.next < job.todo.len() {
            self.fetching = Some(FetchJob {
                next: batch.next,
                ..job
            });
            return Flow::More;
        }
        match self.report_changes(false, out).await {
            Flow::Continue => {}
            other => return other,
        }
        response::ok(out, &job.tag, "FETCH completed.");
        Flow::Continue
    }
}

/// Renders messages from `todo[from..]` until the batch is full.
fn render_batch(
    ix: &mut Index,
    plan: &Plan,
    todo: &[(u32, u32)],
    from: usize,
    recent: &BTreeSet<u32>,
    seen_now: &BTreeSet<u32>,
) -> Result<Batch, StoreError> {
    let with_flags = plan.with_flags_added();
    let per_message = plan.needs_blob() || plan.needs_raw();
    let mut bytes = Vec::new();
    let mut next = from;
    // Blobs of todo[next..blobs_to], fetched a chunk at a time.
    let mut blobs = HashMap::new();
    let mut blobs_to = from;
    for (i, &(seq, uid)) in todo.iter().enumerate().skip(from) {
        if bytes.len() >= BATCH_BYTES || (per_message && next - from >= BATCH_MESSAGES) {
            break;
        }
        next += 1;
        // Gone from the index but not yet reported expunged: nothing to send (RFC 3501 §7.4.1
        // forbids the EXPUNGE here; Dovecot skips such messages too).
        let Some(modseq) = ix.message(uid).map(|m| m.modseq) else {
            continue;
        };
        if !plan.wants(modseq) {
            continue;
        }
        let blob = if plan.needs_blob() {
            if i >= blobs_to {
                let end = todo.len().min(i + BLOB_CHUNK);
                let uids: Vec<u32> = todo
                    .get(i..end)
                    .unwrap_or_default()
                    .iter()
                    .filter(|t| ix.message(t.1).is_some_and(|m| plan.wants(m.modseq)))
                    .map(|t| t.1)
                    .collect();
                blobs = ix.blobs(&uids, &blob_of)?;
                blobs_to = end;
            }
            blobs.remove(&uid)
        } else {
            None
        };
        let raw = if plan.needs_raw() {
            match ix.open_message(uid)? {
                Some((file, _)) => {
                    let mut data = Vec::new();
                    file.take(MAX_RAW).read_to_end(&mut data)?;
                    Some(data)
                }
                None => continue,
            }
        } else {
            None
        };
        let Some(msg) = ix.message(uid) else {
            continue;
        };
        let p = if seen_now.contains(&uid) {
            &with_flags
        } else {
            plan
        };
        let input = fetch::Input {
            seq,
            msg,
            keywords: ix.keywords(),
            recent: recent.contains(&uid),
            blob: blob.as_deref(),
            raw: raw.as_deref(),
        };
        match fetch::render(p, &input, &mut bytes) {
            Ok(()) | Err(RenderError::Missing) => {}
            Err(RenderError::UnknownCte) => {
                return Ok(Batch {
                    bytes,
                    next,
                    refused: Some(
                        "[UNKNOWN-CTE] Cannot decode a part's Content-Transfer-Encoding.",
                    ),
                });
            }
            Err(RenderError::TooLarge) => {
                return Ok(Batch {
                    bytes,
                    next,
                    refused: Some("[LIMIT] FETCH response too large; ask for fewer items."),
                });
            }
        }
    }
    Ok(Batch {
        bytes,
        next,
        refused: None,
    })
}
