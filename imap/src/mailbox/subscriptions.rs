//! SUBSCRIBE/UNSUBSCRIBE/LSUB's list: the `subscriptions` file in the Maildir root, in
//! Dovecot's format (src/lib-storage/list/subscription-file.c), so Dovecot reads ours and we
//! read Dovecot's.
//!
//! ```text
//! V<TAB>2              <- version 2 header, then an empty line
//!
//! INBOX
//! Work<TAB>Projects    <- one name per line, hierarchy levels separated by TAB
//! ```
//! Levels are tab-escaped (`\x01` + `1`/`t`/`r`/`n` for `\x01`, TAB, CR, LF); our names never
//! need it, others' are kept verbatim. A file without the header is version 1: one name per
//! line, levels separated by Maildir++'s `.` (read, and rewritten as version 2).
//!
//! Changes are made as Dovecot makes them: under the dotlock `subscriptions.lock` (created
//! exclusively; one older than 30 s is stale and taken over), the new list is written into the
//! lock file, fsynced and renamed over the list, so readers see the old list or the new one.
//!
//! SECURITY: the file is read with O_NOFOLLOW and at most `MAX_FILE` bytes, and holds at most
//! `MAX_ENTRIES` names (SUBSCRIBE beyond that is refused), so a client cannot grow it without
//! bound; a lock is waited for at most `LOCK_WAIT`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::name::{self, SEPARATOR};

/// The list's file name in the Maildir root.
pub const SUBSCRIPTIONS_FILE: &str = "subscriptions";
/// Dovecot's dotlock for it.
const LOCK_FILE: &str = "subscriptions.lock";
const HEADER: &str = "V\t2\n\n";
/// The largest list read.
const MAX_FILE: u64 = 1024 * 1024;
/// The most names one user may subscribe to.
pub const MAX_ENTRIES: usize = 10_000;
/// A lock older than this is left by a dead process (Dovecot's change timeout).
const STALE: Duration = Duration::from_secs(30);
/// How long SUBSCRIBE waits for another session's change.
const LOCK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum SubscriptionError {
    /// The list is full.
    TooMany,
    /// Another change held the lock for too long.
    Busy,
    Io(io::Error),
}

impl From<io::Error> for SubscriptionError {
    fn from(e: io::Error) -> Self {
        SubscriptionError::Io(e)
    }
}

/// One line of the file: the IMAP name when it is one we can use, and the line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    name: Option<String>,
    raw: String,
}

fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// The raw lines after the header, and whether the file was version 2.
fn read_lines(root: &Path) -> io::Result<(Vec<String>, bool)> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(root.join(SUBSCRIPTIONS_FILE))
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), true)),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let (v2, body) = match text.strip_prefix(HEADER) {
        Some(rest) => (true, rest),
        None => (false, text.as_ref()),
    };
    let lines = body
        .split('\n')
        .filter(|l| !l.is_empty())
        .take(MAX_ENTRIES * 2)
        .map(str::to_string)
        .collect();
    Ok((lines, v2))
}

fn unescape(level: &str) -> String {
    let mut out = String::with_capacity(level.len());
    let mut chars = level.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The IMAP name a stored line stands for, if it is one we can use.
fn line_name(raw: &str, v2: bool) -> Option<String> {
    let imap = if v2 {
        raw.split('\t')
            .map(unescape)
            .collect::<Vec<_>>()
            .join(&SEPARATOR.to_string())
    } else if raw.contains(SEPARATOR) {
        raw.to_string()
    } else {
        // Version 1 from Maildir++ storage spells levels with '.'.
        raw.replace('.', &SEPARATOR.to_string())
    };
    name::parse(imap.as_bytes()).ok().map(|n| n.imap)
}

/// How a name is stored in version 2.
fn stored(imap: &str) -> String {
    imap.split(SEPARATOR).collect::<Vec<_>>().join("\t")
}

fn parse(root: &Path) -> io::Result<Vec<Line>> {
    let (lines, v2) = read_lines(root)?;
    Ok(lines
        .into_iter()
        .map(|raw| Line {
            name: line_name(&raw, v2),
            // Rewritten as version 2: a version 1 line we understand is converted.
            raw: match (v2, line_name(&raw, v2)) {
                (false, Some(n)) => stored(&n),
                _ => raw,
            },
        })
        .collect())
}

/// The subscribed names we can use (others' lines we cannot read are skipped).
pub fn read(root: &Path) -> io::Result<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    Ok(parse(root)?
        .into_iter()
        .filter_map(|l| l.name)
        .filter(|n| seen.insert(n.clone()))
        .collect())
}

/// The dotlock, held while it exists; `release` removes it when the change was not committed.
struct DotLock<'a> {
    path: std::path::PathBuf,
    file: File,
    root: &'a Path,
}

impl<'a> DotLock<'a> {
    fn take(root: &'a Path) -> Result<DotLock<'a>, SubscriptionError> {
        let path = root.join(LOCK_FILE);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => return Ok(DotLock { path, file, root }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = std::fs::symlink_metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a > STALE) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(SubscriptionError::Busy);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes the new list into the lock and renames it over the list.
    fn commit(mut self, lines: &[Line]) -> io::Result<()> {
        let mut text = String::from(HEADER);
        for l in lines {
            text.push_str(&l.raw);
            text.push('\n');
        }
        let written = self
            .file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_all())
            .and_then(|()| std::fs::rename(&self.path, self.root.join(SUBSCRIPTIONS_FILE)));
        if written.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        written
    }

    fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Changes the list under the lock: `change` edits the lines and says whether to write.
fn update(
    root: &Path,
    change: impl FnOnce(&mut Vec<Line>) -> Result<bool, SubscriptionError>,
) -> Result<(), SubscriptionError> {
    let lock = DotLock::take(root)?;
    let mut lines = match parse(root) {
        Ok(l) => l,
        Err(e) => {
            lock.release();
            return Err(e.into());
        }
    };
    match change(&mut lines) {
        Ok(true) => Ok(lock.commit(&lines)?),
        Ok(false) => {
            lock.release();
            Ok(())
        }
        Err(e) => {
            lock.release();
            Err(e)
        }
    }
}

/// Subscribes (`true`) or unsubscribes a checked IMAP name.
pub fn set(root: &Path, imap: &str, subscribed: bool) -> Result<(), SubscriptionError> {
    update(root, |lines| {
        let present = lines.iter().any(|l| l.name.as_deref() == Some(imap));
        if subscribed {
            if present {
                return Ok(false);
            }
            if lines.len() >= MAX_ENTRIES {
                return Err(SubscriptionError::TooMany);
            }
            lines.push(Line {
                name: Some(imap.to_string()),
                raw: stored(imap),
            });
            Ok(true)
        } else {
            lines.retain(|l| l.name.as_deref() != Some(imap));
            Ok(present)
        }
    })
}

/// Follows a RENAME: `from` and the names below it become `to` and the names below it.
pub fn rename(root: &Path, from: &str, to: &str) -> Result<(), SubscriptionError> {
    let below = format!("{from}{SEPARATOR}");
    update(root, |lines| {
        let mut changed = false;
        for l in lines.iter_mut() {
            let Some(n) = l.name.as_deref() else { continue };
            let renamed = if n == from {
                to.to_string()
            } else if let Some(rest) = n.strip_prefix(&below) {
                format!("{to}{SEPARATOR}{rest}")
            } else {
                continue;
            };
            l.raw = stored(&renamed);
            l.name = Some(renamed);
            changed = true;
        }
        Ok(changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_unsubscribe_rename_in_dovecot_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert!(read(root).expect("empty").is_empty());
        set(root, "INBOX", true).expect("sub");
        set(root, "Work/Projects", true).expect("sub");
        set(root, "Work/Projects", true).expect("twice is fine");
        set(root, "Entw&APw-rfe", true).expect("sub");
        assert_eq!(
            std::fs::read_to_string(root.join(SUBSCRIPTIONS_FILE)).expect("file"),
            "V\t2\n\nINBOX\nWork\tProjects\nEntw&APw-rfe\n"
        );
        rename(root, "Work", "Job").expect("rename");
        set(root, "INBOX", false).expect("unsub");
        set(root, "Nope", false).expect("unsub of a stranger is fine");
        assert_eq!(
            read(root).expect("read"),
            vec!["Job/Projects".to_string(), "Entw&APw-rfe".to_string()]
        );
        assert!(!root.join(LOCK_FILE).exists());
    }

    #[test]
    fn version_1_and_foreign_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(
            root.join(SUBSCRIPTIONS_FILE),
            "INBOX\nWork.Projects\ncaf\u{e9}\n",
        )
        .expect("write");
        assert_eq!(
            read(root).expect("read"),
            vec!["INBOX".to_string(), "Work/Projects".to_string()]
        );
        set(root, "Sent", true).expect("sub");
        assert_eq!(
            std::fs::read_to_string(root.join(SUBSCRIPTIONS_FILE)).expect("file"),
            "V\t2\n\nINBOX\nWork\tProjects\ncaf\u{e9}\nSent\n",
            "a line we cannot read is kept"
        );
    }

    #[test]
    fn a_stale_lock_is_taken_over_and_a_live_one_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lock = root.join(LOCK_FILE);
        std::fs::write(&lock, "").expect("lock");
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&lock)
            .and_then(|f| f.set_modified(old))
            .expect("age");
        set(root, "INBOX", true).expect("stale lock taken over");
        std::fs::write(&lock, "").expect("fresh lock");
        assert!(matches!(
            set(root, "Sent", true),
            Err(SubscriptionError::Busy)
        ));
    }
}
