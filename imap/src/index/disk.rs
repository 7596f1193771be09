//! The index files of one folder: loading, catching up, appending, compacting, blob I/O.
//!
//! A *generation* is a snapshot (`moat-index`), the log that continues it (`moat-index.log`,
//! same generation number in its header) and the blob cache (`moat-index.cache`, whose id the
//! snapshot names). Writers hold the flock (lock.rs), first read the log to its end
//! (so they build on everything committed), then append their records with one write. Readers
//! take no lock: a record is visible once complete and its checksum matches, and a reader that
//! finds a torn record stops before it and retries from there at its next sync.
//!
//! Compaction (under the lock) writes a new snapshot with a new generation number and a fresh,
//! empty log, each to a temp file, fsynced, renamed into place. A reader that opens files from
//! two generations sees the numbers disagree and tries again; one whose open log was replaced
//! notices at its next catch-up (the inode behind the name changed) and reloads. Open file
//! descriptors keep the old files readable meanwhile, so a reader never sees a half state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use moat_maildir::{Error, Result};

use super::format::{
    self, CACHE_HEADER_LEN, ENTRY_HEADER_LEN, LOG_HEADER_LEN, LogRec, MAX_LOG_RECORD, Snapshot,
};
use super::salvage::salvage_entries;
use super::state::{BlobRef, State};

pub(crate) const SNAPSHOT_FILE: &str = "moat-index";
pub(crate) const LOG_FILE: &str = "moat-index.log";
pub(crate) const CACHE_FILE: &str = "moat-index.cache";
pub(crate) const LOCK_FILE: &str = "moat-index.lock";
/// The log is folded into a new snapshot once it is larger than this and half the snapshot.
const COMPACT_MIN_LOG: u64 = 64 * 1024;
/// The cache is rewritten once it is larger than this and more than half of it is dead.
const COMPACT_MIN_CACHE: u64 = 1 << 20;
/// Log bytes read per system call while catching up.
const READ_CHUNK: u64 = 1 << 20;
/// A snapshot larger than this is not read (a million messages take about 130 MB).
pub(crate) const MAX_SNAPSHOT: u64 = 1 << 30;

/// Wraps an I/O error with the operation and path, like the maildir crate's errors.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_owned();
    move |source| Error::Io { op, path, source }
}

/// What loading found.
pub(crate) enum Loaded {
    Ready(Box<(Disk, State)>),
    /// No snapshot yet.
    Missing,
    /// Damaged, or files of different generations (a compaction in progress or interrupted).
    Unusable,
}

/// Open index files of one generation.
pub(crate) struct Disk {
    dir: PathBuf,
    log: File,
    /// (device, inode) of `log`, to notice when compaction replaced the file behind the name.
    log_id: (u64, u64),
    /// End of the last complete record read or written.
    log_pos: u64,
    cache: File,
    snapshot_len: u64,
}

fn open_rw(path: &Path) -> Result<Option<File>> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("open", path)(e)),
    }
}

fn read_prefix(file: &File, len: u64, path: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(buf),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Vec::new()),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Reads a whole file unless it is larger than `max` (`None` then).
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut f = File::open(path)?;
    if f.metadata()?.len() > max {
        return Ok(None);
    }
    let mut data = Vec::new();
    (&mut f).take(max + 1).read_to_end(&mut data)?;
    Ok((data.len() as u64 <= max).then_some(data))
}

fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Writes `dir/name` through `dir/name.tmp`: write, fdatasync, rename (the caller fsyncs `dir`).
fn write_replace(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    moat_maildir::write_then_rename(dir, &format!("{name}.tmp"), name, contents)
}

impl Disk {
    /// Loads the current generation and reads its log to the end.
    pub(crate) fn load(dir: &Path) -> Result<Loaded> {
        let snap_path = dir.join(SNAPSHOT_FILE);
        let data = match read_bounded(&snap_path, MAX_SNAPSHOT) {
            Ok(Some(d)) => d,
            // Larger than any folder's index can be: not ours, rebuild.
            Ok(None) => return Ok(Loaded::Unusable),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(io_err("read", &snap_path)(e)),
        };
        let Snapshot::Good(header, messages) = format::decode_snapshot(&data) else {
            return Ok(Loaded::Unusable);
        };
        let log_path = dir.join(LOG_FILE);
        let cache_path = dir.join(CACHE_FILE);
        let (Some(log), Some(cache)) = (open_rw(&log_path)?, open_rw(&cache_path)?) else {
            return Ok(Loaded::Unusable);
        };
        let log_head = read_prefix(&log, LOG_HEADER_LEN, &log_path)?;
        let cache_head = read_prefix(&cache, CACHE_HEADER_LEN, &cache_path)?;
        if format::decode_log_header(&log_head) != Some(header.generation)
            || format::decode_cache_header(&cache_head)
                != Some((header.cache_id, header.uid_validity))
        {
            return Ok(Loaded::Unusable);
        }
        let log_id = file_id(&log.metadata().map_err(io_err("stat", &log_path))?);
        let mut disk = Disk {
            dir: dir.to_owned(),
            log,
            log_id,
            log_pos: LOG_HEADER_LEN,
            cache,
            snapshot_len: data.len() as u64,
        };
        let mut state = State::from_snapshot(header, messages);
        disk.read_tail(&mut state)?;
        Ok(Loaded::Ready(Box::new((disk, state))))
    }

    /// Reads the records appended since the last call. Returns false when the log was replaced
    /// by a compaction: the caller must load the new generation.
    pub(crate) fn catch_up(&mut self, state: &mut State) -> Result<bool> {
        let path = self.dir.join(LOG_FILE);
        match fs::metadata(&path) {
            Ok(m) if file_id(&m) == self.log_id => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("stat", &path)(e)),
        }
        self.read_tail(state)?;
        Ok(true)
    }

    fn read_tail(&mut self, state: &mut State) -> Result<()> {
        let path = self.dir.join(LOG_FILE);
        let len = self.log.metadata().map_err(io_err("stat", &path))?.len();
        let mut pending: Vec<u8> = Vec::new();
        let mut read_to = self.log_pos;
        while read_to < len {
            let n = (len - read_to).min(READ_CHUNK);
            let mut chunk = vec![0u8; usize::try_from(n).unwrap_or(0)];
            let got = self
                .log
                .read_at(&mut chunk, read_to)
                .map_err(io_err("read", &path))?;
            if got == 0 {
                break;
            }
            chunk.truncate(got);
            read_to += got as u64;
            pending.extend_from_slice(&chunk);
            let (recs, used) = format::decode_records(&pending);
            state.apply_all(&recs);
            self.log_pos += used as u64;
            pending.drain(..used);
            if pending.len() as u64 > u64::from(MAX_LOG_RECORD) + 8 {
                // A damaged record, not a short read: nothing after it can be trusted.
                break;
            }
        }
        Ok(())
    }

    /// Appends records and applies them to `state`. The caller holds the lock and has caught up.
    pub(crate) fn append(&mut self, state: &mut State, recs: &[LogRec]) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(LOG_FILE);
        let len = self.log.metadata().map_err(io_err("stat", &path))?.len();
        if len > self.log_pos {
            // A torn record from a writer that died: cut it off so ours follow good ones.
            self.log
                .set_len(self.log_pos)
                .map_err(io_err("truncate", &path))?;
        }
        let bytes = format::encode_records(recs);
        self.log
            .write_all_at(&bytes, self.log_pos)
            .map_err(io_err("write", &path))?;
        self.log_pos += bytes.len() as u64;
        state.apply_all(recs);
        Ok(())
    }

    /// True when the log has grown enough to be folded into a new snapshot.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.log_pos > COMPACT_MIN_LOG.max(self.snapshot_len / 2)
    }

    /// Writes a new generation from `state` (lock held, caught up): the cache too when most of
    /// it is dead.
    pub(crate) fn compact(&mut self, state: &mut State) -> Result<()> {
        let cache_path = self.dir.join(CACHE_FILE);
        let cache_len = self
            .cache
            .metadata()
            .map_err(io_err("stat", &cache_path))?
            .len();
        let live: u64 = state
            .messages
            .values()
            .filter_map(|m| m.blob)
            .map(|b| u64::from(b.len) + ENTRY_HEADER_LEN)
            .sum();
        if cache_len > COMPACT_MIN_CACHE && live < cache_len / 2 {
            self.rewrite_cache(state)?;
        }
        self.write_generation(state)
    }

    /// Copies the live blobs into a new cache file with a new id.
    fn rewrite_cache(&mut self, state: &mut State) -> Result<()> {
        let cache_id = new_id(state.cache_id);
        let mut out = format::encode_cache_header(cache_id, state.uid_validity);
        let mut moved = Vec::new();
        for m in state.messages.values() {
            let Some(r) = m.blob else { continue };
            if let Some(blob) = self.read_blob(m.uid, r)? {
                let offset = out.len() as u64;
                out.extend_from_slice(&format::encode_entry(m.uid, &blob, m.file_size, m.size));
                moved.push((m.uid, Some(BlobRef { offset, len: r.len })));
            } else {
                moved.push((m.uid, None));
            }
        }
        write_replace(&self.dir, CACHE_FILE, &out)?;
        let path = self.dir.join(CACHE_FILE);
        self.cache = open_rw(&path)?
            .ok_or_else(|| io_err("open", &path)(io::Error::from(io::ErrorKind::NotFound)))?;
        state.cache_id = cache_id;
        for (uid, r) in moved {
            if let Some(m) = state.messages.get_mut(&uid) {
                m.blob = r;
            }
        }
        Ok(())
    }

    /// Writes snapshot + empty log for `state` under a new generation number and switches to them.
    fn write_generation(&mut self, state: &mut State) -> Result<()> {
        let (log, log_id, snapshot_len) = write_generation_files(&self.dir, state)?;
        self.log = log;
        self.log_id = log_id;
        self.log_pos = LOG_HEADER_LEN;
        self.snapshot_len = snapshot_len;
        Ok(())
    }

    /// Creates a generation from a rebuilt `state` (lock held). An existing cache of the same
    /// UIDVALIDITY is kept and its entries returned for salvage; otherwise a new one is made.
    pub(crate) fn create(dir: &Path, state: &mut State) -> Result<Disk> {
        let cache_path = dir.join(CACHE_FILE);
        let mut salvaged = Vec::new();
        let mut cache = None;
        if let Some(f) = open_rw(&cache_path)? {
            let head = read_prefix(&f, CACHE_HEADER_LEN, &cache_path)?;
            if let Some((id, validity)) = format::decode_cache_header(&head)
                && validity == state.uid_validity
            {
                salvaged = salvage_entries(&f, &cache_path)?;
                state.cache_id = id;
                cache = Some(f);
            }
        }
        let cache = match cache {
            Some(f) => f,
            None => {
                state.cache_id = new_id(state.cache_id);
                write_replace(
                    dir,
                    CACHE_FILE,
                    &format::encode_cache_header(state.cache_id, state.uid_validity),
                )?;
                open_rw(&cache_path)?.ok_or_else(|| {
                    io_err("open", &cache_path)(io::Error::from(io::ErrorKind::NotFound))
                })?
            }
        };
        // Later entries for a UID win (a blob recomputed after its first copy was damaged).
        for (uid, blob, file_size, size) in salvaged {
            if let Some(m) = state.messages.get_mut(&uid) {
                m.blob = Some(blob);
                m.file_size = file_size;
                m.size = size;
            }
        }
        let (log, log_id, snapshot_len) = write_generation_files(dir, state)?;
        Ok(Disk {
            dir: dir.to_owned(),
            log,
            log_id,
            log_pos: LOG_HEADER_LEN,
            cache,
            snapshot_len,
        })
    }

    /// Reads a blob; `None` when the entry does not check out (a crash lost it, or the cache
    /// was replaced): the caller computes it again.
    pub(crate) fn read_blob(&self, uid: u32, r: BlobRef) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(CACHE_FILE);
        let mut buf = vec![0u8; ENTRY_HEADER_LEN as usize + r.len as usize];
        match self.cache.read_exact_at(&mut buf, r.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        }
        let (head, blob) = buf.split_at(ENTRY_HEADER_LEN as usize);
        Ok(match format::decode_entry_header(head) {
            Some((u, len, _, _, crc))
                if u == uid && len == r.len && format::entry_crc_ok(head, blob, crc) =>
            {
                Some(blob.to_vec())
            }
            _ => None,
        })
    }

    /// Appends a blob to the cache (lock held) and returns where it is.
    pub(crate) fn append_blob(
        &mut self,
        uid: u32,
        blob: &[u8],
        file_size: u64,
        size: u64,
    ) -> Result<BlobRef> {
        let path = self.dir.join(CACHE_FILE);
        let offset = self.cache.metadata().map_err(io_err("stat", &path))?.len();
        let entry = format::encode_entry(uid, blob, file_size, size);
        self.cache
            .write_all_at(&entry, offset)
            .map_err(io_err("write", &path))?;
        Ok(BlobRef {
            offset,
            len: u32::try_from(blob.len()).unwrap_or(u32::MAX),
        })
    }
}

/// Writes snapshot + empty log of a new generation number for `state`; returns the open log,
/// its file id and the snapshot's length. Snapshot first: a reader that meets the new snapshot
/// with the old log sees the generations disagree and retries.
fn write_generation_files(dir: &Path, state: &mut State) -> Result<(File, (u64, u64), u64)> {
    state.generation = new_id(state.generation);
    let snapshot = format::encode_snapshot(&state.header(), &state.messages_vec());
    write_replace(dir, SNAPSHOT_FILE, &snapshot)?;
    write_replace(dir, LOG_FILE, &format::encode_log_header(state.generation))?;
    moat_maildir::fsync_dir(dir)?;
    let path = dir.join(LOG_FILE);
    let log = open_rw(&path)?
        .ok_or_else(|| io_err("open", &path)(io::Error::from(io::ErrorKind::NotFound)))?;
    let id = file_id(&log.metadata().map_err(io_err("stat", &path))?);
    Ok((log, id, snapshot.len() as u64))
}

impl State {
    /// The messages in UID order, for encoding.
    pub(crate) fn messages_vec(&self) -> Vec<super::state::Message> {
        self.messages.values().cloned().collect()
    }
}

/// A random id different from `old` (and from 0, which means "none").
fn new_id(old: u64) -> u64 {
    loop {
        let id: u64 = rand_u64();
        if id != 0 && id != old {
            return id;
        }
    }
}

/// Random bits without a dependency: the std hasher is randomly keyed per process, and the clock
/// and a counter make successive values in one process differ.
fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(super::modseq::now_micros());
    h.write_u32(std::process::id());
    h.finish()
}
