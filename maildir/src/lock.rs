//! The lock that serialises UID list rewrites.
//!
//! Two layers, taken in this order and released in reverse:
//!
//! 1. `flock(LOCK_EX)` on `moat-uidlist.flock` (created once, never removed). It queues Moat processes
//!    and threads against each other, and the kernel drops it when a holder dies, even by SIGKILL, so
//!    Moat never waits for a stale lock of its own making.
//! 2. Dovecot's dotlock `dovecot-uidlist.lock`: created with O_EXCL, containing `<pid>:<host>`, removed on
//!    release. This is what a Dovecot running on the same Maildir (during a migration, or a site that
//!    keeps Dovecot for IMAP) waits on, so Moat and Dovecot never rewrite the list at the same time.
//!    Because every Moat process holds the flock before touching the dotlock, an existing dotlock is
//!    either Dovecot's or left by a Moat process that died; it is overridden like Dovecot does: at once if
//!    it names a dead pid on this host, otherwise once neither it nor `dovecot-uidlist` changed for
//!    120 seconds (Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT).
//!
//! Readers take neither lock: the list is replaced by rename, so a reader sees a complete old or new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

use crate::error::{Error, Result, io_err};
use crate::name::local_hostname;

/// The flock file Moat processes queue on.
pub const FLOCK_FILE: &str = "moat-uidlist.flock";
/// Dovecot's dotlock for the UID list.
pub const DOTLOCK_FILE: &str = "dovecot-uidlist.lock";
/// A dotlock untouched for this long (together with the list) is considered stale.
const DOTLOCK_STALE: Duration = Duration::from_secs(120);

/// Held while the UID list may be rewritten; releases both locks on drop.
#[derive(Debug)]
pub(crate) struct UidListLock {
    _flock: File,
    dotlock: PathBuf,
    dotlock_ino: u64,
}

impl UidListLock {
    /// Takes both locks in `dir` (the maildir), waiting at most `timeout` in total.
    pub(crate) fn acquire(dir: &Path, watched: &Path, timeout: Duration) -> Result<UidListLock> {
        let deadline = Instant::now() + timeout;
        let flock_path = dir.join(FLOCK_FILE);
        let flock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&flock_path)
            .map_err(io_err("open", &flock_path))?;
        let mut pause = Duration::from_micros(200);
        loop {
            match flock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(io_err("flock", &flock_path)(e)),
            }
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout { path: flock_path });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }

        let dotlock = dir.join(DOTLOCK_FILE);
        let mut pause = Duration::from_millis(5);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&dotlock)
            {
                Ok(mut f) => {
                    // Dovecot's format, so a Dovecot waiting on us can check whether we are alive.
                    let content = format!("{}:{}", std::process::id(), local_hostname());
                    let written = f.write_all(content.as_bytes());
                    let ino = f.metadata().map(|m| m.ino());
                    match (written, ino) {
                        (Ok(()), Ok(ino)) => {
                            return Ok(UidListLock {
                                _flock: flock,
                                dotlock,
                                dotlock_ino: ino,
                            });
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = fs::remove_file(&dotlock);
                            return Err(io_err("write", &dotlock)(e));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if dotlock_is_stale(&dotlock, watched)? {
                        let _ = fs::remove_file(&dotlock);
                        continue;
                    }
                }
                Err(e) => return Err(io_err("create", &dotlock)(e)),
            }
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout { path: dotlock });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

impl Drop for UidListLock {
    fn drop(&mut self) {
        // Remove the dotlock only if it is still ours (not overridden as stale by Dovecot meanwhile).
        if fs::symlink_metadata(&self.dotlock).is_ok_and(|m| m.ino() == self.dotlock_ino) {
            let _ = fs::remove_file(&self.dotlock);
        }
        // The flock is released when `_flock` is closed.
    }
}

/// Dovecot's staleness rules, see the module header.
fn dotlock_is_stale(dotlock: &Path, watched: &Path) -> Result<bool> {
    let meta = match fs::symlink_metadata(dotlock) {
        Ok(m) => m,
        // Gone already: not stale, just retry the create.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("stat", dotlock)(e)),
    };
    if let Some(pid) = local_pid(dotlock) {
        if pid == std::process::id() {
            // Our pid but we hold the flock, so no live holder in this process made it: left over.
            return Ok(true);
        }
        let alive = Pid::from_raw(i32::try_from(pid).unwrap_or(-1))
            .is_none_or(|p| !matches!(test_kill_process(p), Err(Errno::SRCH)));
        if !alive {
            return Ok(true);
        }
    }
    let now = SystemTime::now();
    let age = |t: Option<SystemTime>| {
        t.and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO)
    };
    let lock_age = age(meta.modified().ok());
    let list_age = fs::metadata(watched)
        .ok()
        .map(|m| age(m.modified().ok()))
        .unwrap_or(lock_age);
    Ok(lock_age > DOTLOCK_STALE && list_age > DOTLOCK_STALE)
}

/// The pid in a dotlock if it was written on this host.
fn local_pid(dotlock: &Path) -> Option<u32> {
    let content = fs::read_to_string(dotlock).ok()?;
    let (pid, host) = content.trim_end().split_once(':')?;
    if host != local_hostname() {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn lock_writes_dovecot_dotlock_and_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("dovecot-uidlist");
        {
            let _lock =
                UidListLock::acquire(dir.path(), &watched, Duration::from_secs(5)).expect("lock");
            let content = fs::read_to_string(dir.path().join(DOTLOCK_FILE)).expect("dotlock");
            assert_eq!(
                content,
                format!("{}:{}", std::process::id(), local_hostname())
            );
        }
        assert!(!dir.path().join(DOTLOCK_FILE).exists());
        assert!(dir.path().join(FLOCK_FILE).exists());
    }

    #[test]
    fn lock_excludes_other_threads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Arc::new(dir.path().to_path_buf());
        let inside = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside, barrier) =
                    (Arc::clone(&path), Arc::clone(&inside), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..20 {
                        let _l =
                            UidListLock::acquire(&path, &path.join("x"), Duration::from_secs(30))
                                .expect("lock");
                        assert_eq!(
                            inside.fetch_add(1, Ordering::SeqCst),
                            0,
                            "two holders at once"
                        );
                        thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
    }

    #[test]
    fn dead_pid_dotlock_is_overridden_live_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("dovecot-uidlist");
        let dotlock = dir.path().join(DOTLOCK_FILE);
        // A pid that cannot exist (above pid_max) on this host: dead.
        fs::write(&dotlock, format!("2147483646:{}", local_hostname())).expect("write");
        drop(
            UidListLock::acquire(dir.path(), &watched, Duration::from_secs(5))
                .expect("override dead"),
        );
        // pid 1 is alive: a fresh lock held by it must make us time out.
        fs::write(&dotlock, format!("1:{}", local_hostname())).expect("write");
        let err = UidListLock::acquire(dir.path(), &watched, Duration::from_millis(200))
            .expect_err("live");
        assert!(matches!(err, Error::LockTimeout { .. }));
        // Another host's lock that is old (and the list too) is stale.
        fs::write(&dotlock, "1:elsewhere.example").expect("write");
        let old = SystemTime::now() - Duration::from_secs(600);
        File::options()
            .write(true)
            .open(&dotlock)
            .expect("open")
            .set_modified(old)
            .expect("mtime");
        drop(
            UidListLock::acquire(dir.path(), &watched, Duration::from_secs(5))
                .expect("override old"),
        );
        // Garbage content from this host with a fresh mtime: waited on, never a panic.
        fs::write(&dotlock, b"\xff\xfe not a pid").expect("write");
        assert!(UidListLock::acquire(dir.path(), &watched, Duration::from_millis(100)).is_err());
    }
}
