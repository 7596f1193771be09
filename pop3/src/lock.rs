//! One POP3 session per maildrop (RFC 1939 section 8, RFC 2449 `[IN-USE]`): an exclusive,
//! non-blocking `flock` on `moat-pop3.lock` in the Maildir, held for the whole session.
//!
//! SECURITY: the kernel releases an flock when its descriptor is closed, including when the
//! process is killed, so a crash never leaves a maildrop locked (no stale lock files to
//! guess about). IMAP sessions do not take this lock and may coexist, as in Dovecot; the
//! Maildir operations themselves are safe against concurrent readers and writers. The file is
//! opened with O_NOFOLLOW so a planted symlink cannot make us create a file elsewhere.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

/// The lock file's name inside the Maildir.
pub const LOCK_FILE: &str = "moat-pop3.lock";

/// A held lock; dropping it releases the maildrop.
#[derive(Debug)]
pub struct InUse {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another POP3 session holds it.
    Busy,
    Io(io::Error),
}

impl InUse {
    /// Takes the lock on the Maildir at `dir`, or says it is busy; never waits.
    pub fn try_lock(dir: &Path) -> Result<InUse, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(dir.join(LOCK_FILE))
            .map_err(LockError::Io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(InUse { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy),
            Err(e) => Err(LockError::Io(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = InUse::try_lock(dir.path()).expect("first");
        assert!(matches!(InUse::try_lock(dir.path()), Err(LockError::Busy)));
        drop(first);
        assert!(InUse::try_lock(dir.path()).is_ok());
    }

    #[test]
    fn refuses_a_symlinked_lock_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/tmp/elsewhere", dir.path().join(LOCK_FILE)).expect("ln");
        assert!(matches!(InUse::try_lock(dir.path()), Err(LockError::Io(_))));
    }
}
