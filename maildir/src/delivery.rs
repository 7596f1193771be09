//! A delivery written piece by piece, for a message that arrives in pieces (IMAP APPEND's literal
//! as it is read from the client): [`Maildir::start_delivery`] creates the tmp/ file, [`Delivery::write`]
//! appends to it, [`Delivery::commit`] fsyncs it, checks the quota with the final size and
//! renames it into new/ or cur/ (`deliver.rs` has the protocol). Dropping a delivery that was
//! not committed removes its tmp/ file, so an abandoned one (a client gone mid-literal) leaves
//! nothing behind. `Maildir::deliver` and `deliver_from` are built on it.
//!
//! Memory use is what the caller writes at a time: nothing is buffered here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::deliver::DeliverOptions;
use crate::error::{Error, Result, io_err};
use crate::fsutil::{commit_no_replace, fsync_dir};
use crate::maildir::{Maildir, Subdir};
use crate::name::{VSizeCounter, unique_tmp_name, with_sizes};
use crate::quota::append_delta;

/// A message being written into tmp/. Not yet visible to anyone.
#[derive(Debug)]
pub struct Delivery {
    maildir: Maildir,
    tmp_name: String,
    tmp_path: PathBuf,
    /// `None` once closed by the commit.
    file: Option<File>,
    counter: VSizeCounter,
    /// The tmp/ name is gone (renamed into place): nothing to remove when dropped.
    committed: bool,
}

impl Maildir {
    /// Creates the tmp/ file of a new delivery (O_EXCL, mode 0600).
    pub fn start_delivery(&self) -> Result<Delivery> {
        let tmp_name = unique_tmp_name();
        let tmp_path = self.tmp_dir().join(&tmp_name);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
        {
            Ok(f) => f,
            // Someone else's file: never ours to remove, so no `Delivery` owns it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Collision { path: tmp_path });
            }
            Err(e) => return Err(io_err("create", tmp_path)(e)),
        };
        Ok(Delivery {
            maildir: self.clone(),
            tmp_name,
            tmp_path,
            file: Some(file),
            counter: VSizeCounter::default(),
            committed: false,
        })
    }
}

impl Delivery {
    /// Appends `chunk` to the message.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(io_err("write", &self.tmp_path)(io::Error::other(
                "delivery already closed",
            )));
        };
        self.counter.update(chunk);
        file.write_all(chunk)
            .map_err(io_err("write", &self.tmp_path))
    }

    /// The tmp/ file, for error messages.
    pub(crate) fn tmp_path(&self) -> &std::path::Path {
        &self.tmp_path
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.counter.size()
    }

    /// Makes the message part of the Maildir (quota checked with its final size when
    /// `opts.quota` is set); returns its base name. On error nothing was delivered.
    pub fn commit(self, opts: &DeliverOptions<'_>) -> Result<String> {
        self.finish(opts, true)
    }

    /// The commit; `check_quota`: false when the caller checked the exact size already.
    pub(crate) fn finish(mut self, opts: &DeliverOptions<'_>, check_quota: bool) -> Result<String> {
        let Some(file) = self.file.take() else {
            return Err(io_err("commit", &self.tmp_path)(io::Error::other(
                "delivery already closed",
            )));
        };
        if let Some(mtime) = opts.mtime {
            file.set_modified(mtime)
                .map_err(io_err("set mtime of", &self.tmp_path))?;
        }
        file.sync_all().map_err(io_err("fsync", &self.tmp_path))?;
        drop(file);

        let size = self.counter.size();
        if let Some(quota) = opts.quota.filter(|_| check_quota) {
            quota.ensure_fits(size, 1)?;
        }

        let base = with_sizes(&self.tmp_name, size, self.counter.vsize());
        let (sub, file_name) = match opts.flags {
            Some(flags) => (Subdir::Cur, format!("{base}:{}", flags.to_info())),
            None => (Subdir::New, base.clone()),
        };
        let dir = self.maildir.subdir(sub);
        let final_path = dir.join(&file_name);
        commit_no_replace(&self.tmp_path, &final_path)?;
        // Committed: the tmp name is gone (or, after link + unlink failed to unlink, a harmless
        // second link that the sweep removes).
        self.committed = true;

        if let Err(e) = fsync_dir(&dir) {
            // Not durable: report failure and withdraw the message so a retry does not duplicate
            // it.
            let _ = fs::remove_file(&final_path);
            return Err(e);
        }

        // Maildir++: whoever adds mail updates maildirsize if it exists (with a quota, it must
        // exist). A failure here only makes the usage figure stale until the next recalculation.
        let _ = append_delta(
            self.maildir.root(),
            i64::try_from(size).unwrap_or(i64::MAX),
            1,
        );
        Ok(base)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.committed {
            self.file = None;
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::Flags;
    use crate::maildirsize::QuotaLimit;
    use crate::quota::Quota;
    use crate::test_support::setup;

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).expect("readdir").count()
    }

    #[test]
    fn pieces_become_one_message_in_cur_with_mtime() {
        let (_d, md) = setup();
        let mut d = md.start_delivery().expect("start");
        assert_eq!(count(&md.tmp_dir()), 1);
        d.write(b"Subject: x\n\n").expect("write");
        d.write(b"a\0b\r\n").expect("write");
        assert_eq!(d.size(), 17);
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let opts = DeliverOptions::new().flags(Flags::SEEN).mtime(when);
        let base = d.commit(&opts).expect("commit");
        assert!(base.ends_with(",S=17,W=19"), "{base}");
        let path = md.subdir(Subdir::Cur).join(format!("{base}:2,S"));
        assert_eq!(fs::read(&path).expect("read"), b"Subject: x\n\na\0b\r\n");
        let mtime = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(mtime, when);
        assert_eq!(count(&md.tmp_dir()), 0);
    }

    #[test]
    fn dropped_or_over_quota_leaves_nothing() {
        let (_d, md) = setup();
        let mut d = md.start_delivery().expect("start");
        d.write(b"half a message").expect("write");
        drop(d);
        assert_eq!(count(&md.tmp_dir()), 0);

        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 10,
                messages: 0,
            },
        );
        let mut d = md.start_delivery().expect("start");
        d.write(&[b'a'; 11]).expect("write");
        let err = d
            .commit(&DeliverOptions::new().quota(&quota))
            .expect_err("over quota");
        assert!(matches!(err, Error::OverQuota { .. }));
        assert_eq!(count(&md.tmp_dir()), 0);
        assert_eq!(count(&md.subdir(Subdir::New)), 0);
        assert_eq!(count(&md.subdir(Subdir::Cur)), 0);
    }
}
