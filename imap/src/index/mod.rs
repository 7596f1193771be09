//! The per-folder index (docs/IMAP.md "The index"): UID ↔ file, flags, MODSEQ, sizes,
//! INTERNALDATE and a cached blob per message, kept in step with the Maildir. A cache: UIDs come
//! from `dovecot-uidlist` (the maildir crate's `sync_uidlist`), flags from the file names; losing
//! or damaging the index files costs a rebuild (a directory listing), never mail or UIDs.
//!
//! # API (the session calls these; keep the names)
//!
//! ```text
//! Index::open(&Maildir) -> Result<Index>           load or rebuild, then sync with the Maildir
//! index.view() -> View                             messages in UID order, UIDVALIDITY, UIDNEXT,
//!                                                  HIGHESTMODSEQ (right after open: the SELECT)
//! index.sync() -> Result<Changes>                  re-scan if the Maildir changed; what changed
//!                                                  since this handle's last open/sync
//! index.store_flags(&[uid], StoreOp, Flags, Option<u64>) -> Result<StoreOutcome>
//!                                                  rename files, new MODSEQ; UNCHANGEDSINCE
//! index.expunge(&[uid], only_deleted) -> Result<Vec<u32>>   the UIDs now gone
//! index.move_new_to_cur() -> Result<Vec<u32>>      the session's \Recent messages
//! index.blob(uid, &parse) -> Result<Option<Vec<u8>>>        cached, else parsed once and kept
//! index.prepare_blobs(&[uid], &parse) -> Result<usize>      batch version, before a big FETCH
//! index.blobs(&[uid], &parse) -> Result<HashMap<u32, Vec<u8>>>  batch version returning them
//! index.set_blob(uid, &bytes) -> Result<bool>      APPEND already parsed the message
//! index.open_message(uid) -> Result<Option<(File, Entry)>>  the file, without scanning cur/
//! index.message(uid) / find_base(base) / messages() / uid_validity() / uid_next() /
//! highest_modseq()
//! index.keywords() -> &Keywords                    letter ↔ name (`dovecot-keywords`)
//! index.flags_from_imap(&[&str]) -> Result<ImapFlags>       names → letters, new keywords added (all or none)
//! index.known_flags_from_imap(&[&str]) -> Result<ImapFlags> names → letters, unknown keywords left
//!                                                  out (STORE -FLAGS: never takes a letter)
//! system_flag_letter, valid_keyword, Keywords::imap_flags    (keywords.rs)
//! ```
//!
//! `parse` is the session's `&dyn Fn(&[u8]) -> Vec<u8>` (message bytes → ENVELOPE and
//! BODYSTRUCTURE wire bytes); the index never looks inside the blob and does not depend on the
//! mime module. It is called once per message over the life of the folder: re-opening an
//! unchanged folder of 50,000 messages calls it zero times and opens no message file (the
//! directories are not even listed when their stamps are unchanged, see sync.rs).
//!
//! Every method blocks (file I/O, and the index lock for up to 60 s under contention): call them
//! from `spawn_blocking`. Each session holds its own `Index`; handles share the files on disk and
//! each learns from `sync` what the others (and other programs) changed. What a handle changes
//! itself (`store_flags`, `expunge`) it returns directly and `sync` does not report again.
//! Methods that take UIDs fail (`Error::Corrupt` on `dovecot-uidlist`) once the folder's
//! UIDVALIDITY is no longer the one the handle reported: the next `sync` says
//! `uid_validity_changed` and the session ends (BYE), as RFC 3501 requires.
//!
//! New messages (deliveries, APPEND, COPY) get their UID from `dovecot-uidlist` and a MODSEQ when
//! a scan first indexes them: after writing a message into the selected folder the session calls
//! `sync` and finds it with `find_base(base)` (APPENDUID); the blob of a message it parsed anyway
//! can be stored with `set_blob`.
//!
//! Sizes: `Message::size` is RFC822.SIZE, the CRLF size (`,W=`; measured for files without it),
//! so FETCH BODY[] must send the file with bare LFs turned into CRLF (as POP3 does); moat-local
//! stores CRLF already, so for our deliveries it is the file unchanged.
//!
//! Files (per folder, next to `dovecot-uidlist`): `moat-index` (snapshot), `moat-index.log`
//! (changes since), `moat-index.cache` (blobs), `moat-index.lock` (flock). The byte formats are in
//! format.rs, the generation and locking rules in disk.rs, MODSEQ allocation in modseq.rs.

mod blob;
mod codec;
mod disk;
mod format;
mod keywords;
mod lock;
mod modseq;
mod report;
mod salvage;
mod state;
mod store;
mod sync;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::thread;
use std::time::Duration;

use moat_maildir::{Entry, Error, Flags, Maildir, Result};

use disk::{Disk, Loaded};
use lock::Lock;
use report::Reported;
use state::State;
use sync::Rescan;

pub use keywords::{
    KEYWORDS_FILE, Keywords, MAX_KEYWORD_LEN, MAX_KEYWORDS, system_flag_letter, valid_keyword,
};
pub use state::Message;

/// How often an unlocked load retries when it meets files of two generations (a compaction in
/// progress) before waiting for the lock.
const LOAD_RETRIES: usize = 3;

/// A folder's messages at one moment (what SELECT reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// In UID order.
    pub messages: Vec<Message>,
}

/// A message's flags after a change, with the MODSEQ of that change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagChange {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
}

/// What changed since the handle's previous `open`/`sync`. The session applies it to its
/// sequence numbers at the points RFC 3501 allows (EXPUNGE not during FETCH/STORE/SEARCH).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New messages, UIDs ascending and above every UID reported before (EXISTS).
    pub new: Vec<Message>,
    /// Expunged UIDs, ascending.
    pub expunged: Vec<u32>,
    /// Flag changes by others (other sessions, other programs' renames), UIDs ascending.
    pub flags: Vec<FlagChange>,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// `dovecot-keywords` gained names: send FLAGS / PERMANENTFLAGS again.
    pub keywords_changed: bool,
    /// `dovecot-uidlist` was rebuilt with a new UIDVALIDITY: the session must end (BYE); `new`
    /// then holds the whole folder and `expunged` everything reported before.
    pub uid_validity_changed: bool,
}

impl Changes {
    /// True when there is nothing to tell the client (UIDNEXT and HIGHESTMODSEQ aside).
    pub fn is_empty(&self) -> bool {
        self.new.is_empty()
            && self.expunged.is_empty()
            && self.flags.is_empty()
            && !self.keywords_changed
            && !self.uid_validity_changed
    }
}

/// How STORE combines the given flags with a message's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS` (letters without an IMAP name, such as `P`, are kept)
    Replace,
}

/// The result of `store_flags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Messages whose flags changed, with their new flags and MODSEQ.
    pub changed: Vec<FlagChange>,
    /// Messages that already had the requested flags (MODSEQ unchanged).
    pub unchanged: Vec<FlagChange>,
    /// UIDs that failed the UNCHANGEDSINCE test (for the MODIFIED response code).
    pub failed: Vec<u32>,
}

/// IMAP flag names turned into Maildir letters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapFlags {
    pub flags: Flags,
    /// Names that cannot be stored: `\Recent` or unknown system flags, invalid keywords, and
    /// new keywords once all 26 letters are taken.
    pub refused: Vec<String>,
}

impl ImapFlags {
    /// Adds `name`'s letter, or refuses `name` when it has none.
    fn add(&mut self, name: &str, letter: Option<char>) {
        match letter {
            Some(c) => self.flags = self.flags.union(letter_flag(c)),
            None => self.refused.push(name.to_owned()),
        }
    }
}

/// One folder's index, as seen by one session.
pub struct Index {
    maildir: Maildir,
    disk: Disk,
    state: State,
    reported: Reported,
    keywords: Keywords,
}

impl Index {
    /// Opens the folder's index: loads it (rebuilding it if missing or damaged) and syncs it with
    /// the Maildir. Does not move messages from new/ (see `move_new_to_cur`).
    pub fn open(maildir: &Maildir) -> Result<Index> {
        let (disk, state) = load(maildir)?;
        let mut ix = Index {
            maildir: maildir.clone(),
            disk,
            state,
            reported: Reported::default(),
            keywords: Keywords::load(maildir.path())?,
        };
        ix.refresh()?;
        ix.reported = Reported::from_state(&ix.state);
        Ok(ix)
    }

    /// The folder as this handle knows it. Right after `open` (and after a `sync` whose changes
    /// were applied) it is exactly what the session has reported.
    pub fn view(&self) -> View {
        View {
            uid_validity: self.state.uid_validity,
            uid_next: self.state.uid_next,
            highest_modseq: self.state.highest_modseq,
            messages: self
                .state
                .messages
                .values()
                .filter(|m| self.reported.contains(m.uid))
                .cloned()
                .collect(),
        }
    }

    /// Brings the index up to date (scanning the Maildir only if it changed) and returns what
    /// changed since this handle's previous `open` or `sync`.
    pub fn sync(&mut self) -> Result<Changes> {
        let keywords_changed = self.keywords.reload_if_changed(self.maildir.path())?;
        self.refresh()?;
        let mut ch = self.reported.diff(&self.state);
        ch.keywords_changed = keywords_changed;
        Ok(ch)
    }

    /// The maildir this index belongs to.
    pub fn maildir(&self) -> &Maildir {
        &self.maildir
    }

    /// A message by UID, as currently known (may include changes `sync` has not reported yet).
    pub fn message(&self, uid: u32) -> Option<&Message> {
        self.state.messages.get(&uid)
    }

    /// The message with this base name (a linear search: for APPENDUID/COPYUID, not per FETCH).
    pub fn find_base(&self, base: &str) -> Option<&Message> {
        self.state.messages.values().find(|m| m.base() == base)
    }

    /// All messages currently known, in UID order.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.state.messages.values()
    }

    pub fn uid_validity(&self) -> u32 {
        self.state.uid_validity
    }

    pub fn uid_next(&self) -> u32 {
        self.state.uid_next
    }

    pub fn highest_modseq(&self) -> u64 {
        self.state.highest_modseq
    }

    /// Opens a message's file by the name the index knows (one open, no scan of cur/), following
    /// it if it moved. `None` if the UID is unknown or the file is gone.
    pub fn open_message(&self, uid: u32) -> Result<Option<(File, Entry)>> {
        self.check_validity()?;
        let Some(m) = self.state.messages.get(&uid) else {
            return Ok(None);
        };
        match self
            .maildir
            .open_message_hinted(m.base(), m.subdir, &m.file_name)
        {
            Ok(x) => Ok(Some(x)),
            Err(Error::MessageNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The folder's keyword names (as of the last `open`/`sync`/`flags_from_imap`).
    pub fn keywords(&self) -> &Keywords {
        &self.keywords
    }

    /// Turns IMAP flag names into letters for `store_flags` or APPEND, giving new keywords the
    /// next free letter in `dovecot-keywords`.
    pub fn flags_from_imap(&mut self, names: &[&str]) -> Result<ImapFlags> {
        let mut out = ImapFlags::default();
        let mut lock = None;
        // More new keywords than free letters: all of them are refused before any letter is
        // given, or a refused STORE of 10,000 keywords would use up the folder's 26 for good.
        let mut new: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with('\\') && valid_keyword(n))
            .filter(|n| self.keywords.letter(n).is_none())
            .map(|n| n.to_ascii_lowercase())
            .collect();
        if !new.is_empty() {
            lock = Some(Lock::acquire(self.maildir.path())?);
            self.keywords = Keywords::load(self.maildir.path())?;
            new.sort_unstable();
            new.dedup();
            new.retain(|n| self.keywords.letter(n).is_none());
            if new.len() > self.keywords.free() {
                for &name in names {
                    out.add(name, self.known_letter(name));
                }
                return Ok(out);
            }
        }
        for &name in names {
            let letter = match self.known_letter(name) {
                Some(c) => Some(c),
                None if !name.starts_with('\\') && valid_keyword(name) => {
                    if lock.is_none() {
                        lock = Some(Lock::acquire(self.maildir.path())?);
                    }
                    self.keywords.assign(self.maildir.path(), name)?
                }
                None => None,
            };
            out.add(name, letter);
        }
        Ok(out)
    }

    /// Like `flags_from_imap`, but never gives a keyword a letter: keywords the folder does not
    /// know are left out (neither in `flags` nor in `refused`). For `STORE -FLAGS`: removing a
    /// keyword no message can carry is a no-op, and must not use up one of the folder's 26
    /// letters for good. Invalid names and unknown system flags are still `refused`.
    pub fn known_flags_from_imap(&mut self, names: &[&str]) -> Result<ImapFlags> {
        // Another session may just have given a keyword its letter (and set it on messages we
        // are asked to clear): pick up its name first (one stat when nothing changed). A letter
        // keeps its name once given, so no lock is needed to use it.
        self.keywords.reload_if_changed(self.maildir.path())?;
        let mut out = ImapFlags::default();
        for &name in names {
            match self.known_letter(name) {
                None if !name.starts_with('\\') && valid_keyword(name) => {}
                letter => out.add(name, letter),
            }
        }
        Ok(out)
    }

    /// The letter of a system flag (`\Seen`) or of a keyword the folder already has.
    fn known_letter(&self, name: &str) -> Option<char> {
        if name.starts_with('\\') {
            system_flag_letter(name)
        } else {
            self.keywords.letter(name)
        }
    }

    /// Runs `f` under the index lock after reading the log to its end; compacts afterwards if
    /// the log has grown enough.
    fn locked<T>(&mut self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = Lock::acquire(self.maildir.path())?;
        self.catch_up(true)?;
        let result = f(self);
        if self.disk.wants_compaction() {
            let compacted = self.disk.compact(&mut self.state);
            // A failed compaction leaves the current generation intact; report the first error.
            if let (Ok(_), Err(e)) = (&result, compacted) {
                return Err(e);
            }
        }
        result
    }

    /// Like `locked`, for operations that name messages by UID: refuses to run when the folder's
    /// UIDVALIDITY is no longer the one this handle reported (the UID list was rebuilt, so the
    /// UIDs now name other messages). The session then gets `uid_validity_changed` from `sync`
    /// and ends itself.
    fn locked_by_uid<T>(&mut self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        self.locked(|ix| {
            ix.check_validity()?;
            f(ix)
        })
    }

    /// An error if the UIDVALIDITY changed since this handle last reported it.
    fn check_validity(&self) -> Result<()> {
        if self.state.uid_validity == self.reported.uid_validity() {
            return Ok(());
        }
        Err(Error::Corrupt {
            path: self.maildir.uidlist_path(),
            line: 0,
            reason: "UIDVALIDITY changed during the session".to_owned(),
        })
    }

    /// Reads new log records; loads the new generation if the log was replaced.
    fn catch_up(&mut self, have_lock: bool) -> Result<()> {
        if self.disk.catch_up(&mut self.state)? {
            return Ok(());
        }
        let (disk, state) = if have_lock {
            load_locked(&self.maildir, 0)?
        } else {
            load(&self.maildir)?
        };
        self.disk = disk;
        self.state = state;
        Ok(())
    }

    /// Catches up, then scans the Maildir if it changed since the last scan.
    fn refresh(&mut self) -> Result<()> {
        self.catch_up(false)?;
        if sync::unchanged(&self.maildir, &self.state)? {
            return Ok(());
        }
        self.locked(Index::rescan_locked)
    }

    /// The scan itself (lock held, caught up).
    fn rescan_locked(&mut self) -> Result<()> {
        if sync::unchanged(&self.maildir, &self.state)? {
            return Ok(());
        }
        match sync::rescan(&self.maildir, &self.state)? {
            Rescan::Records(recs) => self.disk.append(&mut self.state, &recs),
            Rescan::NewValidity => {
                let (disk, state) = rebuild(&self.maildir, self.state.highest_modseq)?;
                self.disk = disk;
                self.state = state;
                Ok(())
            }
        }
    }
}

fn letter_flag(c: char) -> Flags {
    Flags::parse(c.encode_utf8(&mut [0; 4])).unwrap_or_default()
}

/// Loads the index without the lock if it is consistent; otherwise takes the lock and loads or
/// rebuilds it.
fn load(md: &Maildir) -> Result<(Disk, State)> {
    for attempt in 0..LOAD_RETRIES {
        match Disk::load(md.path())? {
            Loaded::Ready(ready) => return Ok(*ready),
            Loaded::Missing => break,
            Loaded::Unusable => thread::sleep(Duration::from_millis(1 << attempt)),
        }
    }
    let _lock = Lock::acquire(md.path())?;
    load_locked(md, 0)
}

/// Loads the index, rebuilding it if it is missing or damaged (lock held).
fn load_locked(md: &Maildir, highest: u64) -> Result<(Disk, State)> {
    match Disk::load(md.path())? {
        Loaded::Ready(ready) => Ok(*ready),
        Loaded::Missing | Loaded::Unusable => rebuild(md, highest),
    }
}

/// Builds a new index from the Maildir (lock held). MODSEQs start above anything the old files
/// remember and above `highest`; blobs of an old cache with the same UIDVALIDITY are kept.
fn rebuild(md: &Maildir, highest: u64) -> Result<(Disk, State)> {
    let highest = highest.max(salvage::salvage_highest_modseq(md.path()));
    let list = md.sync_uidlist()?;
    let mut state = State {
        uid_validity: list.uid_validity,
        uid_next: 1,
        highest_modseq: highest,
        ..State::default()
    };
    match sync::rescan(md, &state)? {
        Rescan::Records(recs) => state.apply_all(&recs),
        // The list was rebuilt again between our two reads: start from the newest.
        Rescan::NewValidity => {
            return Err(Error::Contended(md.uidlist_path().display().to_string()));
        }
    }
    // All messages share the scan's MODSEQ; an empty folder still moves HIGHESTMODSEQ forward.
    if state.messages.is_empty() {
        state.highest_modseq = modseq::next_modseq(highest);
    }
    let disk = Disk::create(md.path(), &mut state)?;
    Ok((disk, state))
}
