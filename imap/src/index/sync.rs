//! Bringing the index in line with the Maildir: the scan that notices deliveries, expunges and
//! flag renames made by anyone (our sessions, POP3, moat-local, another IMAP server).
//!
//! **When to list a directory.** A scan records the stamps (inode, size, mtime) of new/, cur/ and
//! `dovecot-uidlist` taken *before* it read the directories. A later sync compares them with the
//! current ones: a directory whose stamp is unchanged is not listed again (its files are the ones
//! the index has), so re-opening an unchanged folder lists nothing, and a delivery into a folder
//! of 50,000 messages lists only new/. Directory mtimes have a granularity (a clock tick, a
//! second on some file systems): a change made in the same tick as our stat would leave the mtime
//! equal. So a stamp is *stable*, and trusted later, only if its mtime was at least
//! `STABLE_AFTER` old when taken (100 ms where mtimes have nanoseconds, 2 s where they may be
//! whole seconds); an unstable one makes every sync list that directory until it has been quiet
//! that long.
//!
//! **What the scan decides** (under the index lock, after reading the log to its end):
//! * nothing, for a listed name that is exactly the indexed file name of its base name in the
//!   same directory (one lookup in the base-name map `State` keeps up to date, nothing
//!   allocated: the names of a listing share one buffer). When every message is accounted for
//!   that way, the scan is done with the listing; otherwise every message is looked for as
//!   follows:
//! * a known message whose file name changed: a `name` record, with a new MODSEQ if its flags
//!   differ (a rename by another process is a flag change like ours), without one otherwise
//!   (a new/ → cur/ move);
//! * a known message missing from the listing: listed a second time first, because `readdir` is
//!   not a snapshot and a file being renamed can be missed once (the UID sync does the same);
//!   missing twice is an expunge;
//! * an unknown base name: its UID comes from `dovecot-uidlist` (synced when it does not know
//!   the name yet); the file is stat()ed for INTERNALDATE, and read only when its name has no
//!   `,W=` size (files of other deliverers), to count the CRLF size once.
//!
//! One MODSEQ serves the whole scan (one transaction in RFC 7162 terms).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Mode, OFlags};

use moat_maildir::{Error, Maildir, Result, Subdir, UidList, size_field, split_info};

use super::blob::measure_message;
use super::disk::io_err;
use super::format::{LogRec, flags_of, valid_file_name};
use super::modseq::next_modseq;
use super::state::{Message, Stamp, Stamps, State};

/// How old directory mtimes must be for their stamps to be trusted (see the module header),
/// on a file system that may keep whole seconds only (ext3, FAT keeps two).
const STABLE_AFTER: Duration = Duration::from_secs(2);
/// The same where the mtime has a sub-second part (ext4, xfs, btrfs, tmpfs): the kernel stamps
/// files from its coarse clock, which trails the precise one by at most a tick (10 ms at
/// HZ=100), so an mtime this old is from a finished tick and any later change gets a later one.
/// Without this, a folder touched in the last 2 s was listed by every command: 50,000 names,
/// 10 to 25 ms, after each FETCH of a session that had just changed flags.
const STABLE_AFTER_FINE: Duration = Duration::from_millis(100);

/// Whether a stamp taken at `now_ns` may be trusted later (see `STABLE_AFTER`). An mtime on an
/// exact second is taken as coming from a whole-second file system: it waits the long time.
fn stable(stamp: &Stamp, now_ns: u64) -> bool {
    let quiet = if stamp.mtime_ns.is_multiple_of(1_000_000_000) {
        STABLE_AFTER
    } else {
        STABLE_AFTER_FINE
    };
    let quiet = u64::try_from(quiet.as_nanos()).unwrap_or(u64::MAX);
    stamp.mtime_ns.saturating_add(quiet) <= now_ns
}

/// What a scan found.
pub(crate) enum Rescan {
    /// Records to append (ending with a `scan` record; none when nothing changed).
    Records(Vec<LogRec>),
    /// `dovecot-uidlist` was rebuilt with a new UIDVALIDITY: the index must be rebuilt too.
    NewValidity,
}

fn stamp(path: &Path) -> Result<Stamp> {
    match fs::metadata(path) {
        Ok(m) => Ok(Stamp {
            ino: m.ino(),
            size: m.len(),
            mtime_ns: u64::try_from(m.mtime())
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(m.mtime_nsec()).unwrap_or(0)),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Stamp::default()),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// True when the Maildir certainly has not changed since the last scan (three stats).
pub(crate) fn unchanged(md: &Maildir, state: &State) -> Result<bool> {
    let s = &state.stamps;
    Ok(s.new_stable
        && s.cur_stable
        && stamp(&md.subdir(Subdir::Cur))? == s.cur
        && stamp(&md.subdir(Subdir::New))? == s.new
        && stamp(&md.uidlist_path())? == s.uidlist)
}

/// The names a listing found, each with its directory. The names share one buffer: a listing
/// of 50,000 files, made at every sync while a directory is unstable, would otherwise allocate
/// 50,000 strings.
#[derive(Default)]
struct Listing {
    text: String,
    entries: Vec<(Subdir, usize, usize)>,
}

impl Listing {
    fn push(&mut self, sub: Subdir, name: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        self.entries.push((sub, start, self.text.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (Subdir, &str)> + '_ {
        self.entries
            .iter()
            .filter_map(|&(sub, a, b)| self.text.get(a..b).map(|n| (sub, n)))
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Adds the file names in new/ or cur/ that can be messages the index can record (one readdir,
/// no stat: directories are told apart by the entry's type). Names the index format refuses are
/// treated as absent: a record readers cannot decode would stop every reader at it.
#[cfg(target_os = "linux")]
fn list_dir(md: &Maildir, sub: Subdir, out: &mut Listing) -> Result<()> {
    use rustix::fs::{FileType, RawDir};
    let dir = md.subdir(sub);
    let fd = open_dir(&dir)?;
    // getdents into one buffer: std's read_dir allocates a name per entry.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut raw = RawDir::new(&fd, buf.spare_capacity_mut());
    while let Some(entry) = raw.next() {
        let entry = entry.map_err(|e| io_err("readdir", &dir)(e.into()))?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            // No type in the entry (some file systems): look, as std's DirEntry::file_type does.
            FileType::Unknown => rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            _ => false,
        };
        if is_dir {
            continue;
        }
        if let Ok(name) = name.to_str()
            && valid_file_name(name)
        {
            out.push(sub, name);
        }
    }
    Ok(())
}

/// As above, through std where getdents is not available.
#[cfg(not(target_os = "linux"))]
fn list_dir(md: &Maildir, sub: Subdir, out: &mut Listing) -> Result<()> {
    let dir = md.subdir(sub);
    for entry in fs::read_dir(&dir).map_err(io_err("readdir", &dir))? {
        let entry = entry.map_err(io_err("readdir", &dir))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string()
            && valid_file_name(&name)
        {
            out.push(sub, &name);
        }
    }
    Ok(())
}

/// Lists the directories not trusted. A base name found in both (moved during the listing)
/// counts once, from cur/, as the maildir crate does.
fn list(md: &Maildir, new: bool, cur: bool) -> Result<Listing> {
    let mut out = Listing::default();
    if cur {
        list_dir(md, Subdir::Cur, &mut out)?;
    }
    let cur_count = out.len();
    if new {
        list_dir(md, Subdir::New, &mut out)?;
    }
    if cur_count > 0 && out.len() > cur_count {
        // new/ is usually the small one: look the cur/ names up in a set of its bases.
        let new_bases: HashSet<&str> = out
            .iter()
            .skip(cur_count)
            .map(|(_, n)| split_info(n).0)
            .collect();
        let moved: HashSet<&str> = out
            .iter()
            .take(cur_count)
            .map(|(_, n)| split_info(n).0)
            .filter(|b| new_bases.contains(b))
            .collect();
        if !moved.is_empty() {
            let keep: Vec<(Subdir, usize, usize)> = out
                .entries
                .iter()
                .copied()
                .filter(|&(sub, a, b)| {
                    sub == Subdir::Cur
                        || out
                            .text
                            .get(a..b)
                            .is_none_or(|n| !moved.contains(split_info(n).0))
                })
                .collect();
            drop(moved);
            drop(new_bases);
            out.entries = keep;
        }
    }
    Ok(out)
}

/// Records where a message was found; a file in cur/ wins over one in new/ (moved meanwhile).
fn see<'a>(seen: &mut HashMap<u32, (Subdir, &'a str)>, uid: u32, sub: Subdir, name: &'a str) {
    let slot = seen.entry(uid).or_insert((sub, name));
    if slot.0 == Subdir::New {
        *slot = (sub, name);
    }
}

/// Compares the Maildir with `state` and returns the records that make the index match it.
pub(crate) fn rescan(md: &Maildir, state: &State) -> Result<Rescan> {
    let started = now_ns();
    let new_stamp = stamp(&md.subdir(Subdir::New))?;
    let cur_stamp = stamp(&md.subdir(Subdir::Cur))?;
    let uidlist_before = stamp(&md.uidlist_path())?;
    let old = &state.stamps;
    let list_new = !(old.new_stable && old.new == new_stamp);
    let list_cur = !(old.cur_stable && old.cur == cur_stamp);
    let mut new_stable = stable(&new_stamp, started);
    let mut cur_stable = stable(&cur_stamp, started);
    let listed = |sub: Subdir| match sub {
        Subdir::New => list_new,
        Subdir::Cur => list_cur,
    };

    let scan_a = list(md, list_new, list_cur)?;
    let mut unknown: Vec<(Subdir, &str)> = Vec::new();
    // Fast path (see the module header): count the listed files that are exactly where and as
    // the index has them; one lookup per name, nothing allocated. Messages in a directory that
    // was not listed are where the index last saw them.
    let mut in_place = if list_new && list_cur {
        0
    } else {
        state
            .messages
            .values()
            .filter(|m| !listed(m.subdir))
            .count()
    };
    let mut elsewhere = false;
    for (sub, name) in scan_a.iter() {
        match state.place_of(name) {
            None => unknown.push((sub, name)),
            Some(p)
                if p.subdir == sub
                    && p.suffix
                        .is(name.get(split_info(name).0.len()..).unwrap_or_default()) =>
            {
                in_place += 1;
            }
            Some(_) => elsewhere = true,
        }
    }

    let modseq = next_modseq(state.highest_modseq);
    let mut recs = Vec::new();
    if elsewhere || in_place != state.messages.len() {
        // Something was renamed or is missing: find where every message is.
        let scan_b;
        let mut seen: HashMap<u32, (Subdir, &str)> = HashMap::with_capacity(state.messages.len());
        for m in state.messages.values().filter(|m| !listed(m.subdir)) {
            see(&mut seen, m.uid, m.subdir, &m.file_name);
        }
        for (sub, name) in scan_a.iter() {
            if let Some(uid) = state.place_of(name).map(|p| p.uid) {
                see(&mut seen, uid, sub, name);
            }
        }
        if seen.len() < state.messages.len() {
            scan_b = list(md, list_new, list_cur)?;
            for (sub, name) in scan_b.iter() {
                if let Some(uid) = state.place_of(name).map(|p| p.uid)
                    && !seen.contains_key(&uid)
                {
                    seen.insert(uid, (sub, name));
                }
            }
        }
        for m in state.messages.values() {
            match seen.get(&m.uid) {
                None => recs.push(LogRec::Expunge { uid: m.uid, modseq }),
                Some(&(sub, name)) if name != m.file_name || sub != m.subdir => {
                    recs.push(LogRec::Name {
                        uid: m.uid,
                        modseq: if flags_of(name) != m.flags { modseq } else { 0 },
                        subdir: sub,
                        file_name: name.to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
    }

    let mut uid_next = state.uid_next;
    let mut uidlist_stamp = old.uidlist;
    if !unknown.is_empty() || uidlist_before != old.uidlist {
        uidlist_stamp = uidlist_before;
        let read = match md.read_uidlist() {
            Ok(list) => list,
            Err(Error::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let knows_all = |l: &UidList| {
            let map = l.uid_map();
            unknown
                .iter()
                .all(|(_, n)| map.contains_key(split_info(n).0))
        };
        let list = match read.filter(knows_all) {
            Some(list) => list,
            None => {
                // Only a sync (under the UID list's lock) gives new files their UIDs.
                let list = md.sync_uidlist()?;
                uidlist_stamp = stamp(&md.uidlist_path())?;
                list
            }
        };
        if list.uid_validity != state.uid_validity {
            return Ok(Rescan::NewValidity);
        }
        let (adds, complete) = new_messages(md, state, &list, &unknown, modseq, &mut recs)?;
        if !complete {
            // Some files get their record at a later sync: list again next time.
            new_stable = false;
            cur_stable = false;
        }
        // UIDNEXT must not pass a UID we have not indexed yet (a delivery the UID list knows
        // but our listing missed): that message would later appear below UIDNEXT.
        let added: HashSet<u32> = adds.iter().map(|m| m.uid).collect();
        let max_known = state.max_uid();
        let pending = list
            .records()
            .iter()
            .map(|r| r.uid)
            .find(|&u| u > max_known && !added.contains(&u));
        uid_next = uid_next.max(pending.map_or(list.next_uid, |p| p.min(list.next_uid)));
        recs.extend(adds.into_iter().map(LogRec::Add));
    }
    let stamps = Stamps {
        new_stable,
        cur_stable,
        new: new_stamp,
        cur: cur_stamp,
        uidlist: uidlist_stamp,
    };
    // Nothing new to say: no record (sessions syncing while the directories are still unstable
    // would otherwise grow the log by one record each).
    if recs.is_empty() && stamps == *old && uid_next == state.uid_next {
        return Ok(Rescan::Records(recs));
    }
    recs.push(LogRec::Scan { uid_next, stamps });
    Ok(Rescan::Records(recs))
}

/// Records for the unknown files the UID list has UIDs for, sorted by UID. The bool is false
/// when some could not be indexed yet (no UID yet, or the file moved while we looked).
fn new_messages(
    md: &Maildir,
    state: &State,
    list: &UidList,
    unknown: &[(Subdir, &str)],
    modseq: u64,
    recs: &mut Vec<LogRec>,
) -> Result<(Vec<Message>, bool)> {
    if unknown.is_empty() {
        return Ok((Vec::new(), true));
    }
    let map = list.uid_map();
    let mut complete = true;
    let mut adds = Vec::with_capacity(unknown.len());
    // Files are stat'ed relative to their directory: a first SELECT stats every file, and
    // resolving each one's full path again was a good part of it.
    let new_dir = open_dir(&md.subdir(Subdir::New))?;
    let cur_dir = open_dir(&md.subdir(Subdir::Cur))?;
    for &(sub, name) in unknown {
        let Some(&uid) = map.get(split_info(name).0) else {
            complete = false;
            continue;
        };
        if state.messages.contains_key(&uid) {
            // The UID list gave a known UID to another file (a Dovecot list naming a file twice
            // keeps the later UID): the old message is gone.
            recs.push(LogRec::Expunge { uid, modseq });
        }
        let dir = match sub {
            Subdir::New => &new_dir,
            Subdir::Cur => &cur_dir,
        };
        match index_file(md, dir, sub, name, uid, modseq)? {
            Some(m) => adds.push(m),
            None => complete = false,
        }
    }
    adds.sort_by_key(|m| m.uid);
    Ok((adds, complete))
}

/// A new message record for a listed file; `None` if the file moved before we could stat it.
fn index_file(
    md: &Maildir,
    dir: &OwnedFd,
    sub: Subdir,
    name: &str,
    uid: u32,
    modseq: u64,
) -> Result<Option<Message>> {
    let meta = match rustix::fs::statat(dir, name, AtFlags::empty()) {
        Ok(m) => m,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(err) => return Err(io_err("stat", &md.subdir(sub).join(name))(err.into())),
    };
    let base = split_info(name).0;
    let (file_size, size) = match (size_field(base, 'S'), size_field(base, 'W')) {
        (s, Some(w)) => (s.unwrap_or(u64::try_from(meta.st_size).unwrap_or(0)), w),
        _ => match measure_message(md, sub, name, base)? {
            Some(sizes) => sizes,
            None => return Ok(None),
        },
    };
    Ok(Some(Message {
        uid,
        subdir: sub,
        file_name: name.to_owned(),
        flags: flags_of(name),
        modseq,
        size,
        file_size,
        internal_date: meta.st_mtime,
        blob: None,
    }))
}

/// Opens a Maildir subdirectory to stat its files relative to it.
fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", path)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_mtimes_settle_sooner_than_whole_seconds() {
        const S: u64 = 1_000_000_000;
        let at = |mtime_ns| Stamp {
            ino: 1,
            size: 4096,
            mtime_ns,
        };
        // Nanosecond mtimes: a tenth of a second later the tick is surely over.
        assert!(!stable(&at(100 * S + 5), 100 * S + 50_000_000));
        assert!(stable(&at(100 * S + 5), 100 * S + 100_000_005));
        // An mtime on the second may come from a whole-second file system: wait 2 s.
        assert!(!stable(&at(100 * S), 101 * S));
        assert!(stable(&at(100 * S), 102 * S));
    }
}
