//! STORE and UID STORE (RFC 3501 §6.4.6; CONDSTORE's UNCHANGEDSINCE and `[MODIFIED]`, RFC
//! 7162 §3.1.3). Keywords get their letters from `dovecot-keywords` through the index.

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::flag::{Flag, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;

use super::with_index;
use crate::index::StoreOp;
use crate::session::{Flow, Session, response};

pub struct StoreArgs {
    pub set: SequenceSet,
    pub kind: StoreType,
    pub silent: bool,
    pub flags: Vec<Flag<'static>>,
    pub uid: bool,
    pub modifiers: Vec<StoreModifier>,
}

/// An IMAP flag's name as the index takes it (`\\Seen`, `$Junk`).
pub fn flag_name(f: &Flag<'_>) -> String {
    f.to_string()
}

/// Sequence numbers or UIDs as a compact set (`1:3,7`), for `[MODIFIED]` and COPYUID.
pub fn compact(mut values: Vec<u32>) -> String {
    values.sort_unstable();
    values.dedup();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&start) = values.get(i) {
        let mut end = start;
        while values.get(i + 1) == Some(&(end.wrapping_add(1))) {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Session {
    pub(in crate::session) async fn store(
        &mut self,
        tag: &str,
        args: StoreArgs,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        if sel.read_only {
            return self.read_only(out, tag);
        }
        if !args.uid && sel.out_of_range(&args.set) {
            return self.bad(out, tag, "Invalid message sequence number.");
        }
        let unchanged_since = args
            .modifiers
            .iter()
            .map(|m| match m {
                StoreModifier::UnchangedSince(v) => *v,
            })
            .next();
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        let uids: Vec<u32> = sel
            .resolve(&args.set, args.uid)
            .into_iter()
            .filter_map(|i| sel.uids.get(i).copied())
            .collect();
        // \Recent cannot be stored (RFC 3501 §2.3.2); clients that send it mean no harm.
        let names: Vec<String> = args
            .flags
            .iter()
            .map(flag_name)
            .filter(|n| !n.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let op = match args.kind {
            StoreType::Add => StoreOp::Add,
            StoreType::Remove => StoreOp::Remove,
            StoreType::Replace => StoreOp::Replace,
        };
        let result = with_index(&sel.index, move |ix| {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            // Removing a keyword the folder does not know is a no-op: it must not be given
            // one of the 26 letters (a client could use them all up with -FLAGS alone).
            let imap = if op == StoreOp::Remove {
                ix.known_flags_from_imap(&refs)?
            } else {
                ix.flags_from_imap(&refs)?
            };
            if !imap.refused.is_empty() && op != StoreOp::Remove {
                return Ok(Err(imap.refused));
            }
            let outcome = ix.store_flags(&uids, op, imap.flags, unchanged_since)?;
            Ok(Ok((outcome, ix.keywords().clone())))
        })
        .await;
        let (outcome, keywords) = match result {
            Ok(Ok(x)) => x,
            Ok(Err(refused)) => {
                response::no(
                    out,
                    tag,
                    &format!(
                        "[CANNOT] These flags cannot be stored here: {}.",
                        refused.join(" ")
                    ),
                );
                return Flow::Continue;
            }
            Err(e) => return self.index_error(out, tag, e),
        };
        let condstore = self.condstore;
        let Some(sel) = &mut self.selected else {
            return Flow::Continue;
        };
        if keywords != sel.keywords {
            sel.keywords = keywords;
            sel.write_flags(out);
        }
        let mut answers: Vec<_> = outcome.changed.iter().map(|c| (c, true)).collect();
        if !args.silent {
            answers.extend(outcome.unchanged.iter().map(|c| (c, false)));
        }
        answers.sort_by_key(|(c, _)| c.uid);
        for (c, changed) in answers {
            let Some(seq) = sel.seq_of(c.uid) else {
                continue;
            };
            if args.silent {
                // .SILENT still owes a CONDSTORE client the new MODSEQ (RFC 7162 §3.1.3).
                if condstore && changed {
                    let line = format!("{seq} FETCH (UID {} MODSEQ ({}))", c.uid, c.modseq);
                    response::untagged(out, line.as_bytes());
                }
                continue;
            }
            sel.write_flags_fetch(out, seq, c.uid, c.flags, condstore.then_some(c.modseq));
        }
        let modified: Vec<u32> = if args.uid {
            outcome.failed.clone()
        } else {
            outcome
                .failed
                .iter()
                .filter_map(|&u| sel.seq_of(u))
                .collect()
        };
        match self.report_changes(false, out).await {
            Flow::Continue => {}
            other => return other,
        }
        if modified.is_empty() {
            response::ok(out, tag, "STORE completed.");
        } else {
            let text = format!("[MODIFIED {}] Conditional STORE failed.", compact(modified));
            response::ok(out, tag, &text);
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sets() {
        assert_eq!(compact(vec![5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(compact(vec![]), "");
        assert_eq!(compact(vec![u32::MAX]), "4294967295");
    }
}
