//! Group commit for directory fsyncs: many injections that each renamed a file into `mess/` or
//! `env/` share one `fsync` of that directory.
//!
//! A caller takes a ticket after its rename. An fsync that *starts* after the ticket was taken
//! covers it. If an fsync is already running when the ticket is taken, the caller waits for it to
//! finish and then either finds its ticket covered by a later one or runs the next fsync itself,
//! covering every ticket taken so far. So under load one fsync serves many messages, and no caller
//! returns before an fsync that began after its rename has succeeded.
//!
//! SECURITY: nothing here parses input. An fsync error is reported to every caller it covered
//! (their messages are then refused with a temporary failure), never swallowed.

use std::fs::File;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    /// The last ticket handed out.
    taken: u64,
    /// Every ticket up to this one is covered by a finished fsync.
    covered: u64,
    /// The tickets covered by recent fsyncs that failed, and their errors (the last few only:
    /// a waiter looks within microseconds of the failure).
    failed: Vec<(u64, u64, String)>,
    running: bool,
}

/// One directory to fsync, shared by the threads that renamed into it.
pub struct DirSync {
    dir: File,
    state: Mutex<State>,
    done: Condvar,
}

impl DirSync {
    pub fn new(dir: File) -> DirSync {
        DirSync {
            dir,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once the directory has been fsynced after this call began (blocking).
    pub fn sync(&self) -> std::io::Result<()> {
        let mut st = self.lock();
        st.taken += 1;
        let ticket = st.taken;
        loop {
            if st.covered >= ticket {
                return match st
                    .failed
                    .iter()
                    .find(|(a, b, _)| (*a..=*b).contains(&ticket))
                {
                    Some((_, _, err)) => Err(std::io::Error::other(err.clone())),
                    None => Ok(()),
                };
            }
            if !st.running {
                break;
            }
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.running = true;
        let from = st.covered + 1;
        let upto = st.taken;
        drop(st);
        let result = self.dir.sync_all();
        let mut st = self.lock();
        st.running = false;
        st.covered = upto;
        if let Err(e) = &result {
            if st.failed.len() >= 64 {
                st.failed.remove(0);
            }
            let text = format!("cannot fsync the queue directory: {e}");
            st.failed.push((from, upto, text));
        }
        drop(st);
        self.done.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_callers_all_return() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sync = Arc::new(DirSync::new(File::open(dir.path()).expect("open dir")));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let sync = Arc::clone(&sync);
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        sync.sync().expect("sync");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        let st = sync.lock();
        assert_eq!(st.taken, 320);
        assert_eq!(st.covered, 320);
    }
}
