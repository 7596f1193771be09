//! Maildir++ folders: `.Name` directories directly under the root, hierarchy spelled with `.`
//! (`.Work.Projects` is the folder `Work.Projects`, a child of `Work`). Each folder is itself a maildir
//! with a `maildirfolder` marker file, as Courier and Dovecot create them.
//!
//! Names are validated here because they become path components: no `/`, no NUL or other control
//! characters, no empty component (which rules out a leading or trailing `.` and `..`), at most 254
//! bytes. Turning IMAP mailbox names (modified UTF-7, the client's hierarchy separator, INBOX) into
//! these names is the IMAP layer's business.
//!
//! Deleting renames the folder to `..moat-trash.<unique>` first (one atomic step that makes it vanish
//! from every listing, the way Dovecot uses `..DOVECOT-TRASH`), then removes the tree; a crash midway
//! leaves only an invisible `..`-directory.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};
use crate::fsutil::{fsync_dir, mkdir_0700, rename_dir_no_replace};
use crate::maildir::{MAILDIRFOLDER_FILE, Maildir};
use crate::name::{is_message_file_name, size_field, split_info, unique_tmp_name};
use crate::quota::append_delta;

/// Longest folder name: the directory name `.` + name must fit in 255 bytes.
const MAX_NAME_LEN: usize = 254;
/// Prefix of folders being deleted (never listed: Maildir++ folder names cannot start with `.`).
const TRASH_PREFIX: &str = "..moat-trash.";

/// Checks a Maildir++ folder name such as `Work.Projects`.
pub fn validate_folder_name(name: &str) -> Result<()> {
    let reject = |reason| {
        Err(Error::InvalidFolderName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return reject("longer than 254 bytes");
    }
    if name.contains('/') {
        return reject("contains '/'");
    }
    if name.chars().any(char::is_control) {
        return reject("contains a control character");
    }
    if name.split('.').any(str::is_empty) {
        return reject("empty hierarchy component (leading, trailing or doubled '.')");
    }
    Ok(())
}

/// Lists `(name, path)` of the folder directories under `root`, sorted by name. Entries that are not
/// directories or whose names are not valid folder names are skipped.
pub(crate) fn folder_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err("readdir", root))? {
        let entry = entry.map_err(io_err("readdir", root))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        if validate_folder_name(name).is_err() {
            continue;
        }
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            out.push((name.to_owned(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Maildir {
    fn folder_path(&self, name: &str) -> PathBuf {
        self.root().join(format!(".{name}"))
    }

    /// Creates a folder (as a maildir with a `maildirfolder` marker) and returns its handle.
    /// `FolderExists` if it is already complete; a half-created folder (crash) is completed.
    pub fn create_folder(&self, name: &str) -> Result<Maildir> {
        validate_folder_name(name)?;
        let path = self.folder_path(name);
        let fresh = mkdir_0700(&path)?;
        let marker = path.join(MAILDIRFOLDER_FILE);
        if !fresh && marker.exists() && Maildir::open(&path).is_ok() {
            return Err(Error::FolderExists(name.to_owned()));
        }
        for sub in ["cur", "new", "tmp"] {
            mkdir_0700(&path.join(sub))?;
        }
        File::create(&marker).map_err(io_err("create", &marker))?;
        fsync_dir(&path)?;
        fsync_dir(self.root())?;
        Ok(Maildir::with_root(path, self.root().to_path_buf()))
    }

    /// Opens an existing folder.
    pub fn folder(&self, name: &str) -> Result<Maildir> {
        validate_folder_name(name)?;
        let path = self.folder_path(name);
        match Maildir::open(&path) {
            Ok(_) => Ok(Maildir::with_root(path, self.root().to_path_buf())),
            Err(Error::NotAMaildir { .. }) if !path.exists() => {
                Err(Error::FolderNotFound(name.to_owned()))
            }
            Err(e) => Err(e),
        }
    }

    /// Names of all folders under the root, sorted (the root mailbox itself is not included).
    pub fn list_folders(&self) -> Result<Vec<String>> {
        Ok(folder_dirs(self.root())?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Renames a folder and all its sub-folders (`Work` → `Job` also moves `Work.Projects` to
    /// `Job.Projects`). Fails without changing anything if any target exists or if `to` is inside `from`.
    /// Not atomic across sub-folders: a crash midway leaves some moved, none lost.
    pub fn rename_folder(&self, from: &str, to: &str) -> Result<()> {
        validate_folder_name(from)?;
        validate_folder_name(to)?;
        if from == to || to.starts_with(&format!("{from}.")) {
            return Err(Error::InvalidFolderName {
                name: to.to_owned(),
                reason: "cannot move a folder into itself",
            });
        }
        let prefix = format!("{from}.");
        let moves: Vec<(String, String)> = self
            .list_folders()?
            .into_iter()
            .filter(|n| n == from || n.starts_with(&prefix))
            .map(|n| {
                let target = format!("{to}{}", &n[from.len()..]);
                (n, target)
            })
            .collect();
        if moves.is_empty() {
            return Err(Error::FolderNotFound(from.to_owned()));
        }
        for (_, target) in &moves {
            validate_folder_name(target)?;
            if fs::symlink_metadata(self.folder_path(target)).is_ok() {
                return Err(Error::FolderExists(target.clone()));
            }
        }
        for (source, target) in &moves {
            match rename_dir_no_replace(&self.folder_path(source), &self.folder_path(target)) {
                Ok(()) => {}
                Err(Error::Collision { .. }) => return Err(Error::FolderExists(target.clone())),
                Err(e) => return Err(e),
            }
        }
        fsync_dir(self.root())
    }

    /// Deletes a folder and its messages. Refuses (`FolderHasChildren`) if it has sub-folders: delete
    /// those first. Updates maildirsize if it exists.
    pub fn delete_folder(&self, name: &str) -> Result<()> {
        validate_folder_name(name)?;
        let path = self.folder_path(name);
        if fs::symlink_metadata(&path).is_err() {
            return Err(Error::FolderNotFound(name.to_owned()));
        }
        let prefix = format!("{name}.");
        if self.list_folders()?.iter().any(|n| n.starts_with(&prefix)) {
            return Err(Error::FolderHasChildren(name.to_owned()));
        }
        let trash = self
            .root()
            .join(format!("{TRASH_PREFIX}{}", unique_tmp_name()));
        match fs::rename(&path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::FolderNotFound(name.to_owned()));
            }
            Err(e) => return Err(io_err("rename", &path)(e)),
        }
        fsync_dir(self.root())?;
        let (bytes, count) = dir_usage(&trash);
        fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
        if count > 0 {
            let _ = append_delta(self.root(), -bytes, -count);
        }
        Ok(())
    }

    /// Removes leftovers of folder deletions interrupted by a crash. Returns how many were removed.
    pub fn clean_deleted_folders(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root()).map_err(io_err("readdir", self.root()))? {
            let entry = entry.map_err(io_err("readdir", self.root()))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TRASH_PREFIX))
            {
                fs::remove_dir_all(entry.path()).map_err(io_err("remove", entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Bytes and message count in a maildir's new/ and cur/ (best effort, for the quota delta).
fn dir_usage(dir: &Path) -> (i64, i64) {
    let (mut bytes, mut count) = (0i64, 0i64);
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| is_message_file_name(n)) else {
                continue;
            };
            let size = size_field(split_info(name).0, 'S')
                .or_else(|| entry.metadata().ok().map(|m| m.len()))
                .unwrap_or(0);
            bytes = bytes.saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
            count += 1;
        }
    }
    (bytes, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildirsize::{QuotaLimit, QuotaUsage};
    use crate::quota::Quota;

    use crate::test_support::setup;

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "x/..",
            "/",
            "/etc",
            "a/b",
            ".Work",
            "Work.",
            "Work..Sub",
            "a\0b",
            "a\nb",
            "\u{7f}",
            "tab\there",
            "..DOVECOT-TRASH",
        ] {
            assert!(
                matches!(
                    validate_folder_name(bad),
                    Err(Error::InvalidFolderName { .. })
                ),
                "{bad:?} accepted"
            );
        }
        assert!(validate_folder_name(&"x".repeat(255)).is_err());
        for good in [
            "Work",
            "Work.Projects",
            "Sent Items",
            "&AOQ-rger",
            "a:b",
            "x".repeat(254).as_str(),
        ] {
            validate_folder_name(good).expect(good);
        }
    }

    #[test]
    fn hostile_names_touch_nothing_outside() {
        let (dir, md) = setup();
        for bad in ["../escape", "/abs", "a/../../b", "x\0y"] {
            assert!(md.create_folder(bad).is_err());
            assert!(md.folder(bad).is_err());
            assert!(md.delete_folder(bad).is_err());
            assert!(md.rename_folder("Work", bad).is_err());
        }
        let top: Vec<_> = fs::read_dir(dir.path()).expect("readdir").collect();
        assert_eq!(top.len(), 1, "only the Maildir itself");
    }

    #[test]
    fn create_list_open() {
        let (_d, md) = setup();
        let work = md.create_folder("Work").expect("create");
        md.create_folder("Work.Projects").expect("create nested");
        assert!(work.path().join(MAILDIRFOLDER_FILE).is_file());
        assert!(!work.is_root());
        assert_eq!(work.root(), md.path());
        assert!(matches!(
            md.create_folder("Work"),
            Err(Error::FolderExists(_))
        ));
        assert_eq!(
            md.list_folders().expect("list"),
            vec!["Work", "Work.Projects"]
        );
        // Opening a folder path directly finds its root through the marker file.
        let direct = Maildir::open(md.path().join(".Work.Projects")).expect("open");
        assert_eq!(direct.root(), md.path());
        assert!(matches!(md.folder("Nope"), Err(Error::FolderNotFound(_))));
        // Files and invalid names in the root are not folders.
        fs::write(md.path().join(".notafolder"), b"").expect("file");
        fs::create_dir(md.path().join("..hidden")).expect("dir");
        assert_eq!(
            md.list_folders().expect("list"),
            vec!["Work", "Work.Projects"]
        );
    }

    #[test]
    fn half_created_folder_is_completed() {
        let (_d, md) = setup();
        fs::create_dir(md.path().join(".Half")).expect("mkdir");
        fs::create_dir(md.path().join(".Half/cur")).expect("mkdir");
        let half = md.create_folder("Half").expect("complete it");
        Maildir::open(half.path()).expect("now a maildir");
    }

    #[test]
    fn rename_moves_children_and_keeps_mail() {
        let (_d, md) = setup();
        md.create_folder("Work").expect("create");
        let sub = md.create_folder("Work.Projects").expect("create");
        md.create_folder("Workshop")
            .expect("similar prefix must not move");
        let base = sub.deliver(b"hello").expect("deliver");
        md.rename_folder("Work", "Job").expect("rename");
        assert_eq!(
            md.list_folders().expect("list"),
            vec!["Job", "Job.Projects", "Workshop"]
        );
        assert_eq!(
            md.folder("Job.Projects")
                .expect("open")
                .read(&base)
                .expect("read"),
            b"hello"
        );
        assert!(matches!(
            md.rename_folder("Job", "Job.Inner"),
            Err(Error::InvalidFolderName { .. })
        ));
        assert!(matches!(
            md.rename_folder("Job", "Workshop"),
            Err(Error::FolderExists(_))
        ));
        assert!(matches!(
            md.rename_folder("Nope", "Other"),
            Err(Error::FolderNotFound(_))
        ));
        md.create_folder("Other.Projects").expect("create");
        assert!(matches!(
            md.rename_folder("Job", "Other"),
            Err(Error::FolderExists(_))
        ));
        assert_eq!(
            md.list_folders().expect("list"),
            vec!["Job", "Job.Projects", "Other.Projects", "Workshop"]
        );
    }

    #[test]
    fn delete_refuses_parents_and_updates_quota() {
        let (_d, md) = setup();
        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 1000,
                messages: 0,
            },
        );
        quota.usage().expect("init quota file");
        let work = md.create_folder("Work").expect("create");
        md.create_folder("Work.Sub").expect("create");
        work.deliver(&[b'x'; 40]).expect("deliver");
        md.deliver(&[b'y'; 5]).expect("deliver");
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 45,
                messages: 2
            }
        );
        assert!(matches!(
            md.delete_folder("Work"),
            Err(Error::FolderHasChildren(_))
        ));
        md.delete_folder("Work.Sub").expect("delete child");
        md.delete_folder("Work").expect("delete");
        assert!(md.list_folders().expect("list").is_empty());
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 5,
                messages: 1
            }
        );
        assert!(matches!(
            md.delete_folder("Work"),
            Err(Error::FolderNotFound(_))
        ));
        assert_eq!(md.clean_deleted_folders().expect("clean"), 0);
    }
}
