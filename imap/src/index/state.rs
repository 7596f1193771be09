//! The shared index state as one handle knows it: the snapshot plus every log record read since.
//! `apply` is the only way it changes, for records read from the log and for records this handle
//! writes (it applies what it appended), so every handle that has read the same log holds the
//! same state.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use moat_maildir::{Flags, Maildir, Subdir, split_info};

use super::format::{Header, LogRec, flags_of};

/// Where a message's blob lives in the cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobRef {
    /// Offset of the entry (its header) in `moat-index.cache`.
    pub(crate) offset: u64,
    /// Length of the blob bytes.
    pub(crate) len: u32,
}

/// One message as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The UID (from `dovecot-uidlist`).
    pub uid: u32,
    /// The directory the file was in when last seen (`New` = not yet moved to cur/).
    pub subdir: Subdir,
    /// The file name in that directory, with its `:2,` info; the base name is the part before `:`.
    pub file_name: String,
    /// The flags from the file name (system flag letters and keyword letters `a`–`z`).
    pub flags: Flags,
    /// The MODSEQ of the last change to this message (RFC 7162).
    pub modseq: u64,
    /// RFC822.SIZE: the size with every bare LF counted as CRLF (`,W=`), which is exactly what
    /// FETCH BODY[] sends when it sends the file with bare LFs turned into CRLF.
    pub size: u64,
    /// The size of the file on disk (`,S=`, else stat; measured when the blob is computed).
    pub file_size: u64,
    /// INTERNALDATE as seconds since the epoch (the file's mtime, which APPEND sets).
    pub internal_date: i64,
    pub(crate) blob: Option<BlobRef>,
}

impl Message {
    /// The base name: the message's identity in the Maildir and in `dovecot-uidlist`.
    pub fn base(&self) -> &str {
        split_info(&self.file_name).0
    }

    /// The file's path as last seen (it may have been renamed since; the maildir crate's
    /// `*_hinted` functions follow such moves).
    pub fn path(&self, maildir: &Maildir) -> PathBuf {
        maildir.subdir(self.subdir).join(&self.file_name)
    }

    /// True when the cached ENVELOPE/BODYSTRUCTURE blob is present.
    pub fn has_blob(&self) -> bool {
        self.blob.is_some()
    }
}

/// What identifies a version of a directory or file without reading it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
}

/// The stamps of new/, cur/ and `dovecot-uidlist` when the Maildir was last scanned. A
/// directory's stamp is *stable* if its mtime was old enough at the scan that any later change
/// must produce a different mtime (see sync.rs); an unstable one makes the next sync list that
/// directory again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamps {
    pub(crate) new_stable: bool,
    pub(crate) cur_stable: bool,
    pub(crate) new: Stamp,
    pub(crate) cur: Stamp,
    pub(crate) uidlist: Stamp,
}

/// Where the index has a message's file: enough to tell whether a listed name is exactly the
/// indexed one without a lookup in `State::messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) uid: u32,
    pub(crate) subdir: Subdir,
    /// The file name after the base name (`:2,S`; empty when it has no info).
    pub(crate) suffix: Suffix,
}

/// A file name's part after the base name, stored inline when short (nearly always): comparing
/// it then touches no other memory, which matters when a scan compares 50,000 names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Suffix {
    Short(u8, [u8; SHORT_SUFFIX]),
    Long(Box<str>),
}

const SHORT_SUFFIX: usize = 22;

impl Suffix {
    fn new(s: &str) -> Suffix {
        let mut bytes = [0u8; SHORT_SUFFIX];
        match (bytes.get_mut(..s.len()), u8::try_from(s.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(s.as_bytes());
                Suffix::Short(len, bytes)
            }
            _ => Suffix::Long(Box::from(s)),
        }
    }

    /// True when `s` is this suffix.
    pub(crate) fn is(&self, s: &str) -> bool {
        match self {
            Suffix::Short(len, bytes) => bytes.get(..usize::from(*len)) == Some(s.as_bytes()),
            Suffix::Long(b) => **b == *s,
        }
    }
}

impl Place {
    fn of(m: &Message) -> Place {
        Place {
            uid: m.uid,
            subdir: m.subdir,
            suffix: Suffix::new(m.file_name.get(m.base().len()..).unwrap_or_default()),
        }
    }
}

/// The index state.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) generation: u64,
    pub(crate) cache_id: u64,
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) stamps: Stamps,
    /// A BTreeMap so that a batch expunging thousands of messages costs O(k log n), not O(k n).
    pub(crate) messages: BTreeMap<u32, Message>,
    /// Bumped by every `apply`: a handle compares it to decide whether anything changed.
    pub(crate) version: u64,
    /// Base name → where that message's file is, kept up to date by `apply` so that a rescan
    /// (every sync while a directory is unstable) neither rebuilds a map of the whole folder
    /// nor looks each listed name up in `messages`. Two messages with one base name should not
    /// exist; if they do, the highest UID wins, as it did when the scan built the map from
    /// `messages` in UID order.
    pub(crate) by_base: HashMap<Box<str>, Place>,
    /// Set once two messages shared a base name: removing the winner must then look for the
    /// other one (a linear search, only in that case).
    pub(crate) base_dups: bool,
}

impl State {
    /// The state a snapshot describes.
    pub(crate) fn from_snapshot(h: Header, messages: Vec<Message>) -> State {
        let mut state = State {
            generation: h.generation,
            cache_id: h.cache_id,
            uid_validity: h.uid_validity,
            uid_next: h.uid_next.max(1),
            highest_modseq: h.highest_modseq,
            stamps: h.stamps,
            messages: messages.into_iter().map(|m| (m.uid, m)).collect(),
            version: 0,
            by_base: HashMap::new(),
            base_dups: false,
        };
        state.by_base.reserve(state.messages.len());
        let places: Vec<(Box<str>, Place)> = state
            .messages
            .values()
            .map(|m| (Box::from(m.base()), Place::of(m)))
            .collect();
        for (base, place) in places {
            state.index_base(base, place);
        }
        state
    }

    /// Where the index has the message whose base name this file name has, if any.
    pub(crate) fn place_of(&self, file_name: &str) -> Option<&Place> {
        self.by_base.get(split_info(file_name).0)
    }

    fn index_base(&mut self, base: Box<str>, place: Place) {
        match self.by_base.entry(base) {
            Entry::Vacant(e) => {
                e.insert(place);
            }
            Entry::Occupied(mut e) => {
                if e.get().uid != place.uid {
                    self.base_dups = true;
                }
                if e.get().uid <= place.uid {
                    e.insert(place);
                }
            }
        }
    }

    /// Forgets that `uid` has `base` (called after `messages` no longer says so).
    fn unindex_base(&mut self, base: &str, uid: u32) {
        if self.by_base.get(base).is_none_or(|p| p.uid != uid) {
            return;
        }
        self.by_base.remove(base);
        if self.base_dups {
            // Another message may have the same base: the highest such UID takes over.
            let other = self
                .messages
                .values()
                .rev()
                .find(|m| m.base() == base)
                .map(Place::of);
            if let Some(other) = other {
                self.by_base.insert(Box::from(base), other);
            }
        }
    }

    /// The snapshot header for this state.
    pub(crate) fn header(&self) -> Header {
        Header {
            generation: self.generation,
            cache_id: self.cache_id,
            uid_validity: self.uid_validity,
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            stamps: self.stamps,
            count: u32::try_from(self.messages.len()).unwrap_or(u32::MAX),
        }
    }

    /// The highest UID present (0 when empty).
    pub(crate) fn max_uid(&self) -> u32 {
        self.messages.keys().next_back().copied().unwrap_or(0)
    }

    fn bump(&mut self, modseq: u64) {
        self.highest_modseq = self.highest_modseq.max(modseq);
    }

    /// Applies one record. Records about unknown UIDs are ignored (the message was expunged by a
    /// record this one raced with); nothing here can fail.
    pub(crate) fn apply(&mut self, rec: &LogRec) {
        self.version = self.version.wrapping_add(1);
        match rec {
            LogRec::Add(m) => {
                self.bump(m.modseq);
                self.uid_next = self.uid_next.max(m.uid.saturating_add(1));
                if let Some(old) = self.messages.insert(m.uid, m.clone())
                    && old.base() != m.base()
                {
                    self.unindex_base(old.base(), m.uid);
                }
                self.index_base(Box::from(m.base()), Place::of(m));
            }
            LogRec::Name {
                uid,
                modseq,
                subdir,
                file_name,
            } => {
                let mut renamed = None;
                if let Some(m) = self.messages.get_mut(uid) {
                    let old_base = if m.base() == split_info(file_name).0 {
                        None
                    } else {
                        Some(m.base().to_owned())
                    };
                    m.subdir = *subdir;
                    m.flags = flags_of(file_name);
                    m.file_name.clone_from(file_name);
                    if *modseq != 0 {
                        m.modseq = *modseq;
                    }
                    renamed = Some((old_base, Place::of(m)));
                }
                if let Some((old_base, place)) = renamed {
                    let base = split_info(file_name).0;
                    if let Some(old_base) = old_base {
                        // Not written by our scans (they match by base), but a log may say so.
                        self.unindex_base(&old_base, *uid);
                        self.index_base(Box::from(base), place);
                    } else if let Some(p) = self.by_base.get_mut(base)
                        && p.uid == *uid
                    {
                        *p = place;
                    }
                }
                self.bump(*modseq);
            }
            LogRec::Expunge { uid, modseq } => {
                if let Some(old) = self.messages.remove(uid) {
                    self.unindex_base(old.base(), *uid);
                }
                self.bump(*modseq);
            }
            LogRec::Blob {
                uid,
                blob,
                file_size,
                size,
            } => {
                if let Some(m) = self.messages.get_mut(uid) {
                    m.blob = Some(*blob);
                    m.file_size = *file_size;
                    m.size = *size;
                }
            }
            LogRec::Scan { uid_next, stamps } => {
                self.uid_next = self.uid_next.max(*uid_next);
                self.stamps = *stamps;
            }
        }
    }

    /// Applies records in order.
    pub(crate) fn apply_all(&mut self, recs: &[LogRec]) {
        for r in recs {
            self.apply(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(uid: u32, modseq: u64) -> Message {
        Message {
            uid,
            subdir: Subdir::New,
            file_name: format!("{uid}.M1P1.h"),
            flags: Flags::empty(),
            modseq,
            size: 1,
            file_size: 1,
            internal_date: 0,
            blob: None,
        }
    }

    #[test]
    fn apply_tracks_uid_next_and_highest_modseq() {
        let mut s = State::default();
        s.apply(&LogRec::Add(msg(5, 10)));
        s.apply(&LogRec::Add(msg(7, 11)));
        assert_eq!((s.uid_next, s.highest_modseq, s.max_uid()), (8, 11, 7));
        s.apply(&LogRec::Name {
            uid: 5,
            modseq: 12,
            subdir: Subdir::Cur,
            file_name: "5.M1P1.h:2,S".to_owned(),
        });
        let m = &s.messages[&5];
        assert_eq!((m.flags, m.modseq, m.base()), (Flags::SEEN, 12, "5.M1P1.h"));
        // A rename without a flag change keeps the MODSEQ.
        s.apply(&LogRec::Name {
            uid: 7,
            modseq: 0,
            subdir: Subdir::Cur,
            file_name: "7.M1P1.h:2,".to_owned(),
        });
        assert_eq!(s.messages[&7].modseq, 11);
        s.apply(&LogRec::Expunge { uid: 7, modseq: 13 });
        s.apply(&LogRec::Expunge { uid: 99, modseq: 1 });
        s.apply(&LogRec::Name {
            uid: 99,
            modseq: 1,
            subdir: Subdir::Cur,
            file_name: "x".to_owned(),
        });
        assert_eq!((s.messages.len(), s.highest_modseq, s.uid_next), (1, 13, 8));
    }

    /// The map the scan used to build from `messages` each time: the highest UID wins.
    fn rebuilt(s: &State) -> HashMap<Box<str>, Place> {
        s.messages
            .values()
            .map(|m| (Box::from(m.base()), Place::of(m)))
            .collect()
    }

    #[test]
    fn base_map_follows_adds_renames_and_expunges() {
        let mut s = State::default();
        let named = |uid: u32, name: &str| {
            let mut m = msg(uid, 1);
            m.file_name = name.to_owned();
            LogRec::Add(m)
        };
        s.apply_all(&[add(1), add(2), add(3)]);
        assert_eq!(s.by_base, rebuilt(&s));
        s.apply(&LogRec::Name {
            uid: 2,
            modseq: 2,
            subdir: Subdir::Cur,
            file_name: "2.M1P1.h:2,S".to_owned(),
        });
        assert_eq!(s.by_base, rebuilt(&s));
        assert!(
            s.place_of("2.M1P1.h:2,")
                .is_some_and(|p| p.suffix.is(":2,S"))
        );
        let long = ":2,abcdefghijklmnopqrstuvwxyz";
        assert!(Suffix::new(long).is(long) && !Suffix::new(long).is(":2,"));
        assert!(Suffix::new("").is("") && !Suffix::new("").is(":"));
        // A rename to another base (no scan writes one, but the log may hold it).
        s.apply(&LogRec::Name {
            uid: 3,
            modseq: 3,
            subdir: Subdir::Cur,
            file_name: "other:2,".to_owned(),
        });
        assert_eq!(s.by_base, rebuilt(&s));
        assert!(s.place_of("3.M1P1.h").is_none());
        // Two messages with one base: the highest UID wins, and the other takes over when it
        // goes; a re-added UID with another name replaces its old base.
        s.apply_all(&[named(7, "1.M1P1.h:2,F"), named(5, "1.M1P1.h")]);
        assert_eq!(s.by_base, rebuilt(&s));
        s.apply(&LogRec::Expunge { uid: 7, modseq: 4 });
        assert_eq!(s.by_base, rebuilt(&s));
        assert_eq!(s.place_of("1.M1P1.h").map(|p| p.uid), Some(5));
        s.apply(&LogRec::Expunge { uid: 5, modseq: 5 });
        assert_eq!(s.by_base, rebuilt(&s));
        s.apply(&named(1, "fresh"));
        assert_eq!(s.by_base, rebuilt(&s));
        s.apply_all(&[
            LogRec::Expunge { uid: 1, modseq: 6 },
            LogRec::Expunge { uid: 2, modseq: 6 },
            LogRec::Expunge { uid: 3, modseq: 6 },
        ]);
        assert!(s.by_base.is_empty());
        // A snapshot builds the same map.
        s.apply_all(&[add(8), add(9)]);
        let snap = State::from_snapshot(s.header(), s.messages_vec());
        assert_eq!(snap.by_base, rebuilt(&s));
    }

    fn add(uid: u32) -> LogRec {
        LogRec::Add(msg(uid, 1))
    }
}
