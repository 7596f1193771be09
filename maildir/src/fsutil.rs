//! Small file-system helpers shared by the modules: directory fsync, atomic replace, no-overwrite
//! commit, directory creation with Maildir's 0700 mode.
//!
//! Durability rule (ARCHITECTURE.md, "The queue's promise"): a file is durable once its data is fsynced
//! *and* the directory holding its final name is fsynced. Everything that commits by rename goes
//! through `commit_no_replace` or `replace_file` so that rule lives in one place.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{CWD, RenameFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, io_err};

/// fsync a directory, making the names created/renamed in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(io_err("open", dir))?;
    f.sync_all().map_err(io_err("fsync", dir))
}

/// Creates a directory with mode 0700; an existing directory is fine (idempotent).
pub(crate) fn mkdir_0700(path: &Path) -> Result<bool> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::metadata(path).map_err(io_err("stat", path))?;
            if meta.is_dir() {
                Ok(false)
            } else {
                Err(Error::Io {
                    op: "mkdir",
                    path: path.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ),
                })
            }
        }
        Err(e) => Err(io_err("mkdir", path)(e)),
    }
}

/// Moves `from` to `to` without ever replacing an existing `to`.
///
/// Prefers `renameat2(RENAME_NOREPLACE)`: one atomic metadata operation that fails if `to` exists
/// (ext4, xfs, btrfs, tmpfs). Where the file system does not support it (NFS, some FUSE), falls back to
/// qmail's `link()` + `unlink()`, and as a last resort (no hard links either) to a checked `rename()`,
/// where only a narrow race remains. Returns `Err(Error::Collision)` when `to` exists; `from` is left in
/// place on error.
pub(crate) fn commit_no_replace(from: &Path, to: &Path) -> Result<()> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(Errno::EXIST) => {
            return Err(Error::Collision {
                path: to.to_owned(),
            });
        }
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
        Err(e) => return Err(io_err("rename", to)(e.into())),
    }
    match fs::hard_link(from, to) {
        Ok(()) => {
            // The message is committed; a failed unlink only leaves a second name in tmp/ that the
            // 36-hour sweep removes, so it is not an error.
            let _ = fs::remove_file(from);
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::Collision {
                path: to.to_owned(),
            });
        }
        Err(e) if !link_unsupported(&e) => return Err(io_err("link", to)(e)),
        Err(_) => {}
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(Error::Collision {
            path: to.to_owned(),
        });
    }
    fs::rename(from, to).map_err(io_err("rename", to))
}

fn link_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::PERM | Errno::OPNOTSUPP | Errno::NOSYS | Errno::XDEV | Errno::MLINK)
    )
}

/// Renames a directory without replacing an existing target (folder rename).
pub(crate) fn rename_dir_no_replace(from: &Path, to: &Path) -> Result<()> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST | Errno::NOTEMPTY) => Err(Error::Collision {
            path: to.to_owned(),
        }),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(Error::Collision {
                    path: to.to_owned(),
                });
            }
            fs::rename(from, to).map_err(io_err("rename", from))
        }
        Err(e) => Err(io_err("rename", from)(e.into())),
    }
}

/// Atomically replaces `dir/name` with `contents`: write `dir/tmp_name` (truncating any leftover),
/// fdatasync, rename over, fsync `dir`. Readers see the old or the new file, never a mix.
pub(crate) fn replace_file(dir: &Path, tmp_name: &str, name: &str, contents: &[u8]) -> Result<()> {
    write_then_rename(dir, tmp_name, name, contents)?;
    fsync_dir(dir)
}

/// `replace_file` without the directory fsync, for callers that replace several files and
/// fsync the directory once. The temp file is removed if any step fails.
pub fn write_then_rename(dir: &Path, tmp_name: &str, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(tmp_name);
    let dst = dir.join(name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("open", &tmp))?;
        f.write_all(contents).map_err(io_err("write", &tmp))?;
        f.sync_data().map_err(io_err("fdatasync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole file, mapping "not found" to `None`.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"new").expect("write a");
        fs::write(&b, b"old").expect("write b");
        let err = commit_no_replace(&a, &b).expect_err("must not overwrite");
        assert!(matches!(err, Error::Collision { .. }));
        assert_eq!(fs::read(&b).expect("read b"), b"old");
        assert!(a.exists(), "source stays on error");
        fs::remove_file(&b).expect("rm b");
        commit_no_replace(&a, &b).expect("commit");
        assert!(!a.exists());
        assert_eq!(fs::read(&b).expect("read b"), b"new");
    }

    #[test]
    fn replace_is_atomic_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        replace_file(dir.path(), "f.tmp", "f", b"one").expect("first");
        replace_file(dir.path(), "f.tmp", "f", b"two").expect("second");
        assert_eq!(fs::read(dir.path().join("f")).expect("read"), b"two");
        assert!(!dir.path().join("f.tmp").exists());
    }

    #[test]
    fn mkdir_is_idempotent_but_not_over_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("d");
        assert!(mkdir_0700(&d).expect("create"));
        assert!(!mkdir_0700(&d).expect("again"));
        let f = dir.path().join("f");
        fs::write(&f, b"").expect("file");
        assert!(mkdir_0700(&f).is_err());
    }
}
