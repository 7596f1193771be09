//! IDLE (RFC 2177): `+ idling`, then every change to the selected folder is reported as it
//! happens, until the client's `DONE`. Changes are noticed through inotify on the folder's new/
//! and cur/ (a delivery's rename into new/, another client's flag rename or expunge in cur/),
//! so a delivery is reported within a second without polling; a 30 s timer catches anything
//! inotify cannot see (another machine writing over NFS, `dovecot-keywords`). The connection's
//! idle timeout applies as usual (RFC 2177 asks clients to re-IDLE within 29 minutes).
//!
//! The driver (`connection.rs`) waits on the client and on `idle_wait` at once; the session
//! stays free of I/O on the socket.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::io::unix::AsyncFd;

use crate::session::{Flow, Session, response};

/// The fallback wake-up while idling.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// inotify on one folder's new/ and cur/.
pub struct Watcher {
    fd: AsyncFd<OwnedFd>,
}

impl Watcher {
    pub fn new(maildir: &moat_maildir::Maildir) -> std::io::Result<Watcher> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let events = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR;
        for sub in [moat_maildir::Subdir::New, moat_maildir::Subdir::Cur] {
            inotify::add_watch(&fd, maildir.subdir(sub), events)?;
        }
        // `new` is deprecated for types whose descriptor could change under the AsyncFd; an
        // OwnedFd owns its descriptor for its whole life, which is what `register` (unsafe,
        // and unsafe code is denied here) would have us promise.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Watcher { fd })
    }

    /// Waits for events and reads them all (their content does not matter: any change means
    /// a sync).
    async fn changed(&self) -> std::io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut buf)?)) {
                Ok(Ok(_)) => {
                    // Drain what else is queued, so one delivery means one sync.
                    while rustix::io::read(self.fd.get_ref(), &mut buf).is_ok() {}
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Session {
    pub(in crate::session) async fn idle(&mut self, tag: &str, out: &mut Vec<u8>) -> Flow {
        match self.report_changes(true, out).await {
            Flow::Continue => {}
            other => return other,
        }
        if let Some(sel) = &mut self.selected
            && sel.watcher.is_none()
        {
            match Watcher::new(&sel.maildir) {
                Ok(w) => sel.watcher = Some(w),
                // Without inotify (watch limit reached) the timer still reports changes.
                Err(e) => moat_common::error!("{}: inotify: {e}", self.config.who),
            }
        }
        self.idling = Some(tag.to_string());
        out.extend_from_slice(b"+ idling\r\n");
        Flow::Idle
    }

    /// While idling: resolves when the selected folder may have changed.
    pub async fn idle_wait(&self) {
        let watcher = self.selected.as_ref().and_then(|s| s.watcher.as_ref());
        match watcher {
            Some(w) => {
                let _ = tokio::time::timeout(IDLE_POLL, w.changed()).await;
            }
            None => tokio::time::sleep(IDLE_POLL).await,
        }
    }

    /// While idling, after `idle_wait`: reports the changes.
    pub async fn idle_changes(&mut self, out: &mut Vec<u8>) -> Flow {
        match self.report_changes(true, out).await {
            Flow::Continue => Flow::Idle,
            other => other,
        }
    }

    /// While idling, the client sent a line: `DONE` ends the IDLE; anything else is BAD.
    pub fn idle_done(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let Some(tag) = self.idling.take() else {
            return Flow::Continue;
        };
        if line.eq_ignore_ascii_case(b"DONE\r\n") || line.eq_ignore_ascii_case(b"DONE\n") {
            response::ok(out, &tag, "IDLE terminated.");
            Flow::Continue
        } else {
            self.bad(out, &tag, "Expected DONE.")
        }
    }

    /// True while an IDLE waits for DONE.
    pub fn is_idling(&self) -> bool {
        self.idling.is_some()
    }
}
