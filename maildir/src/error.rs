//! The crate's error type.
//!
//! Every variant names the file or the message it is about, because the callers (moat-local, moat-imapd)
//! log errors with the queue id and must be able to tell an admin *which* file on disk is wrong.
//! `Error::is_temporary` maps an error onto qmail's vocabulary (temporary vs permanent failure) so the
//! delivery agent does not have to match on variants it does not understand.

use std::io;
use std::path::PathBuf;

use crate::maildirsize::{QuotaLimit, QuotaUsage};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. New variants may be added, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation, e.g. "open", "rename", "fsync".
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory lacks `cur/`, `new/` or `tmp/`.
    #[error("{} is not a maildir (missing {missing})", path.display())]
    NotAMaildir {
        /// The directory that was opened.
        path: PathBuf,
        /// The missing part.
        missing: &'static str,
    },
    /// A folder name failed validation (path traversal, control characters, ...).
    #[error("invalid folder name {name:?}: {reason}")]
    InvalidFolderName {
        /// The rejected name (as given).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A message base name given by the caller is not a plain Maildir file name.
    #[error("invalid message name {0:?}")]
    InvalidMessageName(String),
    /// A flag letter is not A-Z or a-z.
    #[error("invalid flag {0:?}")]
    InvalidFlag(char),
    /// No message with this base name is in new/ or cur/ (it was expunged).
    #[error("message {0} not found")]
    MessageNotFound(String),
    /// The message kept moving while we tried to rename/unlink it.
    #[error("message {0} kept changing under us; giving up")]
    Contended(String),
    /// The folder does not exist.
    #[error("folder {0} not found")]
    FolderNotFound(String),
    /// The folder (or a rename target) already exists.
    #[error("folder {0} already exists")]
    FolderExists(String),
    /// The folder has sub-folders and cannot be deleted.
    #[error("folder {0} has sub-folders")]
    FolderHasChildren(String),
    /// A file that must not be overwritten already exists (a delivery name collision).
    #[error("{} already exists; refusing to overwrite", path.display())]
    Collision {
        /// The existing file.
        path: PathBuf,
    },
    /// Delivering `needed` more bytes would exceed the quota. A temporary failure for SMTP.
    #[error("over quota: {} bytes/{} messages used, limit {} bytes/{} messages, delivery needs {needed} bytes",
        usage.bytes, usage.messages, limit.bytes, limit.messages)]
    OverQuota {
        /// Size of the message being delivered.
        needed: u64,
        /// Usage before this delivery.
        usage: QuotaUsage,
        /// The limit that would be exceeded.
        limit: QuotaLimit,
    },
    /// A file we parse (dovecot-uidlist, maildirsize) is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the whole file is at fault).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A lock could not be taken within the timeout.
    #[error("timed out waiting for lock {}", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
    },
}

impl Error {
    /// True when retrying later may succeed (qmail's "temporary failure", SMTP 4xx): I/O errors,
    /// over-quota, lock timeouts, contention. False for caller mistakes (bad names) and missing things.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::OverQuota { .. }
            | Error::LockTimeout { .. }
            | Error::Contended(_)
            | Error::Collision { .. }
            | Error::Corrupt { .. }
            | Error::NotAMaildir { .. } => true,
            Error::InvalidFolderName { .. }
            | Error::InvalidMessageName(_)
            | Error::InvalidFlag(_)
            | Error::MessageNotFound(_)
            | Error::FolderNotFound(_)
            | Error::FolderExists(_)
            | Error::FolderHasChildren(_) => false,
        }
    }

    /// The underlying OS error kind, when there is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// Builds a closure that wraps an `io::Error` with the operation and path, for `map_err`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
