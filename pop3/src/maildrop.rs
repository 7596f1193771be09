//! The maildrop: the user's INBOX (`<mail_root>/<domain>/<local>/Maildir`, new/ and cur/) as a
//! snapshot taken at login, numbered 1..n in UID order, and the UPDATE state's commit.
//!
//! Snapshot: the Maildir's UID list is synced first (`sync_uidlist`, the same Dovecot-format
//! list moat-imapd uses), then new/ and cur/ are listed; a message delivered between the two
//! has no UID yet and waits for the next session. UIDL is Dovecot's default
//! `pop3_uidl_format = %08Xu%08Xv` (UID then UIDVALIDITY, 8 upper-case hex digits each): it
//! lasts as long as the message and its UID, matches IMAP's UID, and a site that moves to or
//! from Dovecot keeps the same UIDLs, so fetchmail/getmail do not download everything again.
//! Sizes are the CRLF size (`,W=` in the name, which moat-local writes; else `,S=`/stat).
//!
//! Commit (QUIT in the TRANSACTION state only): messages marked deleted are expunged;
//! messages retrieved with RETR get the Seen flag (`S`, which moves them new/ → cur/), as
//! Dovecot does at QUIT. A message someone else (IMAP) expunged meanwhile is simply gone.
//!
//! SECURITY: the user name comes from moat-auth, and is checked again before it becomes a
//! path (`moat_common::daemon::user_maildir`): a confused store cannot point us outside
//! mail_root. The snapshot holds base names only; files are found by base name at use time
//! through the maildir crate, which follows renames and refuses names that are not plain
//! Maildir names.

use std::path::Path;

use moat_common::daemon::user_maildir::user_maildir;
use moat_maildir::{Error as MaildirError, Flags, Maildir};

use crate::lock::{InUse, LockError};

/// One message of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub base: String,
    pub uid: u32,
    /// Octets as sent (CRLF line ends, before dot-stuffing).
    pub octets: u64,
    pub deleted: bool,
    /// Retrieved with RETR in this session.
    pub retrieved: bool,
    /// Already had the Seen flag at login.
    pub seen: bool,
}

/// The snapshot the session works on (no I/O).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maildrop {
    pub uid_validity: u32,
    pub messages: Vec<Message>,
}

/// What the UPDATE state does to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Expunge(String),
    MarkSeen(String),
}

impl Maildrop {
    /// The message with POP3 number `n` (1-based), deleted or not.
    pub fn get(&self, n: u32) -> Option<&Message> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        self.messages.get(i)
    }

    pub fn get_mut(&mut self, n: u32) -> Option<&mut Message> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        self.messages.get_mut(i)
    }

    /// Messages not marked deleted, and their octets.
    pub fn stat(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, o), m| (n + 1, o + m.octets))
    }

    /// The UIDL of a message (Dovecot's default format).
    pub fn uidl(&self, m: &Message) -> String {
        format!("{:08X}{:08X}", m.uid, self.uid_validity)
    }

    /// What QUIT must do.
    pub fn changes(&self) -> Vec<Change> {
        self.messages
            .iter()
            .filter_map(|m| {
                if m.deleted {
                    Some(Change::Expunge(m.base.clone()))
                } else if m.retrieved && !m.seen {
                    Some(Change::MarkSeen(m.base.clone()))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// A logged-in user's open maildrop: the Maildir (none if nothing was ever delivered) and
/// the in-use lock, held until this is dropped.
#[derive(Debug)]
pub struct Mailbox {
    pub maildir: Option<Maildir>,
    _lock: Option<InUse>,
}

#[derive(Debug)]
pub enum OpenError {
    /// Another POP3 session has it (`[IN-USE]`).
    InUse,
    /// Anything else (`[SYS/TEMP]`); the text is for the log.
    Failed(String),
}

/// Locks and snapshots the maildrop of `user`. Blocking (file system, the UID list lock).
pub fn open(mail_root: &Path, user: &str) -> Result<(Mailbox, Maildrop), OpenError> {
    let path = user_maildir(mail_root, user)
        .ok_or_else(|| OpenError::Failed(format!("unusable user name {user:?} from moat-auth")))?;
    if !path.exists() {
        // moat-local creates the Maildir at the first delivery: until then the drop is empty.
        return Ok((
            Mailbox {
                maildir: None,
                _lock: None,
            },
            Maildrop::default(),
        ));
    }
    let failed = |e: MaildirError| OpenError::Failed(format!("{}: {e}", path.display()));
    let maildir = Maildir::open(&path).map_err(failed)?;
    let lock = InUse::try_lock(&path).map_err(|e| match e {
        LockError::Busy => OpenError::InUse,
        LockError::Io(e) => OpenError::Failed(format!("{}: lock: {e}", path.display())),
    })?;
    let uids = maildir.sync_uidlist().map_err(failed)?;
    let map = uids.uid_map();
    let mut messages: Vec<Message> = maildir
        .list()
        .map_err(failed)?
        .into_iter()
        .filter_map(|e| {
            let uid = *map.get(e.base.as_str())?;
            Some(Message {
                uid,
                octets: e.vsize.unwrap_or(e.size),
                seen: e.flags.has('S'),
                base: e.base,
                deleted: false,
                retrieved: false,
            })
        })
        .collect();
    messages.sort_by_key(|m| m.uid);
    Ok((
        Mailbox {
            maildir: Some(maildir),
            _lock: Some(lock),
        },
        Maildrop {
            uid_validity: uids.uid_validity,
            messages,
        },
    ))
}

/// The UPDATE state. Blocking. Returns how many changes failed (0 = all done); a message
/// already gone counts as done.
pub fn commit(mailbox: &Mailbox, changes: &[Change]) -> (usize, Vec<String>) {
    let Some(maildir) = &mailbox.maildir else {
        return (0, Vec::new());
    };
    let mut errors = Vec::new();
    for change in changes {
        let result = match change {
            Change::Expunge(base) => maildir.expunge(base).map(|_| ()),
            Change::MarkSeen(base) => maildir
                .update_flags(base, Flags::SEEN, Flags::empty())
                .map(|_| ()),
        };
        match result {
            Ok(()) | Err(MaildirError::MessageNotFound(_)) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    (errors.len(), errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_numbering_changes_and_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Maildir::create(dir.path().join("x.test/u/Maildir")).expect("create");
        let a = md.deliver(b"Subject: a\r\n\r\none\r\n").expect("a");
        let b = md.deliver(b"Subject: b\r\n\r\ntwo\r\n").expect("b");
        let (mailbox, mut snap) = open(dir.path(), "u@x.test").expect("open");
        assert!(matches!(
            open(dir.path(), "u@x.test"),
            Err(OpenError::InUse)
        ));
        assert_eq!(snap.messages.len(), 2);
        assert_eq!(snap.get(1).map(|m| m.base.as_str()), Some(a.as_str()));
        assert_eq!(snap.get(0), None);
        assert_eq!(snap.get(3), None);
        assert_eq!(snap.stat(), (2, 38));
        let first = snap.get(1).cloned().expect("m1");
        assert_eq!(
            snap.uidl(&first),
            format!("00000001{:08X}", snap.uid_validity)
        );
        if let Some(m) = snap.get_mut(1) {
            m.deleted = true;
        }
        if let Some(m) = snap.get_mut(2) {
            m.retrieved = true;
        }
        assert_eq!(
            snap.changes(),
            vec![Change::Expunge(a.clone()), Change::MarkSeen(b.clone())]
        );
        // Someone expunges message 1 first: the commit still succeeds.
        md.expunge(&a).expect("imap expunge");
        assert_eq!(commit(&mailbox, &snap.changes()).0, 0);
        drop(mailbox);
        let left = md.list().expect("list");
        assert_eq!(left.len(), 1);
        assert!(left[0].flags.has('S'));
        // UIDs survive: the next session sees message b with the same UIDL.
        let (_m2, again) = open(dir.path(), "u@x.test").expect("reopen");
        assert_eq!(again.messages[0].uid, 2);
        assert!(again.messages[0].seen);
    }

    #[test]
    fn no_maildir_is_an_empty_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mailbox, snap) = open(dir.path(), "nobody@x.test").expect("open");
        assert!(mailbox.maildir.is_none());
        assert_eq!(snap.stat(), (0, 0));
    }
}
