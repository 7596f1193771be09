//! Reading a maildir: listing new/ and cur/, finding a message by base name, reading it, changing its
//! flags and expunging it.
//!
//! Other processes move files under us all the time (an IMAP session sets \Seen while another
//! expunges; a POP3 session moves new/ to cur/). Nothing here locks. Instead, every operation that
//! names a file treats ENOENT as "it moved": it re-scans for the base name and retries. A flag change
//! is a `rename(old name, new name)`, which fails with ENOENT if someone else renamed the file first;
//! re-reading the current flags and retrying makes flag updates compare-and-swap, so concurrent
//! "add \Seen" and "add \Flagged" both survive. Flag renames are not fsynced (as in Dovecot): a crash
//! can lose a flag change, never a message.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use crate::error::{Error, Result, io_err};
use crate::flags::Flags;
use crate::maildir::{Maildir, Subdir};
use crate::name::{delivery_order, is_message_file_name, size_field, split_info, validate_base};
use crate::quota::append_delta;

/// How often an operation re-scans after its file was moved by someone else before giving up.
const MAX_RETRIES: usize = 32;

/// One message as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The base name (file name without the `:2,...` info): stable for the message's life.
    pub base: String,
    /// The flags from the info suffix (always empty in new/).
    pub flags: Flags,
    /// Which directory it is in.
    pub subdir: Subdir,
    /// Full path of the file at the time of listing.
    pub path: PathBuf,
    /// Size in bytes: from `,S=` in the name, else from stat.
    pub size: u64,
    /// The CRLF size from `,W=` if the name has it.
    pub vsize: Option<u64>,
}

impl Maildir {
    /// Lists the messages in new/ and cur/, in delivery order (the order UIDs are assigned in).
    /// A message seen in both (moved during the scan) is listed once, from cur/.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut by_base: HashMap<String, Entry> = HashMap::new();
        for sub in [Subdir::New, Subdir::Cur] {
            for entry in self.scan_dir(sub)? {
                by_base.insert(entry.base.clone(), entry);
            }
        }
        let mut entries: Vec<Entry> = by_base.into_values().collect();
        entries.sort_by(|a, b| delivery_order(&a.base, &b.base));
        Ok(entries)
    }

    /// Reads one directory. Files that vanish during the scan are skipped.
    fn scan_dir(&self, sub: Subdir) -> Result<Vec<Entry>> {
        let dir = self.subdir(sub);
        let mut out = Vec::new();
        for dirent in fs::read_dir(&dir).map_err(io_err("readdir", &dir))? {
            let dirent = dirent.map_err(io_err("readdir", &dir))?;
            let file_name = dirent.file_name();
            // Non-UTF-8 names cannot have come from a Maildir deliverer; they are skipped, not fatal.
            let Some(name) = file_name.to_str().filter(|n| is_message_file_name(n)) else {
                continue;
            };
            if let Some(entry) = self.entry_for(sub, name, || dirent.metadata())? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Builds an entry; `stat` is only called when the name carries no size (or to skip directories
    /// when the file type is unknown). Returns None for non-files and files that vanished.
    pub(crate) fn entry_for(
        &self,
        sub: Subdir,
        name: &str,
        stat: impl FnOnce() -> io::Result<fs::Metadata>,
    ) -> Result<Option<Entry>> {
        let (base, info) = split_info(name);
        let path = self.subdir(sub).join(name);
        let size = match size_field(base, 'S') {
            Some(s) => s,
            None => match stat() {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("stat", path)(e)),
            },
        };
        Ok(Some(Entry {
            base: base.to_owned(),
            flags: info.map(Flags::from_info).unwrap_or_default(),
            subdir: sub,
            path,
            size,
            vsize: size_field(base, 'W'),
        }))
    }

    /// Finds the current file of a message by base name. `MessageNotFound` if it is in neither
    /// new/ nor cur/ (after a re-check, in case it was being moved).
    pub fn find(&self, base: &str) -> Result<Entry> {
        validate_base(base)?;
        for _ in 0..2 {
            // new/ first: the file's name there is exactly the base name, so one stat answers.
            let in_new = self.subdir(Subdir::New).join(base);
            if let Some(e) = self.entry_for(Subdir::New, base, || fs::metadata(&in_new))?
                && e.path.exists()
            {
                return Ok(e);
            }
            // Common case in cur/: no flags yet.
            let plain = format!("{base}:2,");
            let plain_path = self.subdir(Subdir::Cur).join(&plain);
            if plain_path.exists()
                && let Some(e) =
                    self.entry_for(Subdir::Cur, &plain, || fs::metadata(&plain_path))?
            {
                return Ok(e);
            }
            if let Some(e) = self
                .scan_dir(Subdir::Cur)?
                .into_iter()
                .find(|e| e.base == base)
            {
                return Ok(e);
            }
        }
        Err(Error::MessageNotFound(base.to_owned()))
    }

    /// Opens a message for reading, following it if it is moved between lookup and open.
    pub fn open_message(&self, base: &str) -> Result<(File, Entry)> {
        for _ in 0..MAX_RETRIES {
            let entry = self.find(base)?;
            match File::open(&entry.path) {
                Ok(f) => return Ok((f, entry)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open", &entry.path)(e)),
            }
        }
        Err(Error::Contended(base.to_owned()))
    }

    /// Reads a whole message.
    pub fn read(&self, base: &str) -> Result<Vec<u8>> {
        let (mut file, entry) = self.open_message(base)?;
        let mut data = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0).min(64 << 20));
        file.read_to_end(&mut data)
            .map_err(io_err("read", &entry.path))?;
        Ok(data)
    }

    /// Replaces a message's flags. Moves it from new/ to cur/ (a message in cur/ has been seen by a
    /// client, even with no flags). Returns the entry as it is now.
    pub fn set_flags(&self, base: &str, flags: Flags) -> Result<Entry> {
        self.change_flags(base, None, |_| flags)
    }

    /// Adds and removes flags relative to the current ones, atomically with respect to other flag
    /// changes (see the module header). Returns the entry as it is now.
    pub fn update_flags(&self, base: &str, add: Flags, remove: Flags) -> Result<Entry> {
        self.change_flags(base, None, |current| current.union(add).difference(remove))
    }

    /// Like `update_flags`, starting from an entry the caller already has (e.g. from `list`), which
    /// saves the scan of cur/ when the file has not moved since.
    pub fn update_entry_flags(&self, entry: &Entry, add: Flags, remove: Flags) -> Result<Entry> {
        self.change_flags(&entry.base, Some(entry.clone()), |current| {
            current.union(add).difference(remove)
        })
    }

    pub(crate) fn change_flags(
        &self,
        base: &str,
        hint: Option<Entry>,
        compute: impl Fn(Flags) -> Flags,
    ) -> Result<Entry> {
        validate_base(base)?;
        let mut hint = hint;
        for _ in 0..MAX_RETRIES {
            let (entry, hinted) = match hint.take() {
                Some(e) => (e, true),
                None => (self.find(base)?, false),
            };
            let flags = compute(entry.flags);
            let target_name = format!("{base}:{}", flags.to_info());
            let target = self.subdir(Subdir::Cur).join(&target_name);
            if entry.path == target {
                // Already as wanted, unless a caller's hint is out of date.
                if !hinted || target.exists() {
                    return Ok(entry);
                }
                continue;
            }
            match fs::rename(&entry.path, &target) {
                Ok(()) => {
                    return Ok(Entry {
                        flags,
                        subdir: Subdir::Cur,
                        path: target,
                        ..entry
                    });
                }
                // Someone else renamed (or expunged) it first: look again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("rename", &entry.path)(e)),
            }
        }
        Err(Error::Contended(base.to_owned()))
    }

    /// Deletes a message (IMAP EXPUNGE, POP3 DELE+QUIT). Updates maildirsize if it exists.
    /// Returns the size that was freed. `MessageNotFound` if it was already gone.
    pub fn expunge(&self, base: &str) -> Result<u64> {
        for _ in 0..MAX_RETRIES {
            let entry = self.find(base)?;
            match fs::remove_file(&entry.path) {
                Ok(()) => {
                    let bytes = i64::try_from(entry.size).unwrap_or(i64::MAX);
                    let _ = append_delta(self.root(), -bytes, -1);
                    return Ok(entry.size);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("unlink", &entry.path)(e)),
            }
        }
        Err(Error::Contended(base.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::test_support::setup;

    #[test]
    fn list_in_delivery_order_with_sizes() {
        let (_d, md) = setup();
        let a = md.deliver(b"one\n").expect("a");
        let b = md.deliver(b"two two\n").expect("b");
        md.set_flags(&a, Flags::SEEN).expect("flag a");
        let list = md.list().expect("list");
        assert_eq!(
            list.iter().map(|e| e.base.as_str()).collect::<Vec<_>>(),
            vec![a.as_str(), b.as_str()]
        );
        assert_eq!(list[0].subdir, Subdir::Cur);
        assert_eq!(list[0].flags, Flags::SEEN);
        assert_eq!((list[0].size, list[0].vsize), (4, Some(5)));
        assert_eq!(list[1].subdir, Subdir::New);
        assert_eq!(list[1].size, 8);
    }

    #[test]
    fn foreign_files_are_listed_with_stat_sizes_and_junk_is_skipped() {
        let (_d, md) = setup();
        fs::write(md.subdir(Subdir::Cur).join("123.456.host:2,RS"), b"abc").expect("foreign");
        fs::write(md.subdir(Subdir::New).join(".hidden"), b"x").expect("dotfile");
        fs::create_dir(md.subdir(Subdir::New).join("subdir")).expect("dir");
        fs::write(md.subdir(Subdir::New).join("bad\nname"), b"x").expect("newline");
        let list = md.list().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].base, "123.456.host");
        assert_eq!(list[0].flags.to_string(), "RS");
        assert_eq!(list[0].size, 3);
        assert_eq!(list[0].vsize, None);
    }

    #[test]
    fn flags_move_to_cur_and_keep_keywords_sorted() {
        let (_d, md) = setup();
        let base = md.deliver(b"x").expect("deliver");
        let e = md
            .update_flags(&base, Flags::parse("bS").expect("flags"), Flags::empty())
            .expect("flags");
        assert_eq!(
            e.path.file_name().and_then(|n| n.to_str()),
            Some(format!("{base}:2,Sb").as_str())
        );
        let e = md
            .update_flags(&base, Flags::parse("aF").expect("flags"), Flags::SEEN)
            .expect("flags");
        assert_eq!(e.flags.to_string(), "Fab");
        assert_eq!(md.find(&base).expect("find").flags.to_string(), "Fab");
        let e = md.set_flags(&base, Flags::empty()).expect("clear");
        assert!(e.path.to_string_lossy().ends_with(":2,"));
        assert_eq!(md.read(&base).expect("read"), b"x");
        assert_eq!(md.list().expect("list").len(), 1);
    }

    #[test]
    fn invalid_names_and_missing_messages() {
        let (_d, md) = setup();
        for bad in ["../../etc/passwd", "a/b", "", "x:2,S", "\0"] {
            assert!(
                matches!(md.read(bad), Err(Error::InvalidMessageName(_))),
                "{bad:?}"
            );
            assert!(matches!(
                md.set_flags(bad, Flags::SEEN),
                Err(Error::InvalidMessageName(_))
            ));
            assert!(matches!(md.expunge(bad), Err(Error::InvalidMessageName(_))));
        }
        assert!(matches!(
            md.read("1.M1P1.nothere"),
            Err(Error::MessageNotFound(_))
        ));
        assert!(matches!(
            md.set_flags("1.M1P1.nothere", Flags::SEEN),
            Err(Error::MessageNotFound(_))
        ));
    }

    #[test]
    fn expunge_removes_and_reports_size() {
        let (_d, md) = setup();
        let base = md.deliver(b"12345").expect("deliver");
        md.set_flags(&base, Flags::TRASHED).expect("flag");
        assert_eq!(md.expunge(&base).expect("expunge"), 5);
        assert!(md.list().expect("list").is_empty());
        assert!(matches!(md.expunge(&base), Err(Error::MessageNotFound(_))));
    }

    #[test]
    fn concurrent_flag_changes_all_survive() {
        let (_d, md) = setup();
        let md = Arc::new(md);
        let bases: Arc<Vec<String>> = Arc::new(
            (0..40)
                .map(|i| md.deliver(format!("m{i}").as_bytes()).expect("deliver"))
                .collect(),
        );
        // Each thread adds its own letter to every message, and toggles a shared one on and off.
        let letters = ['S', 'F', 'R', 'a', 'b', 'c'];
        let threads: Vec<_> = letters
            .iter()
            .map(|&letter| {
                let md = Arc::clone(&md);
                let bases = Arc::clone(&bases);
                std::thread::spawn(move || {
                    let own = Flags::parse(&letter.to_string()).expect("flag");
                    for round in 0..3 {
                        for base in bases.iter() {
                            md.update_flags(base, Flags::DRAFT, Flags::empty())
                                .expect("add D");
                            if round == 2 {
                                md.update_flags(base, own, Flags::empty()).expect("add own");
                            }
                            md.update_flags(base, Flags::empty(), Flags::DRAFT)
                                .expect("remove D");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let list = md.list().expect("list");
        assert_eq!(list.len(), 40, "no message lost");
        for e in list {
            assert_eq!(e.subdir, Subdir::Cur);
            for &l in &letters {
                assert!(e.flags.has(l), "{} lost {l}: {}", e.base, e.flags);
            }
            assert_eq!(md.read(&e.base).expect("read").len(), e.size as usize);
        }
    }

    #[test]
    fn stale_entry_hint_is_followed() {
        let (_d, md) = setup();
        let base = md.deliver(b"x").expect("deliver");
        let stale = md.find(&base).expect("find");
        md.set_flags(&base, Flags::SEEN).expect("move to cur");
        let e = md
            .update_entry_flags(&stale, Flags::FLAGGED, Flags::empty())
            .expect("follow");
        assert_eq!(e.flags.to_string(), "FS");
    }
}
