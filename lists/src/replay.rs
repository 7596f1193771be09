//! Replay records: what moat-lists already did for one queued message, so a delivery the queue
//! repeats (its wait for moat-local timed out after moat-lists had injected the post, or a crash
//! between the injection and the `K`) is answered `K` without a second copy to every member.
//!
//! Layout: `<data_dir>/<list@domain>/done/<key>`, one short line: `post N` (a post distributed
//! or archived as number N) or `held ID` (a post held for moderation). The key is the queue id
//! of the post (`moat_common::client::check_queue_id`: ASCII letters and digits) or
//! `accept-ID` for a held post a moderator accepted. A record is written to `done/.tmp-<key>`,
//! fsynced, renamed and the folder fsynced: a crash leaves the whole record or none. Records
//! older than `MAX_AGE_SECS` (longer than the queue keeps a message, 5 days by default) are
//! removed by `sweep`, at start and hourly (server.rs).
//!
//! While a key is being handled it is also held in memory (`Busy`), so a repeat that arrives
//! while the first delivery still runs waits in the queue (`Z`) instead of sending again.
//!
//! SECURITY: the key and the list address are checked again before they name a file; a record
//! is read at most `MAX_RECORD` bytes; the sweep looks at no more than `MAX_SCAN` entries of a
//! folder.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use moat_common::client::check_queue_id;

/// How long a record is kept: past the queue's lifetime of a message (5 days by default).
pub const MAX_AGE_SECS: u64 = 7 * 86_400;
/// The most bytes of a record read.
const MAX_RECORD: u64 = 128;
/// The most entries of one `done/` folder the sweep looks at, and the most list folders.
const MAX_SCAN: usize = 200_000;
/// The most keys in flight at once (requests are far fewer: `server::MAX_CONNECTIONS`).
const MAX_BUSY: usize = 10_000;

static BUSY: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);

/// A key being handled in this process; released when dropped.
#[derive(Debug)]
pub struct Busy {
    key: (String, String),
}

impl Busy {
    /// Marks (`list`, `key`) in flight, or `None` when it already is (or too many are).
    pub fn take(list: &str, key: &str) -> Option<Busy> {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        let set = busy.get_or_insert_with(HashSet::new);
        let k = (list.to_ascii_lowercase(), key.to_string());
        if set.len() >= MAX_BUSY || !set.insert(k.clone()) {
            return None;
        }
        Some(Busy { key: k })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = busy.as_mut() {
            set.remove(&self.key);
        }
    }
}

/// The key of an accepted held post.
pub fn accept_key(held_id: &str) -> String {
    format!("accept-{held_id}")
}

/// Whether `key` is a queue id or `accept-` and a queue-id-like tail: safe as a file name.
fn check_key(key: &str) -> io::Result<()> {
    let tail = key.strip_prefix("accept-").unwrap_or(key);
    check_queue_id(tail).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// `<data_dir>/<list>/done` (`context::list_folder` checks the list address again).
fn done_dir(data_dir: &Path, list: &str) -> io::Result<PathBuf> {
    Ok(crate::context::list_folder(data_dir, list)?.join("done"))
}

/// The record for `key` on `list`, if there is one (`post N`, `held ID`).
pub fn lookup(data_dir: &Path, list: &str, key: &str) -> io::Result<Option<String>> {
    check_key(key)?;
    let path = done_dir(data_dir, list)?.join(key);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_RECORD).read_to_string(&mut text)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(io::Error::other(format!(
            "{}: empty record",
            path.display()
        )));
    }
    Ok(Some(text.to_string()))
}

/// Records `what` (`post N`, `held ID`) for `key` on `list`, durably.
pub fn record(data_dir: &Path, list: &str, key: &str, what: &str) -> io::Result<()> {
    check_key(key)?;
    if what.len() as u64 >= MAX_RECORD || what.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad record {what:?}"),
        ));
    }
    let dir = done_dir(data_dir, list)?;
    if !dir.is_dir() {
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        if let Some(list_dir) = dir.parent() {
            fsync_dir(list_dir)?;
        }
        fsync_dir(data_dir)?;
    }
    let tmp = dir.join(format!(".tmp-{key}"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{what}\n").as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(key))?;
    fsync_dir(&dir)
}

/// Removes the records (and left-over temporary files) older than `max_age` at `now` of
/// every list: how many were removed, and the problems met.
pub fn sweep(data_dir: &Path, now: u64, max_age: u64) -> (usize, Vec<String>) {
    let mut removed = 0;
    let mut problems = Vec::new();
    let lists = match fs::read_dir(data_dir) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("{}: {e}", data_dir.display()));
            return (0, problems);
        }
    };
    for entry in lists.flatten().take(MAX_SCAN) {
        let Some(list) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(dir) = done_dir(data_dir, &list) else {
            continue;
        };
        let records = match fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        for rec in records.flatten().take(MAX_SCAN) {
            let name = rec.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if check_key(name.strip_prefix(".tmp-").unwrap_or(name)).is_err() {
                continue;
            }
            let Ok(modified) = rec.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            let at = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now.saturating_sub(at) < max_age {
                continue;
            }
            match fs::remove_file(rec.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("{}: {e}", rec.path().display())),
            }
        }
    }
    (removed, problems)
}

/// Makes a directory's entries durable.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_then_lookup() {
        let d = tempfile::tempdir().expect("tempdir");
        let list = "dev@x.test";
        assert_eq!(lookup(d.path(), list, "ABC123").expect("lookup"), None);
        record(d.path(), list, "ABC123", "post 7").expect("record");
        assert_eq!(
            lookup(d.path(), list, "ABC123").expect("lookup").as_deref(),
            Some("post 7")
        );
        // Per list: the same queue id on another list is not recorded.
        assert_eq!(
            lookup(d.path(), "ops@x.test", "ABC123").expect("lookup"),
            None
        );
        record(d.path(), list, &accept_key("00ff"), "post 8").expect("record");
        assert_eq!(
            lookup(d.path(), list, "accept-00ff")
                .expect("lookup")
                .as_deref(),
            Some("post 8")
        );
        assert!(
            !d.path()
                .join(list)
                .join("done")
                .join(".tmp-ABC123")
                .exists()
        );
    }

    #[test]
    fn hostile_keys_and_lists_name_no_file() {
        let d = tempfile::tempdir().expect("tempdir");
        for key in ["", "../x", "a/b", ".tmp-x", "accept-../x", "a b"] {
            assert!(
                record(d.path(), "dev@x.test", key, "post 1").is_err(),
                "{key:?}"
            );
            assert!(lookup(d.path(), "dev@x.test", key).is_err(), "{key:?}");
        }
        for list in ["../dev@x.test", "dev", ".dev@x", "a/b@x"] {
            assert!(record(d.path(), list, "Q1", "post 1").is_err(), "{list:?}");
        }
        assert!(record(d.path(), "dev@x.test", "Q1", "post 1\nheld x").is_err());
    }

    #[test]
    fn sweep_removes_old_records_only() {
        let d = tempfile::tempdir().expect("tempdir");
        record(d.path(), "dev@x.test", "OLD1", "post 1").expect("record");
        record(d.path(), "dev@x.test", "NEW1", "post 2").expect("record");
        let now = moat_common::date::now();
        let old = File::options()
            .write(true)
            .open(d.path().join("dev@x.test/done/OLD1"))
            .expect("open");
        old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now - 8 * 86_400))
            .expect("set mtime");
        let (removed, problems) = sweep(d.path(), now, MAX_AGE_SECS);
        assert_eq!((removed, problems.len()), (1, 0));
        assert_eq!(
            lookup(d.path(), "dev@x.test", "OLD1").expect("lookup"),
            None
        );
        assert!(
            lookup(d.path(), "dev@x.test", "NEW1")
                .expect("lookup")
                .is_some()
        );
    }

    #[test]
    fn busy_keys_are_taken_once() {
        let a = Busy::take("dev@x.test", "QB1").expect("first");
        assert!(Busy::take("DEV@x.test", "QB1").is_none());
        assert!(Busy::take("ops@x.test", "QB1").is_some());
        drop(a);
        assert!(Busy::take("dev@x.test", "QB1").is_some());
    }
}
