//! `run_dir/status`: what the supervisor runs, for `moat status`. The supervisor rewrites it
//! (a temporary file renamed over the old one, so a reader never sees half of it) whenever a
//! child starts, stops or reports its confinement, and removes it once drained. Each process is
//! named with its start time from /proc, so a reader can tell a recycled pid from the process
//! the supervisor started.
//!
//! SECURITY: only the supervisor writes here (`run_dir` is root's, 0755); the file is 0644,
//! since pids, user names and confinement summaries are no secret. Texts a child reported are
//! stripped of control characters and cut short before they are stored (`reports.rs`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in `run_dir`.
const FILE: &str = "status";
/// Larger than any status the supervisor writes; a reader refuses more.
const MAX_SIZE: u64 = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The supervisor's pid and its start time (/proc/PID/stat, clock ticks since boot).
    pub supervisor: u32,
    pub supervisor_start: u64,
    /// True once SIGTERM was received and the children are being stopped.
    pub stopping: bool,
    pub processes: Vec<Process>,
    /// Programs that exited and wait for their restart.
    pub restarting: Vec<String>,
    /// Unix time of this snapshot.
    pub written: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub program: String,
    pub pid: u32,
    /// The process's start time (/proc/PID/stat), 0 if it could not be read.
    pub start: u64,
    /// The account it was started as (the invoking user in quickstart).
    pub user: String,
    pub uid: u32,
    /// Unix time it was started.
    pub started: u64,
    /// Replaced at a reload and finishing its sessions.
    pub retiring: bool,
    /// What the child reported once confined (`C` record on its control channel); `None`
    /// until it does (or forever, for a child that does not report).
    pub landlock: Option<String>,
    pub seccomp: Option<String>,
}

pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE)
}

/// Replaces the status file with `snapshot`.
pub fn write(run_dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?;
    let tmp = run_dir.join(format!(".{FILE}.tmp"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // create_new: never follows a link planted in place of the temporary file.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(&text)?;
    file.write_all(b"\n")?;
    // Explicitly: the supervisor's umask may be stricter, and `moat status` runs as anyone.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    std::fs::rename(&tmp, path(run_dir))
}

/// Removes the status file (the supervisor is gone).
pub fn remove(run_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path(run_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Reads the status file.
pub fn read(run_dir: &Path) -> std::io::Result<Snapshot> {
    use std::io::Read as _;
    let mut text = Vec::new();
    std::fs::File::open(path(run_dir))?
        .take(MAX_SIZE + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_SIZE {
        return Err(std::io::Error::other("the status file is too large"));
    }
    serde_json::from_slice(&text).map_err(std::io::Error::other)
}

/// The start time of process `pid` (field 22 of /proc/PID/stat, clock ticks since boot): with
/// the pid, it names one process for good, where a pid alone may be reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = Snapshot {
            supervisor: std::process::id(),
            supervisor_start: start_time(std::process::id()).expect("own start time"),
            stopping: false,
            processes: vec![Process {
                program: "moat-smtpd".into(),
                pid: 42,
                start: 7,
                user: "moat-smtpd".into(),
                uid: 101,
                started: 1,
                retiring: false,
                landlock: Some("enforced".into()),
                seccomp: None,
            }],
            restarting: vec!["moat-queue".into()],
            written: 2,
        };
        write(dir.path(), &snapshot).expect("write");
        write(dir.path(), &snapshot).expect("write again over the old file");
        let back = read(dir.path()).expect("read");
        assert_eq!(back.processes[0].program, "moat-smtpd");
        assert_eq!(back.processes[0].landlock.as_deref(), Some("enforced"));
        assert_eq!(back.restarting, vec!["moat-queue".to_string()]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(dir.path()))
                .expect("stat")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        // Only the status file is left: the temporary one was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        remove(dir.path()).expect("remove");
        remove(dir.path()).expect("removing twice is fine");
        assert!(read(dir.path()).is_err());
    }

    #[test]
    fn start_times_tell_processes_apart() {
        let me = start_time(std::process::id()).expect("own start time");
        assert!(me > 0);
        assert_eq!(start_time(std::process::id()), Some(me));
        assert_eq!(start_time(u32::MAX), None);
    }
}
