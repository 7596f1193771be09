//! Changing messages: STORE (with CONDSTORE's UNCHANGEDSINCE), EXPUNGE and the new/ → cur/ move
//! that gives a session its \Recent messages.
//!
//! Each runs under the index lock after reading the log to its end, renames or unlinks the files
//! through the maildir crate's hinted operations (one system call when the file is where the
//! index last saw it; followed by base name when someone renamed it), then appends one batch of
//! records sharing one MODSEQ. Because every Moat writer holds the same lock, the UNCHANGEDSINCE
//! test and the change are atomic with respect to other sessions; renames by other programs are
//! noticed by a scan, which a conditional STORE runs first so it compares against them too.
//! What this handle changed is recorded as already reported, so its own changes do not come back
//! from `sync` as changes made by someone else.

use moat_maildir::{Error, Flags, Result};

use super::format::LogRec;
use super::modseq::next_modseq;
use super::{FlagChange, Index, StoreOp, StoreOutcome};

/// Capital letters IMAP cannot see (`P` passed, other tools' experimental flags): a STORE that
/// replaces the flags keeps them, like Dovecot.
fn hidden_letters() -> Flags {
    Flags::parse("ABCEGHIJKLMNOPQUVWXYZ").unwrap_or_default()
}

impl StoreOp {
    /// The flags after applying this operation with `flags` to `current`.
    pub fn apply(self, current: Flags, flags: Flags) -> Flags {
        match self {
            StoreOp::Add => current.union(flags),
            StoreOp::Remove => current.difference(flags),
            StoreOp::Replace => {
                let hidden = hidden_letters();
                let kept = current.difference(current.difference(hidden));
                kept.union(flags)
            }
        }
    }
}

fn file_name_of(e: &moat_maildir::Entry) -> String {
    e.path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned()
}

impl Index {
    /// STORE / UID STORE: applies `op` with `flags` to each UID. With `unchanged_since`
    /// (CONDSTORE), messages whose MODSEQ is greater are left alone and listed in `failed`.
    /// UIDs that are not (or no longer) in the folder are skipped. A message whose flags end up
    /// as they were keeps its MODSEQ and is listed in `unchanged`.
    pub fn store_flags(
        &mut self,
        uids: &[u32],
        op: StoreOp,
        flags: Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.locked_by_uid(|ix| {
            if unchanged_since.is_some() {
                ix.rescan_locked()?;
                ix.check_validity()?;
            }
            let modseq = next_modseq(ix.state.highest_modseq);
            let mut out = StoreOutcome::default();
            let mut recs = Vec::new();
            let mut error = None;
            for &uid in &uids {
                let Some(m) = ix.state.messages.get(&uid) else {
                    continue;
                };
                if unchanged_since.is_some_and(|u| m.modseq > u) {
                    out.failed.push(uid);
                    continue;
                }
                if op.apply(m.flags, flags) == m.flags {
                    out.unchanged.push(FlagChange {
                        uid,
                        flags: m.flags,
                        modseq: m.modseq,
                    });
                    continue;
                }
                let result =
                    ix.maildir
                        .modify_flags_hinted(m.base(), m.subdir, &m.file_name, |current| {
                            op.apply(current, flags)
                        });
                match result {
                    Ok(e) => {
                        let changed = e.flags != m.flags;
                        let change = FlagChange {
                            uid,
                            flags: e.flags,
                            modseq: if changed { modseq } else { m.modseq },
                        };
                        recs.push(LogRec::Name {
                            uid,
                            modseq: if changed { modseq } else { 0 },
                            subdir: e.subdir,
                            file_name: file_name_of(&e),
                        });
                        if changed {
                            out.changed.push(change);
                        } else {
                            out.unchanged.push(change);
                        }
                    }
                    // Expunged by someone else: the next scan reports it.
                    Err(Error::MessageNotFound(_)) => {}
                    Err(e) => {
                        // Record the renames already done before reporting the failure.
                        error = Some(e);
                        break;
                    }
                }
            }
            ix.disk.append(&mut ix.state, &recs)?;
            for c in &out.changed {
                ix.reported.set(c.uid, c.flags, c.modseq);
            }
            match error {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }

    /// EXPUNGE / UID EXPUNGE: deletes the messages of `uids` (with `only_deleted`, only those
    /// that still have \Deleted at this moment, which the lock makes the moment of the decision).
    /// Returns the UIDs that are gone now, including ones someone else deleted first; the caller
    /// reports them (they will not come back from `sync`).
    pub fn expunge(&mut self, uids: &[u32], only_deleted: bool) -> Result<Vec<u32>> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        self.locked_by_uid(|ix| {
            let modseq = next_modseq(ix.state.highest_modseq);
            let mut gone = Vec::new();
            let mut error = None;
            for &uid in &uids {
                let Some(m) = ix.state.messages.get(&uid) else {
                    continue;
                };
                if only_deleted && !m.flags.contains(Flags::TRASHED) {
                    continue;
                }
                match ix.maildir.expunge_hinted(m.base(), m.subdir, &m.file_name) {
                    Ok(_) | Err(Error::MessageNotFound(_)) => gone.push(uid),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let recs: Vec<LogRec> = gone
                .iter()
                .map(|&uid| LogRec::Expunge { uid, modseq })
                .collect();
            ix.disk.append(&mut ix.state, &recs)?;
            ix.reported.remove(&gone);
            match error {
                Some(e) => Err(e),
                None => Ok(gone),
            }
        })
    }

    /// Moves every message still in new/ to cur/ (flags unchanged, MODSEQ unchanged) and returns
    /// their UIDs: the messages that are \Recent for this session (docs/IMAP.md). Another
    /// session that calls this later gets none of them. A read-only (EXAMINE) session does not
    /// call it.
    pub fn move_new_to_cur(&mut self) -> Result<Vec<u32>> {
        self.locked_by_uid(|ix| {
            let modseq = next_modseq(ix.state.highest_modseq);
            let mut moved = Vec::new();
            let mut recs = Vec::new();
            let mut error = None;
            let in_new: Vec<u32> = ix
                .state
                .messages
                .values()
                .filter(|m| m.subdir == moat_maildir::Subdir::New)
                .map(|m| m.uid)
                .collect();
            for uid in in_new {
                let Some(m) = ix.state.messages.get(&uid) else {
                    continue;
                };
                match ix
                    .maildir
                    .modify_flags_hinted(m.base(), m.subdir, &m.file_name, |f| f)
                {
                    Ok(e) => {
                        recs.push(LogRec::Name {
                            uid,
                            // Only a name in new/ that carried flags can change here.
                            modseq: if e.flags != m.flags { modseq } else { 0 },
                            subdir: e.subdir,
                            file_name: file_name_of(&e),
                        });
                        moved.push(uid);
                    }
                    Err(Error::MessageNotFound(_)) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            ix.disk.append(&mut ix.state, &recs)?;
            match error {
                Some(e) => Err(e),
                None => Ok(moved),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ops() {
        let cur = Flags::parse("SPa").expect("flags");
        let f = Flags::parse("Fb").expect("flags");
        assert_eq!(StoreOp::Add.apply(cur, f).to_string(), "FPSab");
        assert_eq!(
            StoreOp::Remove
                .apply(cur, Flags::parse("Sa").expect("f"))
                .to_string(),
            "P"
        );
        // Replace keeps P (no IMAP name), drops S and the keyword a.
        assert_eq!(StoreOp::Replace.apply(cur, f).to_string(), "FPb");
    }
}
