//! Tests of the index with real Maildirs in temporary folders, delivered to with the maildir
//! crate: one file per theme.

mod big;
mod blobs;
mod concurrent;
mod flags;
mod recovery;
mod sync;

use std::cell::Cell;
use std::fs::File;
use std::time::{Duration, SystemTime};

use moat_maildir::{Maildir, Subdir};

use super::blob::MESSAGE_READS;

/// A fresh Maildir (kept alive by the guard).
pub(super) fn setup() -> (tempfile::TempDir, Maildir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path().join("Maildir")).expect("create");
    (dir, md)
}

/// A parser that counts its calls and returns a recognisable blob.
pub(super) fn counting_parser(calls: &Cell<usize>) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |bytes: &[u8]| {
        calls.set(calls.get() + 1);
        let mut out = b"BLOB:".to_vec();
        out.extend_from_slice(&bytes[..bytes.len().min(16)]);
        out
    }
}

/// Message files opened by the index in this thread so far.
pub(super) fn message_reads() -> usize {
    MESSAGE_READS.with(Cell::get)
}

/// Sets the mtimes of new/ and cur/ into the past, as if the folder had been quiet for a while
/// (stamps taken now are stable, so an unchanged folder is not even listed).
pub(super) fn age_dirs(md: &Maildir) {
    let past = SystemTime::now() - Duration::from_secs(60);
    for sub in [Subdir::New, Subdir::Cur] {
        File::open(md.subdir(sub))
            .expect("open dir")
            .set_modified(past)
            .expect("set dir mtime");
    }
}
