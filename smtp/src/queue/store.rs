//! The on-disk queue: directories, the commit protocol, the startup sweep, and the per-message
//! files (see docs/PROTOCOLS.md "moat-queue" and ../shared/ARCHITECTURE.md "The queue's promise").
//!
//! Layout under `queue_dir`, every directory 0700 and every file 0600, owned by moat-queue:
//! `tmp/<id>` message being written, `tmp/<id>.env` envelope being written, `tmp/<id>.retry`
//! retry record being replaced; `mess/<id>` message; `env/<id>` envelope (`envelope.rs`): its
//! existence *is* the message being queued; `done/<id>` done marks, `retry/<id>` retry record
//! (`state.rs`).
//!
//! Commit (qmail-queue's order): write + fsync `tmp/<id>`, rename to `mess/<id>`, fsync `mess/`;
//! write + fsync `tmp/<id>.env`, rename to `env/<id>` (the commit point), fsync `env/`. Only then
//! may the caller answer `K`. Any failure on the way removes every piece, so a `Z` leaves nothing
//! behind. Directory fsyncs are shared between concurrent commits (`dirsync.rs`).
//! Done marks are appended and fsynced, but `done/` itself is not: if a power loss forgets a
//! just-created done file, its recipients are delivered again (at least once, never lost).
//! Removal reverses it: `env/<id>` first, then the rest. The sweep at startup deletes `tmp/*` and
//! every `mess|done|retry/<id>` without `env/<id>`: exactly the pieces of messages that were never
//! committed or were being removed.
//!
//! SECURITY: only one moat-queue runs per directory (the supervisor's job): the sweep assumes no
//! one else is writing. Ids are generated here or checked with `id::is_valid` by the caller
//! before they name a file. Files are created with `create_new` (O_EXCL), never followed through
//! an existing name.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dirsync::DirSync;
use super::envelope::{Envelope, MAX_FILE};
use super::id::IdGen;
use super::state::{Done, Retry};

/// The queue directory.
pub struct Store {
    root: PathBuf,
    ids: IdGen,
    mess_sync: DirSync,
    env_sync: DirSync,
}

/// What the startup sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub tmp: usize,
    pub orphans: usize,
}

const SUBDIRS: [&str; 5] = ["tmp", "mess", "env", "done", "retry"];

fn not_found_ok(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn new_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

impl Store {
    /// Opens (creating if missing, mode 0700) the queue directory and its subdirectories.
    pub fn open(root: &Path) -> std::io::Result<Store> {
        let mut builder = DirBuilder::new();
        builder.mode(0o700).recursive(true);
        for sub in SUBDIRS {
            builder.create(root.join(sub)).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", root.join(sub).display()),
                )
            })?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            ids: IdGen::new(),
            mess_sync: DirSync::new(File::open(root.join("mess"))?),
            env_sync: DirSync::new(File::open(root.join("env"))?),
        })
    }

    fn path(&self, dir: &str, id: &str) -> PathBuf {
        self.root.join(dir).join(id)
    }

    fn names(&self, dir: &str) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.root.join(dir))? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Removes everything that was not committed (call before serving anything).
    pub fn sweep(&self) -> std::io::Result<Sweep> {
        let mut sweep = Sweep::default();
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            not_found_ok(std::fs::remove_file(entry?.path()))?;
            sweep.tmp += 1;
        }
        let queued: std::collections::HashSet<String> = self.names("env")?.into_iter().collect();
        for dir in ["mess", "done", "retry"] {
            for entry in std::fs::read_dir(self.root.join(dir))? {
                let entry = entry?;
                let keep = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| queued.contains(n));
                if !keep {
                    not_found_ok(std::fs::remove_file(entry.path()))?;
                    sweep.orphans += 1;
                }
            }
        }
        Ok(sweep)
    }

    /// Starts a new message: a fresh id and its `tmp/<id>` file.
    pub fn create(self: &Arc<Self>, now: u64) -> std::io::Result<Draft> {
        for _ in 0..100 {
            let id = self.ids.next(now);
            if self.path("mess", &id).exists() || self.path("env", &id).exists() {
                continue;
            }
            match new_file(&self.path("tmp", &id)) {
                Ok(file) => {
                    return Ok(Draft {
                        store: Arc::clone(self),
                        id,
                        file,
                        size: 0,
                        finished: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("cannot find a free queue id"))
    }

    /// The ids of every committed message.
    pub fn queued(&self) -> std::io::Result<Vec<String>> {
        let mut ids = self.names("env")?;
        ids.retain(|id| super::id::is_valid(id));
        ids.sort();
        Ok(ids)
    }

    /// Whether `id` is committed.
    pub fn exists(&self, id: &str) -> bool {
        self.path("env", id).exists()
    }

    /// The envelope; a file over `envelope::MAX_FILE` bytes is refused like a malformed one.
    pub fn envelope(&self, id: &str) -> std::io::Result<Envelope> {
        let mut bytes = Vec::new();
        File::open(self.path("env", id))?
            .take(MAX_FILE as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_FILE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("env/{id}: larger than {MAX_FILE} bytes"),
            ));
        }
        Envelope::decode(&bytes).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("env/{id}: {e}"))
        })
    }

    /// The done marks (none yet if the file does not exist).
    pub fn done(&self, id: &str, recipients: usize) -> std::io::Result<Done> {
        match std::fs::read(self.path("done", id)) {
            Ok(bytes) => Ok(Done::parse(&bytes, recipients)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Done::default()),
            Err(e) => Err(e),
        }
    }

    /// Appends one line to `done/<id>` and fsyncs it.
    pub fn append_done(&self, id: &str, line: &[u8]) -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.path("done", id))?;
        // One write per line: O_APPEND keeps concurrent lines whole.
        file.write_all(line)?;
        file.sync_data()
    }

    pub fn retry(&self, id: &str) -> std::io::Result<Option<Retry>> {
        match std::fs::read(self.path("retry", id)) {
            Ok(bytes) => Ok(Retry::decode(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces `retry/<id>` atomically. Not fsynced: losing it only means an earlier retry.
    pub fn set_retry(&self, id: &str, retry: &Retry) -> std::io::Result<()> {
        let tmp = self.path("tmp", &format!("{id}.retry"));
        not_found_ok(std::fs::remove_file(&tmp))?;
        new_file(&tmp)?.write_all(&retry.encode())?;
        std::fs::rename(&tmp, self.path("retry", id))
    }

    /// The message, opened read-only (a fresh descriptor, at offset 0).
    pub fn open_message(&self, id: &str) -> std::io::Result<File> {
        File::open(self.path("mess", id))
    }

    /// The header of the message (up to the empty line, at most `limit` bytes, cut at a line end).
    pub fn message_header(&self, id: &str, limit: usize) -> std::io::Result<Vec<u8>> {
        let mut head = Vec::new();
        self.open_message(id)?
            .take(limit as u64)
            .read_to_end(&mut head)?;
        if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
            head.truncate(end + 2);
        } else if let Some(end) = memchr::memrchr(b'\n', &head) {
            head.truncate(end + 1);
        } else {
            head.clear();
        }
        Ok(head)
    }

    /// The whole message if it has at most `limit` bytes (`None` if it is bigger).
    pub fn message_full(&self, id: &str, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut all = Vec::new();
        self.open_message(id)?
            .take(limit as u64 + 1)
            .read_to_end(&mut all)?;
        Ok((all.len() <= limit).then_some(all))
    }

    /// Removes a message: `env/<id>` first (from then on it is no longer queued), then the rest.
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        not_found_ok(std::fs::remove_file(self.path("env", id)))?;
        for dir in ["mess", "done", "retry"] {
            not_found_ok(std::fs::remove_file(self.path(dir, id)))?;
        }
        Ok(())
    }
}

/// A message being written into `tmp/`. Dropped without `commit`, it leaves nothing behind.
pub struct Draft {
    store: Arc<Store>,
    id: String,
    file: File,
    size: u64,
    finished: bool,
}

impl Draft {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Commits the message with `envelope` (its size is set here). On `Ok` the message is
    /// durably queued under the returned id; on `Err` nothing of it is left.
    pub fn commit(mut self, envelope: &mut Envelope) -> std::io::Result<String> {
        envelope.size = self.size;
        let result = self.commit_steps(envelope);
        self.finished = true;
        match result {
            Ok(()) => Ok(self.id.clone()),
            Err(e) => {
                let s = &self.store;
                let _ = std::fs::remove_file(s.path("env", &self.id));
                let _ = std::fs::remove_file(s.path("tmp", &format!("{}.env", self.id)));
                let _ = std::fs::remove_file(s.path("mess", &self.id));
                let _ = std::fs::remove_file(s.path("tmp", &self.id));
                Err(e)
            }
        }
    }

    fn commit_steps(&mut self, envelope: &Envelope) -> std::io::Result<()> {
        let s = &self.store;
        self.file.sync_data()?;
        std::fs::rename(s.path("tmp", &self.id), s.path("mess", &self.id))?;
        s.mess_sync.sync()?;
        let env_tmp = s.path("tmp", &format!("{}.env", self.id));
        let mut env_file = new_file(&env_tmp)?;
        env_file.write_all(&envelope.encode())?;
        env_file.sync_data()?;
        drop(env_file);
        std::fs::rename(&env_tmp, s.path("env", &self.id))?;
        s.env_sync.sync()
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(self.store.path("tmp", &self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::client::queue::Origin;

    fn envelope() -> Envelope {
        Envelope {
            arrival: 1_700_000_000,
            origin: Origin::Smtp,
            uid: 1,
            size: 0,
            client: "test".into(),
            sender: "a@example.test".into(),
            recipients: vec!["b@example.test".into()],
            dsn: Default::default(),
            smtputf8: false,
            verp: false,
            one_click: None,
        }
    }

    fn count(root: &Path, dir: &str) -> usize {
        std::fs::read_dir(root.join(dir)).expect("dir").count()
    }

    #[test]
    fn commit_then_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("open"));
        let mut draft = store.create(1_700_000_000).expect("create");
        draft.write(b"Subject: x\r\n\r\nbody\r\n").expect("write");
        let mut env = envelope();
        let id = draft.commit(&mut env).expect("commit");
        assert_eq!(env.size, 20);
        assert_eq!(store.queued().expect("ids"), vec![id.clone()]);
        assert_eq!(store.envelope(&id).expect("env"), env);
        assert_eq!(
            store.message_header(&id, 1000).expect("head"),
            b"Subject: x\r\n"
        );
        store.append_done(&id, b"0 K ok\n").expect("done");
        assert_eq!(store.done(&id, 1).expect("done").marks.len(), 1);
        store.remove(&id).expect("remove");
        for sub in SUBDIRS {
            assert_eq!(count(dir.path(), sub), 0, "{sub}");
        }
    }

    #[test]
    fn dropped_drafts_and_orphans_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("open"));
        let mut draft = store.create(1).expect("create");
        draft.write(b"x").expect("write");
        drop(draft);
        assert_eq!(count(dir.path(), "tmp"), 0);
        std::fs::write(dir.path().join("tmp/junk"), b"x").expect("junk");
        std::fs::write(dir.path().join("mess/0123456789ABCDEF"), b"x").expect("orphan");
        std::fs::write(dir.path().join("done/0123456789ABCDEF"), b"x").expect("orphan");
        let kept = store
            .create(2)
            .expect("create")
            .commit(&mut envelope())
            .expect("commit");
        assert_eq!(store.sweep().expect("sweep"), Sweep { tmp: 1, orphans: 2 });
        assert_eq!(store.queued().expect("ids"), vec![kept]);
        assert_eq!(count(dir.path(), "mess"), 1);
    }
}
