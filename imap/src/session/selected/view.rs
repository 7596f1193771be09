//! This session's view of the selected mailbox: sequence number n is `uids[n - 1]`. The view
//! changes only here, when the index's changes are reported: EXISTS for new messages at the end
//! of any command, FETCH FLAGS for others' flag changes, and EXPUNGE only where RFC 3501 §7.4.1
//! allows it (not during FETCH, STORE, SEARCH, nor their UID forms: there the expunged UIDs
//! wait in `pending_expunge`, still numbered, until a command that may renumber).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use moat_maildir::{Flags, Maildir};

use super::with_index;
use crate::fetch;
use crate::index::{Changes, Index, Keywords};
use crate::session::{Flow, Session, response};

/// The selected mailbox.
pub struct Selected {
    pub maildir: Maildir,
    pub index: Arc<Mutex<Index>>,
    /// EXAMINE, or SELECT of a mailbox we may not change.
    pub read_only: bool,
    /// Sequence number − 1 → UID, ascending.
    pub uids: Vec<u32>,
    /// The messages this session moved from new/ to cur/ (\Recent).
    pub recent: BTreeSet<u32>,
    /// Expunged in the index, not yet reported (still in `uids`).
    pub pending_expunge: BTreeSet<u32>,
    pub keywords: Keywords,
    /// inotify on new/ and cur/, made at the first IDLE.
    pub watcher: Option<super::idle::Watcher>,
}

impl Selected {
    /// The sequence number of a UID in the view.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.uids
            .binary_search(&uid)
            .ok()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    pub fn exists(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// The positions (sequence number − 1) a sequence set names, ascending, without duplicates.
    /// `*` is the last message (its UID for `uid`); numbers beyond the view name nothing, as
    /// RFC 3501 §6.4.8 asks for UIDs (a sequence number beyond is the caller's BAD).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let n = self.uids.len();
        let Some(&last_uid) = self.uids.last() else {
            return Vec::new();
        };
        let star = if uid { last_uid } else { self.exists() };
        let value = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => star,
        };
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(s) => (value(s), value(s)),
                Sequence::Range(x, y) => {
                    let (x, y) = (value(x), value(y));
                    (x.min(y), x.max(y))
                }
            };
            if uid {
                let from = self.uids.partition_point(|&u| u < a);
                let to = self.uids.partition_point(|&u| u <= b);
                if from < to {
                    ranges.push((from, to));
                }
            } else {
                let from = (a as usize).saturating_sub(1);
                let to = (b as usize).min(n);
                if from < to {
                    ranges.push((from, to));
                }
            }
        }
        ranges.sort_unstable();
        let mut out = Vec::new();
        let mut next = 0;
        for (from, to) in ranges {
            for i in from.max(next)..to {
                out.push(i);
            }
            next = next.max(to);
        }
        out
    }

    /// True if a sequence set names a number beyond the view (a BAD for sequence numbers).
    pub fn out_of_range(&self, set: &SequenceSet) -> bool {
        let n = self.exists();
        set.0.as_ref().iter().any(|s| {
            let too_big = |v: &SeqOrUid| matches!(v, SeqOrUid::Value(v) if v.get() > n);
            match s {
                Sequence::Single(v) => too_big(v),
                Sequence::Range(a, b) => too_big(a) && too_big(b),
            }
        })
    }

    /// `* FLAGS (...)` and the PERMANENTFLAGS line.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let mut all = vec!["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
        all.extend(self.keywords.iter().map(|(_, n)| n));
        response::untagged(out, format!("FLAGS ({})", all.join(" ")).as_bytes());
        let perm = if self.read_only {
            String::new()
        } else if self.keywords.is_full() {
            all.join(" ")
        } else {
            format!("{} \\*", all.join(" "))
        };
        response::ok(
            out,
            "*",
            &format!("[PERMANENTFLAGS ({perm})] Flags permitted."),
        );
    }

    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])` for a flag change, spelled by the one
    /// renderer FETCH uses (`fetch::flags_response`).
    pub fn write_flags_fetch(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        uid: u32,
        flags: Flags,
        modseq: Option<u64>,
    ) {
        let recent = self.recent.contains(&uid);
        fetch::flags_response(out, seq, Some(uid), flags, &self.keywords, recent, modseq);
    }

    /// Sends the EXPUNGEs that wait; highest sequence number first, so the others keep theirs.
    pub fn flush_expunges(&mut self, out: &mut Vec<u8>) {
        let gone = std::mem::take(&mut self.pending_expunge);
        for uid in gone.into_iter().rev() {
            if let Ok(i) = self.uids.binary_search(&uid) {
                self.uids.remove(i);
                self.recent.remove(&uid);
                response::untagged(out, format!("{} EXPUNGE", i + 1).as_bytes());
            }
        }
    }

    /// Applies what the index reports. False: UIDVALIDITY changed, the session must end.
    pub fn apply(
        &mut self,
        ch: Changes,
        recent: Vec<u32>,
        keywords: Keywords,
        allow_expunge: bool,
        condstore: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        if ch.uid_validity_changed {
            return false;
        }
        if ch.keywords_changed || keywords != self.keywords {
            self.keywords = keywords;
            self.write_flags(out);
        }
        self.pending_expunge.extend(ch.expunged.iter().copied());
        if allow_expunge {
            self.flush_expunges(out);
        }
        let recent_before = self.recent.len();
        self.recent.extend(recent);
        if !ch.new.is_empty() {
            for m in &ch.new {
                if self.uids.last().is_none_or(|&u| u < m.uid) {
                    self.uids.push(m.uid);
                }
            }
            response::untagged(out, format!("{} EXISTS", self.uids.len()).as_bytes());
        }
        if self.recent.len() != recent_before {
            response::untagged(out, format!("{} RECENT", self.recent.len()).as_bytes());
        }
        for f in &ch.flags {
            if self.pending_expunge.contains(&f.uid) {
                continue;
            }
            if let Some(seq) = self.seq_of(f.uid) {
                self.write_flags_fetch(out, seq, f.uid, f.flags, condstore.then_some(f.modseq));
            }
        }
        true
    }
}

impl Session {
    /// Syncs the selected mailbox's index and reports what changed (EXPUNGE only when
    /// `allow_expunge`). A changed UIDVALIDITY ends the session (RFC 3501 §2.3.1.1).
    pub(in crate::session) async fn report_changes(
        &mut self,
        allow_expunge: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        let claim = !sel.read_only;
        let result = with_index(&sel.index, move |ix| {
            let ch = ix.sync()?;
            // New messages of a read-write session become its \Recent ones.
            let recent = if claim && !ch.new.is_empty() {
                ix.move_new_to_cur()?
            } else {
                Vec::new()
            };
            Ok((ch, recent, ix.keywords().clone()))
        })
        .await;
        let condstore = self.condstore;
        match result {
            Ok((ch, recent, keywords)) => {
                let Some(sel) = &mut self.selected else {
                    return Flow::Continue;
                };
                if sel.apply(ch, recent, keywords, allow_expunge, condstore, out) {
                    Flow::Continue
                } else {
                    self.selected = None;
                    response::bye(out, "UIDVALIDITY changed; please select the mailbox again.");
                    Flow::Close
                }
            }
            Err(e) => {
                moat_common::error!(
                    "{}: {}: sync: {e:?}",
                    self.config.who,
                    self.user().unwrap_or("-")
                );
                Flow::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(uids: &[u32]) -> Vec<u32> {
        uids.to_vec()
    }

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).expect("set")
    }

    fn resolve(uids: &[u32], s: &str, uid: bool) -> Vec<usize> {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Maildir::create(dir.path().join("M")).expect("maildir");
        let index = Index::open(&md).expect("index");
        let sel = Selected {
            maildir: md,
            index: Arc::new(Mutex::new(index)),
            read_only: false,
            uids: view(uids),
            recent: BTreeSet::new(),
            pending_expunge: BTreeSet::new(),
            keywords: Keywords::default(),
            watcher: None,
        };
        sel.resolve(&set(s), uid)
    }

    #[test]
    fn sequence_sets_resolve_without_expanding() {
        assert_eq!(resolve(&[3, 5, 9], "1:*", false), [0, 1, 2]);
        assert_eq!(resolve(&[3, 5, 9], "2,1,2", false), [0, 1]);
        assert_eq!(resolve(&[3, 5, 9], "4:4294967295", true), [1, 2]);
        assert_eq!(resolve(&[3, 5, 9], "20:*", true), [2]);
        assert_eq!(resolve(&[3, 5, 9], "6:8", true), Vec::<usize>::new());
        assert_eq!(resolve(&[], "1:*", true), Vec::<usize>::new());
    }
}
