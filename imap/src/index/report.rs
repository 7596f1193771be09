//! What one handle has told its session, and the difference to the shared state: the `Changes`
//! that `sync` returns.
//!
//! The handle keeps `(uid, flags, modseq)` of every message it reported. A sync walks that list
//! and the state side by side (both in UID order, O(n) and only when the state changed), so it
//! does not matter how the state got where it is: log records, a reload after another process
//! compacted, or a rebuild. A message that appears below the highest UID already reported is
//! not announced (IMAP requires new UIDs to ascend; with the two-scan rule it does not happen).

use moat_maildir::Flags;

use super::state::{Message, State};
use super::{Changes, FlagChange};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    uid: u32,
    flags: Flags,
    modseq: u64,
}

/// The reported view of one handle.
#[derive(Debug, Default)]
pub(crate) struct Reported {
    seen: Vec<Seen>,
    max_uid: u32,
    uid_validity: u32,
    /// `(generation, version)` of the state last compared, to skip unchanged states.
    compared: (u64, u64),
}

fn seen(m: &Message) -> Seen {
    Seen {
        uid: m.uid,
        flags: m.flags,
        modseq: m.modseq,
    }
}

impl Reported {
    /// Everything in `state` counts as reported (after open).
    pub(crate) fn from_state(state: &State) -> Reported {
        Reported {
            seen: state.messages.values().map(seen).collect(),
            max_uid: state.max_uid(),
            uid_validity: state.uid_validity,
            compared: (state.generation, state.version),
        }
    }

    /// The UIDVALIDITY the session was told.
    pub(crate) fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// True if `uid` was reported and not yet reported expunged.
    pub(crate) fn contains(&self, uid: u32) -> bool {
        self.seen.binary_search_by_key(&uid, |s| s.uid).is_ok()
    }

    /// Records a change this handle made itself.
    pub(crate) fn set(&mut self, uid: u32, flags: Flags, modseq: u64) {
        if let Ok(i) = self.seen.binary_search_by_key(&uid, |s| s.uid)
            && let Some(s) = self.seen.get_mut(i)
        {
            s.flags = flags;
            s.modseq = modseq;
        }
    }

    /// Records expunges this handle made itself (`uids` sorted).
    pub(crate) fn remove(&mut self, uids: &[u32]) {
        if !uids.is_empty() {
            self.seen.retain(|s| uids.binary_search(&s.uid).is_err());
        }
    }

    /// The changes from what was reported to `state`, which then counts as reported.
    pub(crate) fn diff(&mut self, state: &State) -> Changes {
        let mut ch = Changes {
            uid_next: state.uid_next,
            highest_modseq: state.highest_modseq,
            ..Changes::default()
        };
        if state.uid_validity != self.uid_validity {
            // The UID list was rebuilt: every UID is new (the session must end, RFC 3501 §2.3.1.1).
            ch.uid_validity_changed = true;
            ch.expunged = self.seen.iter().map(|s| s.uid).collect();
            ch.new = state.messages.values().cloned().collect();
            *self = Reported::from_state(state);
            return ch;
        }
        if self.compared == (state.generation, state.version) {
            return ch;
        }
        let mut out = Vec::with_capacity(state.messages.len());
        let mut old = self.seen.iter().peekable();
        let mut cur = state.messages.values().peekable();
        loop {
            match (old.peek(), cur.peek()) {
                (Some(o), Some(c)) if o.uid == c.uid => {
                    if o.flags != c.flags || o.modseq != c.modseq {
                        ch.flags.push(FlagChange {
                            uid: c.uid,
                            flags: c.flags,
                            modseq: c.modseq,
                        });
                    }
                    out.push(seen(c));
                    old.next();
                    cur.next();
                }
                (Some(o), Some(c)) if o.uid < c.uid => {
                    ch.expunged.push(o.uid);
                    old.next();
                }
                (Some(o), None) => {
                    ch.expunged.push(o.uid);
                    old.next();
                }
                (_, Some(c)) => {
                    if c.uid > self.max_uid {
                        ch.new.push((*c).clone());
                        out.push(seen(c));
                    }
                    cur.next();
                }
                (None, None) => break,
            }
        }
        if let Some(last) = ch.new.last() {
            self.max_uid = last.uid;
        }
        self.seen = out;
        self.compared = (state.generation, state.version);
        ch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::format::LogRec;
    use moat_maildir::Subdir;

    fn add(uid: u32, modseq: u64) -> LogRec {
        LogRec::Add(Message {
            uid,
            subdir: Subdir::New,
            file_name: format!("{uid}.M1P1.h"),
            flags: Flags::empty(),
            modseq,
            size: 1,
            file_size: 1,
            internal_date: 0,
            blob: None,
        })
    }

    #[test]
    fn diff_reports_new_expunged_and_flag_changes() {
        let mut s = State {
            uid_validity: 5,
            ..State::default()
        };
        s.apply_all(&[add(1, 10), add(2, 10), add(3, 10)]);
        let mut r = Reported::from_state(&s);
        assert!(r.diff(&s).is_empty());
        s.apply_all(&[
            LogRec::Expunge { uid: 2, modseq: 11 },
            LogRec::Name {
                uid: 3,
                modseq: 12,
                subdir: Subdir::Cur,
                file_name: "3.M1P1.h:2,S".to_owned(),
            },
            add(4, 12),
        ]);
        let ch = r.diff(&s);
        assert_eq!(ch.expunged, vec![2]);
        assert_eq!(
            ch.flags,
            vec![FlagChange {
                uid: 3,
                flags: Flags::SEEN,
                modseq: 12
            }]
        );
        assert_eq!(ch.new.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![4]);
        assert_eq!((ch.uid_next, ch.highest_modseq), (5, 12));
        assert!(r.diff(&s).is_empty(), "reported once");
        // A UID below the highest reported one is never announced.
        s.apply(&add(2, 13));
        assert!(r.diff(&s).new.is_empty());
        // Own changes are not reported back.
        s.apply(&LogRec::Name {
            uid: 1,
            modseq: 14,
            subdir: Subdir::Cur,
            file_name: "1.M1P1.h:2,F".to_owned(),
        });
        r.set(1, Flags::FLAGGED, 14);
        assert!(r.diff(&s).flags.is_empty());
        // A new UIDVALIDITY replaces everything.
        let mut s2 = State {
            uid_validity: 6,
            ..State::default()
        };
        s2.apply(&add(1, 20));
        let ch = r.diff(&s2);
        assert!(ch.uid_validity_changed);
        assert_eq!(ch.expunged, vec![1, 3, 4]);
        assert_eq!(ch.new.len(), 1);
    }
}
