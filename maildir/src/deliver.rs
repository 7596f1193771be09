//! Lock-free delivery: tmp/ → fsync → rename (no-replace) into new/ (or cur/) → fsync the directory.
//!
//! This is qmail's protocol and the one the queue's promise relies on (ARCHITECTURE.md): until the
//! rename into new/ the message does not exist for anyone; after the directory fsync it survives a crash.
//! A process killed at any point leaves at most a file in tmp/, which `Maildir::clean_tmp` sweeps.
//!
//! * The tmp/ name is unique (time, pid, per-process counter, random) and opened with O_EXCL, so two
//!   deliverers can never write into the same file; the final name adds `,S=`/`,W=` once the sizes are
//!   known (that is what lets a stream be delivered without buffering it).
//! * The commit never replaces an existing file (rename with RENAME_NOREPLACE, or link + unlink where
//!   that is unsupported): a name collision is an error the caller retries, not a silently lost message.
//! * The steps are `delivery.rs`'s [`Delivery`] (also used on its own to write a message in pieces).
//! * Any error after the tmp file was created removes it; an error after the commit (directory fsync)
//!   removes the committed name too, so "error" always means "not delivered" (at-least-once: the queue
//!   retries).

use std::io::{self, Read};
use std::time::SystemTime;

use crate::delivery::Delivery;
use crate::error::{Result, io_err};
use crate::flags::Flags;
use crate::maildir::Maildir;
use crate::quota::Quota;

/// Size of the copy buffer for streaming delivery: memory use is bounded by this, whatever the
/// message size.
const STREAM_BUFFER: usize = 64 * 1024;

/// Options for a delivery. Build with [`DeliverOptions::new`] and the setters.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DeliverOptions<'a> {
    /// Check the Maildir++ quota before committing; an over-quota delivery fails with
    /// `Error::OverQuota` (a temporary failure for SMTP) and leaves nothing behind.
    pub quota: Option<&'a Quota>,
    /// Deliver straight into cur/ with these flags (IMAP APPEND) instead of into new/.
    pub flags: Option<Flags>,
    /// Set the file's mtime (IMAP APPEND's internal date).
    pub mtime: Option<SystemTime>,
}

impl<'a> DeliverOptions<'a> {
    /// Defaults: no quota check, into new/, mtime = now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enforce this quota.
    pub fn quota(mut self, quota: &'a Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Deliver into cur/ with these flags.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags = Some(flags);
        self
    }

    /// Set the delivered file's mtime.
    pub fn mtime(mut self, mtime: SystemTime) -> Self {
        self.mtime = Some(mtime);
        self
    }
}

impl Maildir {
    /// Delivers a message held in memory into new/. Returns its base name.
    pub fn deliver(&self, message: &[u8]) -> Result<String> {
        self.deliver_with(message, &DeliverOptions::new())
    }

    /// Delivers a message held in memory, with options. Returns its base name.
    pub fn deliver_with(&self, message: &[u8], opts: &DeliverOptions<'_>) -> Result<String> {
        if let Some(quota) = opts.quota {
            // Size known up front: fail before writing anything.
            quota.ensure_fits(message.len() as u64, 1)?;
        }
        self.deliver_inner(opts, false, |delivery| delivery.write(message))
    }

    /// Delivers a message read from `reader` (streamed through a 64 KiB buffer, so memory use does not
    /// depend on the message size). Returns its base name. A read error aborts the delivery.
    pub fn deliver_from<R: Read>(
        &self,
        mut reader: R,
        opts: &DeliverOptions<'_>,
    ) -> Result<String> {
        if let Some(quota) = opts.quota {
            // Fail fast if already full; the exact check happens once the size is known.
            quota.ensure_fits(0, 1)?;
        }
        self.deliver_inner(opts, true, |delivery| {
            let mut buf = vec![0u8; STREAM_BUFFER];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(io_err("read message source for", delivery.tmp_path())(e));
                    }
                };
                delivery.write(buf.get(..n).unwrap_or(&[]))?;
            }
        })
    }

    fn deliver_inner(
        &self,
        opts: &DeliverOptions<'_>,
        check_quota_after_write: bool,
        write_body: impl FnOnce(&mut Delivery) -> Result<()>,
    ) -> Result<String> {
        // Any error drops the delivery, which removes its tmp file.
        let mut delivery = self.start_delivery()?;
        write_body(&mut delivery)?;
        delivery.finish(opts, check_quota_after_write)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::error::Error;
    use crate::maildir::Subdir;
    use crate::maildirsize::QuotaLimit;

    use crate::test_support::setup;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn deliver_bytes_into_new() {
        let (_d, md) = setup();
        let msg = b"Subject: hi\n\nbody\n";
        let base = md.deliver(msg).expect("deliver");
        assert!(
            base.ends_with(&format!(",S={},W={}", msg.len(), msg.len() + 3)),
            "{base}"
        );
        assert_eq!(names(&md.subdir(Subdir::New)), vec![base.clone()]);
        assert!(names(&md.tmp_dir()).is_empty());
        assert_eq!(
            fs::read(md.subdir(Subdir::New).join(&base)).expect("read"),
            msg
        );
    }

    #[test]
    fn deliver_stream_with_flags_into_cur() {
        let (_d, md) = setup();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let opts = DeliverOptions::new().flags(Flags::SEEN);
        let base = md.deliver_from(&data[..], &opts).expect("deliver");
        let cur = names(&md.subdir(Subdir::Cur));
        assert_eq!(cur, vec![format!("{base}:2,S")]);
        assert_eq!(
            fs::read(md.subdir(Subdir::Cur).join(&cur[0])).expect("read"),
            data
        );
    }

    #[test]
    fn read_error_removes_tmp_file() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("source broke"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let (_d, md) = setup();
        let err = md
            .deliver_from(Failing(3), &DeliverOptions::new())
            .expect_err("must fail");
        assert!(err.is_temporary());
        assert!(names(&md.tmp_dir()).is_empty());
        assert!(names(&md.subdir(Subdir::New)).is_empty());
    }

    #[test]
    fn over_quota_is_temporary_and_leaves_nothing() {
        let (_d, md) = setup();
        let quota = Quota::new(
            &md,
            QuotaLimit {
                bytes: 100,
                messages: 0,
            },
        );
        md.deliver_with(&[b'a'; 60], &DeliverOptions::new().quota(&quota))
            .expect("fits");
        let err = md
            .deliver_with(&[b'a'; 60], &DeliverOptions::new().quota(&quota))
            .expect_err("over");
        assert!(matches!(err, Error::OverQuota { .. }) && err.is_temporary());
        // Streaming: the size is only known at the end.
        let err = md
            .deliver_from(&[b'a'; 60][..], &DeliverOptions::new().quota(&quota))
            .expect_err("over");
        assert!(matches!(err, Error::OverQuota { .. }));
        assert!(names(&md.tmp_dir()).is_empty());
        assert_eq!(names(&md.subdir(Subdir::New)).len(), 1);
        assert_eq!(quota.usage().expect("usage").bytes, 60);
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let (_d, md) = setup();
        fs::remove_dir(md.subdir(Subdir::New)).expect("rm new");
        let err = md.deliver(b"x").expect_err("no new/");
        assert!(err.is_temporary());
        assert!(
            names(&md.tmp_dir()).is_empty(),
            "tmp file removed on commit failure"
        );
    }

    #[test]
    fn many_deliveries_get_distinct_names() {
        let (_d, md) = setup();
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            assert!(seen.insert(md.deliver(format!("{i}").as_bytes()).expect("deliver")));
        }
        assert_eq!(names(&md.subdir(Subdir::New)).len(), 200);
    }
}
