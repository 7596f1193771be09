//! Maildir++ as Courier and Dovecot use it: lock-free delivery, listing, flags, folders, the
//! `maildirsize` quota and a Dovecot-compatible UID list. The one implementation of Maildir in Moat
//! (moat-local delivers with it, moat-imapd and moat-pop3d read with it).
//!
//! On-disk layout of one user (`mail/<domain>/<user>/Maildir`):
//! ```text
//! Maildir/                 the root: INBOX
//!   cur/ new/ tmp/         messages (tmp/: deliveries in progress)
//!   dovecot-uidlist        UIDVALIDITY, UIDNEXT, uid -> base name (Dovecot's v3 format)
//!   dovecot-uidlist.lock   dotlock held while the UID list is rewritten (Dovecot's name)
//!   moat-uidlist.flock     flock()ed while syncing, so Moat processes queue up (never removed)
//!   maildirsize            Maildir++ quota (only the root has one)
//!   .Work/                 a folder: cur/ new/ tmp/ maildirfolder dovecot-uidlist ...
//!   .Work.Projects/        a sub-folder (hierarchy is spelled with '.')
//! ```
//! Every message is addressed by its *base name*: the file name up to `:` (flags live after `:2,`).
//! See the module headers for the formats and the reasoning behind them.

#![deny(unsafe_code)]

mod deliver;
mod delivery;
mod error;
mod flags;
mod folder;
mod fsutil;
mod hint;
mod list;
mod lock;
mod maildir;
mod maildirsize;
mod name;
mod quota;
mod uidlist;
mod uidsync;

pub use deliver::DeliverOptions;
pub use delivery::Delivery;
pub use error::{Error, Result};
pub use flags::Flags;
pub use folder::validate_folder_name;
pub use fsutil::{fsync_dir, write_then_rename};
pub use list::Entry;
pub use lock::{DOTLOCK_FILE, FLOCK_FILE};
pub use maildir::{MAILDIRFOLDER_FILE, Maildir, Subdir, TMP_MAX_AGE};
pub use maildirsize::{Maildirsize, QuotaLimit, QuotaUsage};
pub use name::{DeliveryKey, delivery_order, local_hostname, size_field, split_info};
pub use quota::{MAILDIRSIZE_FILE, Quota, store_limit};
pub use uidlist::{UIDLIST_FILE, UidList, UidRecord};

/// What the unit tests of every module share.
#[cfg(test)]
mod test_support {
    use crate::Maildir;

    /// A fresh Maildir in a temporary folder (kept alive by the returned guard).
    pub(crate) fn setup() -> (tempfile::TempDir, Maildir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Maildir::create(dir.path().join("Maildir")).expect("create");
        (dir, md)
    }
}
