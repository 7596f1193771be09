//! One user's mailboxes on disk: the Maildir root (INBOX) and its Maildir++ folders, with
//! what CREATE, DELETE and RENAME do to them. Blocking: callers run it on the blocking pool.
//!
//! Semantics (RFC 3501 §6.3.3–6.3.5, as Dovecot implements them on Maildir++):
//! - CREATE makes the missing parents too (`a/b/c` makes `a` and `a/b`).
//! - DELETE refuses INBOX. A mailbox with children loses its folder (its messages) and stays
//!   visible as `\Noselect` while its children exist, since Maildir++ keeps `.a` and `.a.b`
//!   apart; one that is already `\Noselect` cannot be deleted until its children are.
//! - RENAME moves the children along; RENAME of INBOX moves INBOX's messages into a new
//!   folder and leaves INBOX empty (its children stay).
//!
//! SECURITY: every name reaching this file went through `name::parse`; the maildir crate
//! checks folder names again. A user may have at most `MAX_FOLDERS` folders.

use std::path::Path;

use moat_maildir::{Error as MaildirError, Maildir, Subdir};

use super::name::{MailboxName, from_folder};

/// The most folders one user may have (CREATE beyond is `[LIMIT]`).
pub const MAX_FOLDERS: usize = 10_000;

/// Why a mailbox operation failed, as the client is told.
#[derive(Debug)]
pub enum StoreError {
    /// `[NONEXISTENT]`
    NonExistent,
    /// `[ALREADYEXISTS]`
    AlreadyExists,
    /// `[CANNOT]` with the reason.
    Cannot(&'static str),
    /// `[LIMIT]` with the reason.
    Limit(&'static str),
    /// `[SERVERBUG]`-class trouble, logged; the client hears `[UNAVAILABLE]`.
    Io(String),
}

impl From<MaildirError> for StoreError {
    fn from(e: MaildirError) -> Self {
        match e {
            MaildirError::FolderNotFound(_) => StoreError::NonExistent,
            MaildirError::FolderExists(_) => StoreError::AlreadyExists,
            MaildirError::InvalidFolderName { .. } => {
                StoreError::Cannot("that name cannot be stored here")
            }
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// A user's mailboxes (a handle on paths only; cheap to clone).
#[derive(Debug, Clone)]
pub struct Store {
    root: Maildir,
}

/// One mailbox in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: MailboxName,
    /// False for a `\Noselect` level that only exists because a child does.
    pub selectable: bool,
    pub children: bool,
}

impl Store {
    /// Opens the Maildir at `path` under `mail_root`, creating it (moat-local would at the
    /// first delivery), and returns the store with the special-use folders it had to create.
    /// As moat-local does, it refuses a missing mail root (an unmounted file system must not
    /// fill the root one) and a symbolic link on the way from the mail root to the Maildir.
    pub fn open(
        mail_root: &Path,
        path: &Path,
        special: &[&str],
    ) -> Result<(Store, Vec<String>), StoreError> {
        if !mail_root.is_dir() {
            return Err(StoreError::Io(format!(
                "the mail root {} is not a directory (not mounted?)",
                mail_root.display()
            )));
        }
        let below = path.strip_prefix(mail_root).map_err(|_| {
            StoreError::Io(format!("{} is not under the mail root", path.display()))
        })?;
        let mut on_the_way = mail_root.to_path_buf();
        for part in below.components() {
            on_the_way.push(part);
            if std::fs::symlink_metadata(&on_the_way).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(StoreError::Io(format!(
                    "{} is a symbolic link",
                    on_the_way.display()
                )));
            }
        }
        let root = match Maildir::open(path) {
            Ok(md) => md,
            Err(MaildirError::NotAMaildir { .. }) => Maildir::create(path)?,
            Err(e) => return Err(e.into()),
        };
        let store = Store { root };
        let mut created = Vec::new();
        for name in special {
            match store.root.create_folder(name) {
                Ok(_) => created.push(name.to_string()),
                Err(MaildirError::FolderExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((store, created))
    }

    /// The Maildir++ root (INBOX).
    pub fn root(&self) -> &Maildir {
        &self.root
    }

    /// The Maildir of a selectable mailbox.
    pub fn maildir(&self, name: &MailboxName) -> Result<Maildir, StoreError> {
        match &name.folder {
            None => Ok(self.root.clone()),
            Some(f) => Ok(self.root.folder(f)?),
        }
    }

    /// Every mailbox: INBOX, the folders, and the `\Noselect` levels above folders whose
    /// parent folder is missing; sorted by name.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let folders: Vec<MailboxName> = self
            .root
            .list_folders()?
            .iter()
            .filter_map(|f| from_folder(f))
            .collect();
        let mut all: std::collections::BTreeMap<String, Listed> = Default::default();
        let inbox = MailboxName::inbox();
        all.insert(
            inbox.imap.clone(),
            Listed {
                name: inbox,
                selectable: true,
                children: false,
            },
        );
        for name in &folders {
            for parent in name.parents() {
                all.entry(parent.imap.clone()).or_insert(Listed {
                    name: parent,
                    selectable: false,
                    children: true,
                });
            }
            let entry = all.entry(name.imap.clone()).or_insert(Listed {
                name: name.clone(),
                selectable: true,
                children: false,
            });
            entry.selectable = true;
        }
        let names: Vec<String> = all.keys().cloned().collect();
        for (i, n) in names.iter().enumerate() {
            let below = format!("{n}/");
            // Sorted: a child sorts right after its parent's other children's prefix; a scan
            // over the rest is simple and the list is bounded by MAX_FOLDERS.
            let has = names.iter().skip(i + 1).any(|m| m.starts_with(&below));
            if let Some(l) = all.get_mut(n) {
                l.children = has;
            }
        }
        Ok(all.into_values().collect())
    }

    fn folder_exists(&self, folder: &str) -> bool {
        self.root.folder(folder).is_ok()
    }

    /// True if the mailbox exists and can be selected.
    pub fn exists(&self, name: &MailboxName) -> bool {
        name.folder.as_deref().is_none_or(|f| self.folder_exists(f))
    }

    fn has_children(&self, folder: &str) -> Result<bool, StoreError> {
        let below = format!("{folder}.");
        Ok(self
            .root
            .list_folders()?
            .iter()
            .any(|f| f.starts_with(&below)))
    }

    fn make(&self, name: &MailboxName) -> Result<(), StoreError> {
        let count = self.root.list_folders()?.len();
        let missing = name
            .parents()
            .iter()
            .chain(std::iter::once(name))
            .filter_map(|n| n.folder.as_deref())
            .filter(|f| !self.folder_exists(f))
            .count();
        if count + missing > MAX_FOLDERS {
            return Err(StoreError::Limit("too many mailboxes"));
        }
        for parent in name.parents() {
            if let Some(f) = &parent.folder
                && !self.folder_exists(f)
            {
                match self.root.create_folder(f) {
                    Ok(_) | Err(MaildirError::FolderExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        match &name.folder {
            None => Err(StoreError::AlreadyExists),
            Some(f) => self.root.create_folder(f).map(|_| ()).map_err(Into::into),
        }
    }

    /// CREATE.
    pub fn create(&self, name: &MailboxName) -> Result<(), StoreError> {
        self.make(name)
    }

    /// DELETE.
    pub fn delete(&self, name: &MailboxName) -> Result<(), StoreError> {
        let Some(folder) = &name.folder else {
            return Err(StoreError::Cannot("INBOX cannot be deleted"));
        };
        let children = self.has_children(folder)?;
        if !self.folder_exists(folder) {
            return Err(if children {
                StoreError::Cannot("the mailbox has children: delete them first")
            } else {
                StoreError::NonExistent
            });
        }
        if !children {
            return Ok(self.root.delete_folder(folder)?);
        }
        // The children keep their folders; this one's messages and directory go, and it
        // stays listed as \Noselect. Expunging one by one keeps maildirsize right.
        let md = self.root.folder(folder)?;
        for entry in md.list()? {
            match md.expunge(&entry.base) {
                Ok(_) | Err(MaildirError::MessageNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let trash = self.root.root().join(format!(
            "..moat-trash.imap.{}.{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::rename(md.path(), &trash)?;
        std::fs::remove_dir_all(&trash)?;
        Ok(())
    }

    /// RENAME.
    pub fn rename(&self, from: &MailboxName, to: &MailboxName) -> Result<(), StoreError> {
        let Some(to_folder) = &to.folder else {
            return Err(StoreError::AlreadyExists);
        };
        if self.folder_exists(to_folder) || self.has_children(to_folder)? {
            return Err(StoreError::AlreadyExists);
        }
        let Some(from_folder) = &from.folder else {
            return self.rename_inbox(to);
        };
        if to_folder.starts_with(&format!("{from_folder}.")) {
            return Err(StoreError::Cannot("a mailbox cannot be moved into itself"));
        }
        // No parent of `to` is `from` or below it (checked above), so none moves.
        for parent in to.parents() {
            if let Some(f) = &parent.folder
                && !self.folder_exists(f)
            {
                match self.root.create_folder(f) {
                    Ok(_) | Err(MaildirError::FolderExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(self.root.rename_folder(from_folder, to_folder)?)
    }

    /// RFC 3501: renaming INBOX moves its messages to the new mailbox; INBOX stays, empty.
    fn rename_inbox(&self, to: &MailboxName) -> Result<(), StoreError> {
        self.make(to)?;
        let target = self.maildir(to)?;
        for sub in [Subdir::New, Subdir::Cur] {
            let dir = self.root.subdir(sub);
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                let to_path = target.subdir(sub).join(entry.file_name());
                match std::fs::rename(entry.path(), to_path) {
                    Ok(()) => {}
                    // Expunged or moved by another session meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::name::parse;

    fn n(s: &str) -> MailboxName {
        parse(s.as_bytes()).expect(s)
    }

    fn names(store: &Store) -> Vec<(String, bool, bool)> {
        store
            .list()
            .expect("list")
            .into_iter()
            .map(|l| (l.name.imap, l.selectable, l.children))
            .collect()
    }

    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, created) =
            Store::open(dir.path(), &dir.path().join("Maildir"), &["Sent", "Trash"]).expect("open");
        assert_eq!(created, vec!["Sent", "Trash"]);
        (dir, store)
    }

    #[test]
    fn create_with_parents_and_list() {
        let (dir, store) = setup();
        let (_, again) =
            Store::open(dir.path(), &dir.path().join("Maildir"), &["Sent"]).expect("reopen");
        assert!(again.is_empty(), "created once");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("link")).expect("ln");
        assert!(Store::open(dir.path(), &dir.path().join("link/Maildir"), &[]).is_err());
        assert!(Store::open(&dir.path().join("gone"), &dir.path().join("gone/M"), &[]).is_err());
        assert!(
            !dir.path().join("gone").exists(),
            "a missing mail root is not made"
        );
        store.create(&n("a/b/c")).expect("create");
        assert!(matches!(
            store.create(&n("a/b")),
            Err(StoreError::AlreadyExists)
        ));
        assert!(matches!(
            store.create(&n("INBOX")),
            Err(StoreError::AlreadyExists)
        ));
        store.create(&n("INBOX/sub")).expect("child of INBOX");
        assert_eq!(
            names(&store),
            vec![
                ("INBOX".into(), true, true),
                ("INBOX/sub".into(), true, false),
                ("Sent".into(), true, false),
                ("Trash".into(), true, false),
                ("a".into(), true, true),
                ("a/b".into(), true, true),
                ("a/b/c".into(), true, false),
            ]
        );
    }

    #[test]
    fn delete_with_children_leaves_noselect() {
        let (_d, store) = setup();
        store.create(&n("a/b")).expect("create");
        store
            .maildir(&n("a"))
            .expect("a")
            .deliver(b"Subject: x\r\n\r\nx\r\n")
            .expect("deliver");
        assert!(matches!(
            store.delete(&n("INBOX")),
            Err(StoreError::Cannot(_))
        ));
        store.delete(&n("a")).expect("delete a");
        assert!(!store.exists(&n("a")));
        let listed = names(&store);
        assert!(listed.contains(&("a".into(), false, true)), "{listed:?}");
        assert!(matches!(store.delete(&n("a")), Err(StoreError::Cannot(_))));
        store.delete(&n("a/b")).expect("child");
        assert!(
            !names(&store)
                .iter()
                .any(|(name, _, _)| name.starts_with('a'))
        );
        assert!(matches!(
            store.delete(&n("nope")),
            Err(StoreError::NonExistent)
        ));
    }

    #[test]
    fn rename_moves_children_and_inbox_messages() {
        let (_d, store) = setup();
        store.create(&n("a/b")).expect("create");
        store.rename(&n("a"), &n("x/y")).expect("rename");
        let listed: Vec<String> = names(&store).into_iter().map(|l| l.0).collect();
        assert!(listed.contains(&"x/y/b".to_string()), "{listed:?}");
        assert!(!listed.contains(&"a".to_string()));
        assert!(matches!(
            store.rename(&n("x"), &n("Sent")),
            Err(StoreError::AlreadyExists)
        ));
        assert!(matches!(
            store.rename(&n("x"), &n("x/z")),
            Err(StoreError::Cannot(_))
        ));
        store.root().deliver(b"Subject: 1\r\n\r\n1\r\n").expect("1");
        store.root().deliver(b"Subject: 2\r\n\r\n2\r\n").expect("2");
        store.rename(&n("INBOX"), &n("Old")).expect("rename INBOX");
        assert_eq!(store.root().list().expect("inbox").len(), 0);
        assert_eq!(
            store
                .maildir(&n("Old"))
                .expect("old")
                .list()
                .expect("old")
                .len(),
            2
        );
        assert!(matches!(
            store.rename(&n("Old"), &n("INBOX")),
            Err(StoreError::AlreadyExists)
        ));
    }
}
