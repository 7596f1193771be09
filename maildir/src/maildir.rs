//! The `Maildir` handle: one directory with `cur/`, `new/` and `tmp/` (the root mailbox, INBOX, or a
//! Maildir++ folder `.Name` under it), plus creation, opening and the tmp/ sweep.
//!
//! A handle is only a pair of paths; it holds no file descriptors and no state, so it is cheap to clone
//! and safe to use from several threads and processes at once. All coordination is through the file
//! system (unique names + atomic renames for messages, a lock for the UID list).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result, io_err};
use crate::fsutil::{fsync_dir, mkdir_0700};

/// Name of the marker file Courier puts in every Maildir++ folder (and that tells a deliverer the
/// quota file is one directory up).
pub const MAILDIRFOLDER_FILE: &str = "maildirfolder";

/// How old a tmp/ file must be before the sweep removes it (the Maildir spec's 36 hours).
pub const TMP_MAX_AGE: Duration = Duration::from_secs(36 * 3600);

/// One maildir directory. See the crate documentation for the on-disk layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildir {
    path: PathBuf,
    /// The Maildir++ root: where folders and `maildirsize` live. Equal to `path` for the root itself.
    root: PathBuf,
}

/// Which of the two message directories a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subdir {
    /// `new/`: delivered, not yet seen by a mail client, no flags.
    New,
    /// `cur/`: seen by a client; may have flags.
    Cur,
}

impl Subdir {
    /// The directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subdir::New => "new",
            Subdir::Cur => "cur",
        }
    }
}

impl Maildir {
    /// Creates `path` (and missing parents) with `cur/`, `new/`, `tmp/`, all mode 0700, and fsyncs what
    /// it created. Calling it on an existing Maildir is fine and changes nothing.
    pub fn create(path: impl AsRef<Path>) -> Result<Maildir> {
        let path = path.as_ref().to_path_buf();
        if !path.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .create(&path)
                .map_err(io_err("mkdir", &path))?;
            fs::set_permissions(
                &path,
                <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
            )
            .map_err(io_err("chmod", &path))?;
        }
        let mut created = false;
        for sub in ["cur", "new", "tmp"] {
            created |= mkdir_0700(&path.join(sub))?;
        }
        if created {
            fsync_dir(&path)?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        Maildir::open(path)
    }

    /// Opens an existing Maildir (root or folder). Fails with `NotAMaildir` if a subdirectory is missing.
    /// A directory containing a `maildirfolder` file is a Maildir++ folder, whose root is its parent.
    pub fn open(path: impl AsRef<Path>) -> Result<Maildir> {
        let path = path.as_ref().to_path_buf();
        for (sub, missing) in [("cur", "cur/"), ("new", "new/"), ("tmp", "tmp/")] {
            let p = path.join(sub);
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::NotAMaildir { path, missing }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NotAMaildir { path, missing });
                }
                Err(e) => return Err(io_err("stat", p)(e)),
            }
        }
        let root = if path.join(MAILDIRFOLDER_FILE).exists() {
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| path.clone())
        } else {
            path.clone()
        };
        Ok(Maildir { path, root })
    }

    /// A handle for a folder directory whose root is known (used by the folder module).
    pub(crate) fn with_root(path: PathBuf, root: PathBuf) -> Maildir {
        Maildir { path, root }
    }

    /// This maildir's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Maildir++ root this maildir belongs to (itself, for the root).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True for the root mailbox (INBOX), false for a folder.
    pub fn is_root(&self) -> bool {
        self.path == self.root
    }

    /// The path of `new/`, `cur/` or a file in them.
    pub fn subdir(&self, sub: Subdir) -> PathBuf {
        self.path.join(sub.as_str())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    /// Removes files in tmp/ not modified for `older_than` (use [`TMP_MAX_AGE`] for the Maildir spec's
    /// 36 hours). A tmp/ file is a delivery that never committed (the writer crashed or was killed), or a
    /// second name of a committed message left by a crash between link and unlink; both are safe to
    /// delete once no live writer can be using them. Returns how many files were removed.
    ///
    /// Age is the newer of mtime and ctime: a slow streaming delivery keeps updating mtime, so a live
    /// writer's file is never considered old.
    pub fn clean_tmp(&self, older_than: Duration) -> Result<usize> {
        let tmp = self.tmp_dir();
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err("readdir", &tmp))? {
            let entry = entry.map_err(io_err("readdir", &tmp))?;
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", path)(e)),
            };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(now);
            let ctime = ctime_of(&meta).unwrap_or(mtime);
            let newest = mtime.max(ctime);
            let age = now.duration_since(newest).unwrap_or(Duration::ZERO);
            if age >= older_than {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("unlink", path)(e)),
                }
            }
        }
        Ok(removed)
    }
}

fn ctime_of(meta: &fs::Metadata) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let secs = u64::try_from(meta.ctime()).ok()?;
    let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_is_idempotent_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("example.org/alice/Maildir");
        let md = Maildir::create(&path).expect("create");
        Maildir::create(&path).expect("create again");
        for sub in ["cur", "new", "tmp"] {
            let mode = fs::metadata(path.join(sub))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
        assert_eq!(
            fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
            0o700
        );
        assert!(md.is_root());
        assert_eq!(md.root(), path);
    }

    #[test]
    fn open_requires_all_subdirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("cur")).expect("cur");
        fs::create_dir(dir.path().join("new")).expect("new");
        let err = Maildir::open(dir.path()).expect_err("tmp missing");
        assert!(matches!(
            err,
            Error::NotAMaildir {
                missing: "tmp/",
                ..
            }
        ));
        fs::write(dir.path().join("tmp"), b"").expect("file named tmp");
        assert!(matches!(
            Maildir::open(dir.path()),
            Err(Error::NotAMaildir { .. })
        ));
    }

    #[test]
    fn clean_tmp_removes_only_old_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Maildir::create(dir.path()).expect("create");
        fs::write(md.tmp_dir().join("leftover"), b"partial").expect("write");
        assert_eq!(md.clean_tmp(TMP_MAX_AGE).expect("sweep"), 0);
        assert_eq!(md.clean_tmp(Duration::ZERO).expect("sweep"), 1);
        assert_eq!(fs::read_dir(md.tmp_dir()).expect("readdir").count(), 0);
    }
}
