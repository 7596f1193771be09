//! The flock on `moat-index.lock` that serialises the writers of one folder's index (readers
//! never take it). flock, not a dotlock: the kernel releases it when a holder dies, even by
//! SIGKILL, so no stale lock is ever left behind. Two handles in one process exclude each other
//! too, because each opens the file itself (a flock belongs to the open file description).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use moat_maildir::{Error, Result};

use super::disk::{LOCK_FILE, io_err};

/// How long a writer waits for the lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Held while the index files are written; released when dropped (and by the kernel on exit).
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    pub(crate) fn acquire(dir: &Path) -> Result<Lock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_micros(100);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(io_err("flock", &path)(e)),
            }
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout { path });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_waits_for_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = Lock::acquire(dir.path()).expect("lock");
        let path = dir.path().to_owned();
        let waiter = thread::spawn(move || {
            let t = Instant::now();
            drop(Lock::acquire(&path).expect("lock after release"));
            t.elapsed()
        });
        thread::sleep(Duration::from_millis(100));
        drop(held);
        assert!(waiter.join().expect("thread") >= Duration::from_millis(90));
    }
}
