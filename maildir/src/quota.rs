//! Maildir++ quota: the `maildirsize` file in the Maildir++ root.
//!
//! Format (Courier's README.maildirquota, also read and written by Dovecot, maildrop, Exim):
//! ```text
//! 1000000S,1000C        <- quota definition: byte limit S, message-count limit C (0 or absent = none)
//! 123456 42             <- usage at the last recalculation: bytes, messages
//! 4096 1                <- one line appended per delivery (O_APPEND, so no lock is needed) ...
//! -4096 -1              <- ... and per expunge
//! ```
//! Usage is the sum of all lines after the first. The file is rebuilt from a scan of every folder's
//! new/ and cur/ (sizes from `,S=`, else stat) when it is missing or unparseable, when it has grown past
//! 5120 bytes, when the configured limit differs from the file's header, and, as the spec says, when a
//! delivery would go over quota and the file is more than 15 minutes old (so a stale figure can never
//! keep a user locked out for long). A rebuild that races with deliveries may be slightly off; the spec
//! accepts that, and the next rebuild corrects it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result, io_err};
use crate::folder::folder_dirs;
use crate::fsutil::read_if_exists;
use crate::maildir::Maildir;
use crate::maildirsize::{Maildirsize, QuotaLimit, QuotaUsage};
use crate::name::{is_message_file_name, size_field, split_info, unique_tmp_name};

/// The quota file's name, in the Maildir++ root.
pub const MAILDIRSIZE_FILE: &str = "maildirsize";
/// Past this size the file is rebuilt (Maildir++ spec).
const MAX_FILE_SIZE: u64 = 5120;
/// An over-quota verdict from a file older than this triggers a rebuild (Maildir++ spec).
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// A rebuild is repeated if a directory changed while it was being scanned, at most this often.
const RECALC_ATTEMPTS: usize = 3;

/// The Maildir++ limit for a quota from the user store: moat-auth's quota in bytes (a resolved
/// target's for moat-local, a login's for moat-imapd), `None` = unlimited.
///
/// SECURITY: the number crossed a process boundary; zero or negative is not "unlimited" here
/// but a bad answer (moat-auth never sends one), so it is an error rather than a silently lifted
/// limit.
pub fn store_limit(quota_bytes: Option<i64>) -> std::result::Result<Option<QuotaLimit>, String> {
    match quota_bytes {
        None => Ok(None),
        Some(q) => match u64::try_from(q) {
            Ok(bytes) if bytes > 0 => Ok(Some(QuotaLimit { bytes, messages: 0 })),
            _ => Err(format!("quota {q} is not a positive number of bytes")),
        },
    }
}

/// A Maildir++ quota: a limit applied to everything under one Maildir++ root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    root: PathBuf,
    limit: QuotaLimit,
}

impl Quota {
    /// The quota for `maildir`'s root (a folder handle works too: the quota covers the whole root).
    pub fn new(maildir: &Maildir, limit: QuotaLimit) -> Quota {
        Quota {
            root: maildir.root().to_path_buf(),
            limit,
        }
    }

    /// Takes the limit from an existing maildirsize header (Dovecot's "limits from the file" mode);
    /// `None` if there is no usable file.
    pub fn from_maildirsize(maildir: &Maildir) -> Result<Option<Quota>> {
        let path = maildir.root().join(MAILDIRSIZE_FILE);
        let Some(data) = read_if_exists(&path)? else {
            return Ok(None);
        };
        Ok(Maildirsize::parse(&data)
            .ok()
            .map(|m| Quota::new(maildir, m.limit)))
    }

    /// Makes `maildir`'s `maildirsize` carry the user store's current limit (`store_limit`), so
    /// readers that take the limit from the file (moat-imapd's GETQUOTA and APPEND) see what the
    /// admin set last: a different definition is rewritten now (with a recount), and without a
    /// limit the file is removed, as a stale definition would go on limiting. moat-local calls
    /// this at every delivery, moat-imapd at every login. Returns the quota to deliver with.
    pub fn apply(maildir: &Maildir, limit: Option<QuotaLimit>) -> Result<Option<Quota>> {
        match limit {
            Some(limit) => {
                let quota = Quota::new(maildir, limit);
                // `load` rewrites the file when its definition is not `limit`.
                quota.load()?;
                Ok(Some(quota))
            }
            None => {
                let path = maildir.root().join(MAILDIRSIZE_FILE);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("unlink", &path)(e)),
                }
            }
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> QuotaLimit {
        self.limit
    }

    fn path(&self) -> PathBuf {
        self.root.join(MAILDIRSIZE_FILE)
    }

    /// Current usage, rebuilding maildirsize first if it is missing, corrupt, too big or has another limit.
    pub fn usage(&self) -> Result<QuotaUsage> {
        Ok(self.load()?.0)
    }

    /// Loads usage and the file's age; rebuilds when the spec says so (except for the staleness rule,
    /// which only applies to an over-quota verdict and is handled in `ensure_fits`).
    fn load(&self) -> Result<(QuotaUsage, Duration)> {
        let path = self.path();
        let meta = match fs::metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        if let Some(meta) = meta.filter(|m| m.len() <= MAX_FILE_SIZE)
            && let Some(data) = read_if_exists(&path)?
            && let Ok(parsed) = Maildirsize::parse(&data)
            && parsed.limit == self.limit
        {
            let age = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or(Duration::ZERO);
            return Ok((parsed.usage, age));
        }
        Ok((self.recalculate()?, Duration::ZERO))
    }

    /// True if `bytes` more in `messages` more messages stay within the limit.
    pub fn fits(&self, bytes: u64, messages: u64) -> Result<bool> {
        match self.ensure_fits(bytes, messages) {
            Ok(()) => Ok(true),
            Err(Error::OverQuota { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Like `fits`, but returns `Error::OverQuota` (a temporary failure) when it does not fit.
    pub fn ensure_fits(&self, bytes: u64, messages: u64) -> Result<()> {
        let (usage, age) = self.load()?;
        if self.within(usage, bytes, messages) {
            return Ok(());
        }
        // Over quota by the file's account. If that account is old, it may be wrong: recount once.
        let usage = if age > STALE_AFTER {
            self.recalculate()?
        } else {
            usage
        };
        if self.within(usage, bytes, messages) {
            return Ok(());
        }
        Err(Error::OverQuota {
            needed: bytes,
            usage,
            limit: self.limit,
        })
    }

    fn within(&self, usage: QuotaUsage, bytes: u64, messages: u64) -> bool {
        let ok_bytes =
            self.limit.bytes == 0 || usage.bytes.saturating_add(bytes) <= self.limit.bytes;
        let ok_count = self.limit.messages == 0
            || usage.messages.saturating_add(messages) <= self.limit.messages;
        ok_bytes && ok_count
    }

    /// Rebuilds maildirsize from a scan of all folders and returns the usage.
    pub fn recalculate(&self) -> Result<QuotaUsage> {
        let mut usage = QuotaUsage::default();
        for _ in 0..RECALC_ATTEMPTS {
            let start = SystemTime::now();
            let (counted, changed) = scan_usage(&self.root, start)?;
            usage = counted;
            if !changed {
                break;
            }
        }
        let contents = format!(
            "{}\n{} {}\n",
            self.limit.to_definition(),
            usage.bytes,
            usage.messages
        );
        // Written in tmp/ under a unique name (a crash leaves it to the tmp sweep), renamed into place.
        let tmp = self.root.join("tmp").join(unique_tmp_name());
        let dst = self.path();
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err("create", &tmp))?;
            f.write_all(contents.as_bytes())
                .map_err(io_err("write", &tmp))?;
            f.sync_data().map_err(io_err("fdatasync", &tmp))?;
            fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        Ok(usage)
    }
}

/// Sums message sizes in every new/ and cur/ under `root`; `changed` is true if any of those
/// directories was modified after `start` (a delivery or expunge raced with the scan).
fn scan_usage(root: &Path, start: SystemTime) -> Result<(QuotaUsage, bool)> {
    let mut usage = QuotaUsage::default();
    let mut changed = false;
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(folder_dirs(root)?.into_iter().map(|(_, path)| path));
    for dir in dirs {
        for sub in ["new", "cur"] {
            let sub_path = dir.join(sub);
            let entries = match fs::read_dir(&sub_path) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("readdir", &sub_path)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("readdir", &sub_path))?;
                let name = entry.file_name();
                let Some(name) = name.to_str().filter(|n| is_message_file_name(n)) else {
                    continue;
                };
                let size = match size_field(split_info(name).0, 'S') {
                    Some(s) => s,
                    None => match entry.metadata() {
                        Ok(m) if m.is_file() => m.len(),
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err("stat", entry.path())(e)),
                    },
                };
                usage.bytes = usage.bytes.saturating_add(size);
                usage.messages += 1;
            }
            if let Ok(m) = fs::metadata(&sub_path)
                && m.modified().is_ok_and(|t| t > start)
            {
                changed = true;
            }
        }
    }
    Ok((usage, changed))
}

/// Appends a `<bytes> <count>` line to `root/maildirsize` if the file exists (Maildir++: every
/// delivery and expunge does this; one `write` on an O_APPEND descriptor, so concurrent appenders do not
/// interleave and no lock is needed). Returns whether a line was written.
pub(crate) fn append_delta(root: &Path, bytes: i64, count: i64) -> Result<bool> {
    let path = root.join(MAILDIRSIZE_FILE);
    let mut f = match OpenOptions::new().append(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let line = format!("{bytes} {count}\n");
    f.write_all(line.as_bytes())
        .map_err(io_err("append", &path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Subdir;

    use crate::test_support::setup;

    #[test]
    fn usage_recalculates_when_missing_and_tracks_deltas() {
        let (_d, md) = setup();
        md.deliver(&[b'x'; 100])
            .expect("deliver before quota file exists");
        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 1000,
                messages: 10,
            },
        );
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 100,
                messages: 1
            }
        );
        let base = md.deliver(&[b'y'; 50]).expect("deliver");
        let text = fs::read_to_string(md.root().join(MAILDIRSIZE_FILE)).expect("read");
        assert_eq!(text, "1000S,10C\n100 1\n50 1\n");
        md.expunge(&base).expect("expunge");
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 100,
                messages: 1
            }
        );
        assert!(quota.fits(900, 1).expect("fits"));
        assert!(!quota.fits(901, 1).expect("fits"));
    }

    #[test]
    fn corrupt_or_oversized_file_is_rebuilt() {
        let (_d, md) = setup();
        md.deliver(&[b'x'; 10]).expect("deliver");
        let path = md.root().join(MAILDIRSIZE_FILE);
        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 0,
                messages: 100,
            },
        );
        fs::write(&path, b"\0\0garbage\nnot numbers\n").expect("corrupt");
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 10,
                messages: 1
            }
        );
        let mut big = String::from("0S,100C\n");
        while big.len() <= 5120 {
            big.push_str("1 0\n");
        }
        fs::write(&path, big).expect("big");
        assert_eq!(
            quota.usage().expect("usage"),
            QuotaUsage {
                bytes: 10,
                messages: 1
            }
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), "0S,100C\n10 1\n");
    }

    #[test]
    fn limit_change_rewrites_header() {
        let (_d, md) = setup();
        Quota::new(
            &md,
            QuotaLimit {
                bytes: 10,
                messages: 0,
            },
        )
        .usage()
        .expect("usage");
        let q2 = Quota::new(
            &md,
            QuotaLimit {
                bytes: 20,
                messages: 0,
            },
        );
        q2.usage().expect("usage");
        let text = fs::read_to_string(md.root().join(MAILDIRSIZE_FILE)).expect("read");
        assert!(text.starts_with("20S,0C\n"), "{text}");
        assert_eq!(Quota::from_maildirsize(&md).expect("read"), Some(q2));
    }

    #[test]
    fn store_limits_and_applying_them() {
        assert_eq!(store_limit(None), Ok(None));
        assert_eq!(
            store_limit(Some(10)),
            Ok(Some(QuotaLimit {
                bytes: 10,
                messages: 0
            }))
        );
        assert!(store_limit(Some(0)).is_err());
        assert!(store_limit(Some(-5)).is_err());

        let (_d, md) = setup();
        md.deliver(&[b'x'; 40]).expect("deliver");
        let path = md.root().join(MAILDIRSIZE_FILE);
        let limit = |bytes| QuotaLimit { bytes, messages: 0 };
        // No file yet: written with the definition and a recount.
        let q = Quota::apply(&md, Some(limit(100))).expect("apply");
        assert_eq!(q, Some(Quota::new(&md, limit(100))));
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "100S,0C
40 1
"
        );
        // The same limit keeps the file (and its delta lines) as it is.
        md.deliver(&[b'y'; 5]).expect("deliver");
        Quota::apply(&md, Some(limit(100))).expect("same");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "100S,0C
40 1
5 1
"
        );
        // A new limit replaces the definition at once, for readers of the file.
        Quota::apply(&md, Some(limit(200))).expect("raise");
        assert_eq!(
            Quota::from_maildirsize(&md).expect("read"),
            Some(Quota::new(&md, limit(200)))
        );
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "200S,0C
45 2
"
        );
        // Unlimited: no definition is left to limit anything.
        assert_eq!(Quota::apply(&md, None).expect("lift"), None);
        assert!(!path.exists());
        assert_eq!(Quota::apply(&md, None).expect("again"), None);
        assert_eq!(Quota::from_maildirsize(&md).expect("read"), None);
        // A folder handle applies to its root.
        let work = md.create_folder("Work").expect("folder");
        Quota::apply(&work, Some(limit(300))).expect("from a folder");
        assert!(path.exists());
    }

    #[test]
    fn stale_over_quota_verdict_is_rechecked() {
        let (_d, md) = setup();
        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 100,
                messages: 0,
            },
        );
        quota.usage().expect("create file");
        let path = md.root().join(MAILDIRSIZE_FILE);
        // Pretend 1000 bytes were delivered, in a file 20 minutes old.
        fs::write(&path, "100S,0C\n1000 10\n").expect("write");
        let old = SystemTime::now() - Duration::from_secs(20 * 60);
        fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_modified(old)
            .expect("mtime");
        assert!(quota.fits(50, 1).expect("recount finds the maildir empty"));
        // A fresh file is trusted.
        fs::write(&path, "100S,0C\n1000 10\n").expect("write");
        assert!(!quota.fits(50, 1).expect("fresh verdict"));
    }

    #[test]
    fn recalculation_counts_folders_and_stat_sizes() {
        let (_d, md) = setup();
        let work = md.create_folder("Work").expect("folder");
        work.deliver(&[b'w'; 30]).expect("deliver");
        fs::write(md.subdir(Subdir::Cur).join("1.foreign.host:2,S"), [b'f'; 7]).expect("foreign");
        let usage = Quota::new(&md, QuotaLimit::default())
            .recalculate()
            .expect("recalc");
        assert_eq!(
            usage,
            QuotaUsage {
                bytes: 37,
                messages: 2
            }
        );
    }
}
