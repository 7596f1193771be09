//! Operations on a message whose current file name the caller already knows (an IMAP index keeps
//! it), so they cost one system call instead of a scan of cur/.
//!
//! `find` by base name is fast only for files in new/ and for cur/ files without flags; anything
//! flagged needs a readdir of cur/, which for a folder of 50,000 messages is tens of milliseconds
//! per message. With the hint, the file is opened, renamed or unlinked by its name directly; when it
//! has moved since (another client changed its flags), the operation falls back to the by-base-name
//! path, which follows the message wherever it went. The hint is checked to be a plain file name of
//! that base, so a corrupt index cannot point these functions outside new/ and cur/.

use std::fs::{self, File};
use std::io;

use crate::error::{Error, Result, io_err};
use crate::flags::Flags;
use crate::list::Entry;
use crate::maildir::{Maildir, Subdir};
use crate::name::{is_message_file_name, split_info, validate_base};
use crate::quota::append_delta;

impl Maildir {
    /// The entry for `file_name` in `sub` if it is still there (a stat only when the name carries
    /// no size). Refuses hints that are not a file name of `base`.
    fn hinted_entry(&self, base: &str, sub: Subdir, file_name: &str) -> Result<Option<Entry>> {
        validate_base(base)?;
        if split_info(file_name).0 != base
            || file_name.contains('/')
            || !is_message_file_name(file_name)
        {
            return Err(Error::InvalidMessageName(file_name.to_owned()));
        }
        let path = self.subdir(sub).join(file_name);
        let entry = self.entry_for(sub, file_name, || fs::metadata(&path))?;
        // `entry_for` skips the stat when the name has a size, so existence is checked when used.
        Ok(entry)
    }

    /// Opens a message, trying `sub/file_name` first (see the module header).
    pub fn open_message_hinted(
        &self,
        base: &str,
        sub: Subdir,
        file_name: &str,
    ) -> Result<(File, Entry)> {
        if let Some(entry) = self.hinted_entry(base, sub, file_name)? {
            match File::open(&entry.path) {
                Ok(f) => return Ok((f, entry)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("open", &entry.path)(e)),
            }
        }
        self.open_message(base)
    }

    /// Changes a message's flags to `compute(current flags)`, moving it to cur/, trying
    /// `sub/file_name` first. Compare-and-swap like `update_flags`: if someone renamed the file
    /// first, the current flags are re-read and `compute` applied to them. Returns the entry as it
    /// is now.
    pub fn modify_flags_hinted(
        &self,
        base: &str,
        sub: Subdir,
        file_name: &str,
        compute: impl Fn(Flags) -> Flags,
    ) -> Result<Entry> {
        let hint = self.hinted_entry(base, sub, file_name)?;
        self.change_flags(base, hint, compute)
    }

    /// Deletes a message like `expunge`, trying `sub/file_name` first. Returns the size freed;
    /// `MessageNotFound` if it was already gone.
    pub fn expunge_hinted(&self, base: &str, sub: Subdir, file_name: &str) -> Result<u64> {
        if let Some(entry) = self.hinted_entry(base, sub, file_name)? {
            match fs::remove_file(&entry.path) {
                Ok(()) => {
                    let bytes = i64::try_from(entry.size).unwrap_or(i64::MAX);
                    let _ = append_delta(self.root(), -bytes, -1);
                    return Ok(entry.size);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("unlink", &entry.path)(e)),
            }
        }
        self.expunge(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::test_support::setup;

    fn file_name(e: &Entry) -> String {
        e.path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned()
    }

    #[test]
    fn hinted_operations_use_the_hint_and_follow_moves() {
        let (_d, md) = setup();
        let base = md.deliver(b"hello").expect("deliver");
        // Exact hint: new/<base>.
        let (mut f, e) = md
            .open_message_hinted(&base, Subdir::New, &base)
            .expect("open");
        let mut s = String::new();
        f.read_to_string(&mut s).expect("read");
        assert_eq!((s.as_str(), e.subdir), ("hello", Subdir::New));
        let e = md
            .modify_flags_hinted(&base, Subdir::New, &base, |f| f.union(Flags::SEEN))
            .expect("flag");
        assert_eq!(file_name(&e), format!("{base}:2,S"));
        // Stale hint (still says new/): followed by base name.
        let e = md
            .modify_flags_hinted(&base, Subdir::New, &base, |f| f.union(Flags::FLAGGED))
            .expect("follow");
        assert_eq!(e.flags.to_string(), "FS");
        let (_, e2) = md
            .open_message_hinted(&base, Subdir::Cur, &format!("{base}:2,S"))
            .expect("open stale");
        assert_eq!(e2.flags.to_string(), "FS");
        assert_eq!(
            md.expunge_hinted(&base, Subdir::Cur, &format!("{base}:2,S"))
                .expect("expunge stale"),
            5
        );
        assert!(matches!(
            md.expunge_hinted(&base, Subdir::Cur, &file_name(&e)),
            Err(Error::MessageNotFound(_))
        ));
    }

    #[test]
    fn hints_that_are_not_names_of_the_base_are_refused() {
        let (_d, md) = setup();
        let base = md.deliver(b"x").expect("deliver");
        for bad in [
            "../../etc/passwd".to_owned(),
            format!("{base}/x"),
            "other:2,S".to_owned(),
            format!("{base}\n"),
        ] {
            assert!(
                matches!(
                    md.open_message_hinted(&base, Subdir::Cur, &bad),
                    Err(Error::InvalidMessageName(_))
                ),
                "{bad:?}"
            );
            assert!(md.expunge_hinted(&base, Subdir::Cur, &bad).is_err());
            assert!(
                md.modify_flags_hinted(&base, Subdir::Cur, &bad, |f| f)
                    .is_err()
            );
        }
        assert_eq!(md.list().expect("list").len(), 1, "nothing touched");
    }
}
