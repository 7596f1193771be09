//! The held-post store: a post to a moderated list waits in
//! `<data_dir>/<list@domain>/held/<ID>` until a moderator accepts or rejects it, or until it
//! expires (`sweep`). One file per post, named by its ID (16 lower-case hex digits from the OS
//! CSPRNG, so an ID cannot be guessed from another), holding one line of our own —
//! `MOAT-HELD <sender> <held at> <header length> <body offset>\n` — then the message as it came.
//!
//! SECURITY: the ID in a `list-accept-ID` address crossed the network: only 16 lower-case hex
//! digits are taken, so it names a file in the list's `held/` and nothing else. The list
//! address was checked by `request.rs`; `/`, `..` and NUL are refused again here. Directories are
//! made 0700 and files 0600 (moat-lists' own). A post is written to a temporary file, synced,
//! linked to its name (never replacing one) and the directory synced: a crash leaves either no
//! post or the whole post. The message is copied in chunks, never whole in memory. The first
//! line is our own, but is parsed bounded anyway. Per list at most `MAX_HELD` posts,
//! `MAX_HELD_BYTES` bytes of held files and `MAX_HELD_PER_SENDER` posts of one envelope
//! sender (`store` checks all three in one bounded scan of the folder; over one, the post is
//! not held and the caller answers `Z`: it waits in the queue until moderators make room or
//! the queue gives up on it).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::header::MAX_HEADER;
use crate::header::read_at;

/// The first word of a held file.
const MAGIC: &str = "MOAT-HELD";
/// The longest first line read (an address is at most 320 octets).
const MAX_FIRST_LINE: usize = 512;
/// The copy buffer.
const CHUNK: usize = 64 * 1024;
/// A temporary file older than this is a crash's leftover, removed by the sweep.
const STALE_TMP_SECS: u64 = 3600;
/// Temporary files start with this (never a valid ID).
const TMP_PREFIX: &str = ".tmp.";

/// What the first line records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The poster (the envelope sender).
    pub sender: String,
    /// When the post was held, Unix seconds.
    pub held_at: u64,
    /// The message's header length (`header::read`'s header, without the empty line).
    pub head_len: u64,
    /// Where the message's body starts, from the message's start.
    pub body_at: u64,
}

/// A held post, open.
#[derive(Debug)]
pub struct Held {
    pub id: String,
    pub meta: Meta,
    /// The message's header (`meta.head_len` bytes).
    pub head: Vec<u8>,
    /// The held file: the first line, then the message.
    pub file: File,
    /// Where the message starts in `file`.
    pub message_at: u64,
}

impl Held {
    /// Where the body starts in `file`.
    pub fn body_start(&self) -> u64 {
        self.message_at + self.meta.body_at
    }
}

/// Whether `id` is a held post's ID: 16 lower-case hex digits.
pub fn is_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new ID from the OS CSPRNG.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system's random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `<data_dir>/<list>/held` (`context::list_folder` checks the list address again).
pub fn held_dir(data_dir: &Path, list: &str) -> io::Result<PathBuf> {
    Ok(crate::context::list_folder(data_dir, list)?.join("held"))
}

/// The most posts held for one list: past it new posts wait in the queue (`Z`), so a flood
/// of posts cannot fill the disk or the moderators' mailboxes.
pub const MAX_HELD: usize = 5_000;

/// How many posts `list` holds, counting no further than `MAX_HELD`.
pub fn count(data_dir: &Path, list: &str) -> io::Result<usize> {
    let dir = held_dir(data_dir, list)?;
    match fs::read_dir(&dir) {
        Ok(d) => Ok(d
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(is_id))
            .take(MAX_HELD)
            .count()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The most bytes of held files for one list (1 GiB): with `MAX_HELD`, what a flood of big
/// posts to a moderated list can take of the disk.
pub const MAX_HELD_BYTES: u64 = 1 << 30;

/// The most posts held for one envelope sender on one list: one sender cannot take the whole
/// of `MAX_HELD` and crowd out everyone else's posts.
pub const MAX_HELD_PER_SENDER: usize = 20;

/// The caps `store` checks.
#[derive(Debug, Clone, Copy)]
struct Caps {
    posts: usize,
    bytes: u64,
    per_sender: usize,
}

const CAPS: Caps = Caps {
    posts: MAX_HELD,
    bytes: MAX_HELD_BYTES,
    per_sender: MAX_HELD_PER_SENDER,
};

/// Whether holding `new_bytes` more from `sender` stays within `caps`: one scan of the
/// list's held folder, reading at most `caps.posts` files' first lines. `Err` of kind
/// `QuotaExceeded`, with a sentence for the log, when it does not.
fn check_caps(dir: &Path, sender: &str, new_bytes: u64, caps: Caps) -> io::Result<()> {
    let over = |what: String| Err(io::Error::new(io::ErrorKind::QuotaExceeded, what));
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let (mut posts, mut bytes, mut mine) = (0usize, new_bytes, 0usize);
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_id) {
            continue;
        }
        posts += 1;
        if posts >= caps.posts {
            return over(format!("{} posts already held", caps.posts));
        }
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        bytes = bytes.saturating_add(file.metadata().map_or(0, |m| m.len()));
        if bytes > caps.bytes {
            return over(format!("held posts would pass {} bytes", caps.bytes));
        }
        if first_line(&file).is_ok_and(|(m, _)| m.sender.eq_ignore_ascii_case(sender)) {
            mine += 1;
            if mine >= caps.per_sender {
                return over(format!(
                    "{} posts from <{sender}> already held",
                    caps.per_sender
                ));
            }
        }
    }
    if bytes > caps.bytes {
        return over(format!("held posts would pass {} bytes", caps.bytes));
    }
    Ok(())
}

/// Holds the message in `src` (read from its start) for `list`: its new ID. Over a cap
/// (`MAX_HELD`, `MAX_HELD_BYTES`, `MAX_HELD_PER_SENDER`) nothing is written and the error is
/// of kind `QuotaExceeded`.
pub fn store(data_dir: &Path, list: &str, src: &File, meta: &Meta) -> io::Result<String> {
    store_within(data_dir, list, src, meta, CAPS)
}

fn store_within(
    data_dir: &Path,
    list: &str,
    src: &File,
    meta: &Meta,
    caps: Caps,
) -> io::Result<String> {
    let dir = held_dir(data_dir, list)?;
    let first_line_len = MAX_FIRST_LINE as u64;
    check_caps(
        &dir,
        &meta.sender,
        src.metadata()?.len().saturating_add(first_line_len),
        caps,
    )?;
    if !dir.is_dir() {
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        // The new directories' entries must last too.
        if let Some(list_dir) = dir.parent() {
            fsync_dir(list_dir)?;
        }
        fsync_dir(data_dir)?;
    }
    let line = format!(
        "{MAGIC} {} {} {} {}\n",
        meta.sender, meta.held_at, meta.head_len, meta.body_at
    );
    if line.len() > MAX_FIRST_LINE || meta.sender.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad sender for a held post",
        ));
    }
    // A taken name (one in 2^64) is tried again with a new ID.
    for _ in 0..4 {
        let id = new_id()?;
        let tmp = dir.join(format!("{TMP_PREFIX}{id}"));
        let mut out = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = (|| {
            out.write_all(line.as_bytes())?;
            copy(src, &mut out)?;
            out.sync_all()?;
            fs::hard_link(&tmp, dir.join(&id))
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                fsync_dir(&dir)?;
                return Ok(id);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free ID for the held post"))
}

/// Copies `src` from its start to `out`, a chunk at a time.
fn copy(src: &File, out: &mut File) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = match src.read_at(&mut buf, offset) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Parses a held file's first line: the metadata and the line's length.
fn first_line(file: &File) -> io::Result<(Meta, u64)> {
    let start = read_at(file, 0, MAX_FIRST_LINE)?;
    let end = start
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| invalid("held file without its first line"))?;
    let line = std::str::from_utf8(&start[..end]).map_err(|_| invalid("held file: not text"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let number = |w: &str| {
        w.parse::<u64>()
            .map_err(|_| invalid("held file: bad number"))
    };
    match words.as_slice() {
        [MAGIC, sender, held_at, head_len, body_at] if !sender.is_empty() => {
            let meta = Meta {
                sender: (*sender).to_string(),
                held_at: number(held_at)?,
                head_len: number(head_len)?,
                body_at: number(body_at)?,
            };
            Ok((meta, end as u64 + 1))
        }
        _ => Err(invalid("held file: bad first line")),
    }
}

/// The held post `id` of `list`, `None` when there is none (never was, or gone).
pub fn open(data_dir: &Path, list: &str, id: &str) -> io::Result<Option<Held>> {
    if !is_id(id) {
        return Ok(None);
    }
    let path = held_dir(data_dir, list)?.join(id);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (meta, message_at) = first_line(&file)?;
    let size = file.metadata()?.len();
    if meta.head_len > MAX_HEADER as u64
        || meta.body_at < meta.head_len
        || message_at + meta.body_at > size
    {
        return Err(invalid("held file: offsets out of range"));
    }
    // head_len ≤ MAX_HEADER: bounded.
    let head = read_at(&file, message_at, meta.head_len as usize)?;
    Ok(Some(Held {
        id: id.to_string(),
        meta,
        head,
        file,
        message_at,
    }))
}

/// Removes held post `id`: whether it was there.
pub fn remove(data_dir: &Path, list: &str, id: &str) -> io::Result<bool> {
    if !is_id(id) {
        return Ok(false);
    }
    let dir = held_dir(data_dir, list)?;
    match fs::remove_file(dir.join(id)) {
        Ok(()) => {
            fsync_dir(&dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A post the sweep removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub list: String,
    pub id: String,
    /// The poster, when the first line could be read.
    pub sender: Option<String>,
    pub held_at: u64,
}

/// Removes every held post older than `max_age` seconds at `now` (by its first line's time, or
/// the file's mtime when that cannot be read), and temporary files a crash left. Returns what
/// was removed and a line for each problem met (the sweep goes on past them).
pub fn sweep(data_dir: &Path, now: u64, max_age: u64) -> (Vec<Expired>, Vec<String>) {
    let mut expired = Vec::new();
    let mut problems = Vec::new();
    let lists = match fs::read_dir(data_dir) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("{}: {e}", data_dir.display()));
            return (expired, problems);
        }
    };
    for entry in lists.flatten() {
        let Ok(list) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(dir) = held_dir(data_dir, &list) else {
            continue;
        };
        let posts = match fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let mut removed_any = false;
        for post in posts.flatten() {
            let Ok(name) = post.file_name().into_string() else {
                continue;
            };
            let path = post.path();
            let mtime = post
                .metadata()
                .map(|m| u64::try_from(m.mtime()).unwrap_or(0))
                .unwrap_or(0);
            if name.starts_with(TMP_PREFIX) {
                if now.saturating_sub(mtime) > STALE_TMP_SECS && fs::remove_file(&path).is_ok() {
                    removed_any = true;
                }
                continue;
            }
            if !is_id(&name) {
                continue;
            }
            let meta = File::open(&path).and_then(|f| first_line(&f)).ok();
            let held_at = meta.as_ref().map_or(mtime, |(m, _)| m.held_at);
            if now.saturating_sub(held_at) <= max_age {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    removed_any = true;
                    expired.push(Expired {
                        list: list.clone(),
                        id: name,
                        sender: meta.map(|(m, _)| m.sender),
                        held_at,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        if removed_any && let Err(e) = fsync_dir(&dir) {
            problems.push(format!("{}: {e}", dir.display()));
        }
    }
    (expired, problems)
}

/// Makes a directory's entries durable.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &[u8]) -> File {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(text).expect("write");
        f
    }

    fn meta(sender: &str, held_at: u64) -> Meta {
        Meta {
            sender: sender.into(),
            held_at,
            head_len: 13,
            body_at: 15,
        }
    }

    #[test]
    fn ids() {
        let a = new_id().expect("id");
        let b = new_id().expect("id");
        assert!(is_id(&a) && is_id(&b), "{a} {b}");
        assert_ne!(a, b);
        for bad in [
            "",
            "0123456789abcdeF",
            "0123456789abcde",
            "0123456789abcdeg",
            "../etc/passwd",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn stored_opened_removed() {
        let data = tempfile::tempdir().expect("tempdir");
        let src = message(b"Subject: hi\r\n\r\nbody\r\n");
        let id = store(data.path(), "dev@x.test", &src, &meta("carol@y.test", 100)).expect("store");
        let dir = data.path().join("dev@x.test/held");
        let mode = fs::metadata(&dir).expect("dir").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = fs::metadata(dir.join(&id)).expect("file").mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(&dir).expect("dir").count(),
            1,
            "no temp file left"
        );
        let held = open(data.path(), "dev@x.test", &id)
            .expect("open")
            .expect("there");
        assert_eq!(held.meta, meta("carol@y.test", 100));
        assert_eq!(held.head, b"Subject: hi\r\n".to_vec());
        let body = read_at(&held.file, held.body_start(), 100).expect("read");
        assert_eq!(body, b"body\r\n");
        assert!(
            open(data.path(), "dev@x.test", "0000000000000000")
                .expect("open")
                .is_none()
        );
        assert!(
            open(data.path(), "dev@x.test", "../../x")
                .expect("open")
                .is_none()
        );
        assert!(held_dir(data.path(), "../x@y").is_err());
        assert!(held_dir(data.path(), "a/b@y").is_err());
        assert!(remove(data.path(), "dev@x.test", &id).expect("remove"));
        assert!(!remove(data.path(), "dev@x.test", &id).expect("remove"));
        assert!(
            open(data.path(), "dev@x.test", &id)
                .expect("open")
                .is_none()
        );
    }

    #[test]
    fn caps_on_posts_bytes_and_senders() {
        let data = tempfile::tempdir().expect("tempdir");
        let (d, list) = (data.path(), "dev@x.test");
        let src = message(b"Subject: hi\r\n\r\nbody\r\n");
        let held = || fs::read_dir(d.join("dev@x.test/held")).map_or(0, |r| r.count());
        let quota = |r: io::Result<String>| {
            r.expect_err("over a cap").kind() == io::ErrorKind::QuotaExceeded
        };
        // Per sender: the third post of one sender (any letter case) is refused, another
        // sender's is held.
        let caps = Caps {
            posts: 10,
            bytes: 1 << 20,
            per_sender: 2,
        };
        for _ in 0..2 {
            store_within(d, list, &src, &meta("spam@y.test", 1), caps).expect("held");
        }
        assert!(quota(store_within(
            d,
            list,
            &src,
            &meta("SPAM@y.test", 1),
            caps
        )));
        store_within(d, list, &src, &meta("ann@y.test", 1), caps).expect("another sender");
        assert_eq!(held(), 3);
        // Posts: 4 held, a cap of 4 refuses the next.
        let caps = Caps { posts: 4, ..caps };
        store_within(d, list, &src, &meta("bob@y.test", 1), caps).expect("fourth");
        assert!(quota(store_within(
            d,
            list,
            &src,
            &meta("carl@y.test", 1),
            caps
        )));
        // Bytes: the held files plus the new post over the cap refuse it; nothing is written.
        let used: u64 = fs::read_dir(d.join("dev@x.test/held"))
            .expect("dir")
            .flatten()
            .map(|e| e.metadata().expect("meta").len())
            .sum();
        let big = message(&vec![b'x'; 4096]);
        let caps = Caps {
            posts: 100,
            bytes: used + 4096,
            per_sender: 100,
        };
        assert!(quota(store_within(
            d,
            list,
            &big,
            &meta("dan@y.test", 1),
            caps
        )));
        assert_eq!(held(), 4, "nothing written over a cap");
        let caps = Caps {
            bytes: used + 4096 + MAX_FIRST_LINE as u64,
            ..caps
        };
        store_within(d, list, &big, &meta("dan@y.test", 1), caps).expect("fits");
        // Another list has its own caps.
        store_within(d, "ops@x.test", &src, &meta("spam@y.test", 1), caps).expect("ops");
    }

    #[test]
    fn sweep_removes_only_expired_posts() {
        let data = tempfile::tempdir().expect("tempdir");
        let src = message(b"Subject: hi\r\n\r\nbody\r\n");
        let old = store(data.path(), "dev@x.test", &src, &meta("old@y.test", 1_000)).expect("old");
        let new = store(data.path(), "dev@x.test", &src, &meta("new@y.test", 5_000)).expect("new");
        let other = store(data.path(), "ops@x.test", &src, &meta("o@y.test", 2_000)).expect("o");
        // Not a list's folder with held posts: left alone.
        fs::create_dir_all(data.path().join("archive-state")).expect("mkdir");
        let (gone, problems) = sweep(data.path(), 6_000, 3_500);
        assert!(problems.is_empty(), "{problems:?}");
        let mut ids: Vec<&str> = gone.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![old.as_str(), other.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        assert!(gone.iter().any(|e| e.list == "dev@x.test"
            && e.sender.as_deref() == Some("old@y.test")
            && e.held_at == 1_000));
        assert!(
            open(data.path(), "dev@x.test", &new)
                .expect("open")
                .is_some()
        );
        assert!(
            open(data.path(), "dev@x.test", &old)
                .expect("open")
                .is_none()
        );
        assert_eq!(count(data.path(), "dev@x.test").expect("count"), 1);
        assert_eq!(count(data.path(), "new@x.test").expect("count"), 0);
        let (again, _) = sweep(data.path(), 6_000, 3_500);
        assert!(again.is_empty());
    }
}
