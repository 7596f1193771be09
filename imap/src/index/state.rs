//! The shared index state as one handle knows it: the snapshot plus every log record read since.
//! `apply` is the only way it changes, for records read from the log and for records this handle
//! writes (it applies what it appended), so every handle that has read the same log holds the
//! same state.

use std::collections::BTreeMap;
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
}

impl State {
    /// The state a snapshot describes.
    pub(crate) fn from_snapshot(h: Header, messages: Vec<Message>) -> State {
        State {
            generation: h.generation,
            cache_id: h.cache_id,
            uid_validity: h.uid_validity,
            uid_next: h.uid_next.max(1),
            highest_modseq: h.highest_modseq,
            stamps: h.stamps,
            messages: messages.into_iter().map(|m| (m.uid, m)).collect(),
            version: 0,
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
                self.messages.insert(m.uid, m.clone());
            }
            LogRec::Name {
                uid,
                modseq,
                subdir,
                file_name,
            } => {
                if let Some(m) = self.messages.get_mut(uid) {
                    m.subdir = *subdir;
                    m.flags = flags_of(file_name);
                    m.file_name.clone_from(file_name);
                    if *modseq != 0 {
                        m.modseq = *modseq;
                    }
                }
                self.bump(*modseq);
            }
            LogRec::Expunge { uid, modseq } => {
                self.messages.remove(uid);
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
}
