//! Never leave a server running: every started server registers how to stop it in a hurry, and
//! a watcher thread stops them all when the benchmark gets SIGINT, SIGTERM or SIGHUP (normal
//! and error paths stop them through `Drop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::postfix::POSTFIX;

/// How to stop one server without its owner's help.
#[derive(Clone)]
pub enum Emergency {
    /// A server whose root process stops its children on SIGTERM (`moat up`, `dovecot -F`):
    /// its pid (the children are found through /proc and killed if they outlive it).
    Tree { pid: u32 },
    /// A private Postfix: its configuration and queue directories.
    Postfix {
        config_dir: PathBuf,
        queue_dir: PathBuf,
    },
}

static ACTIVE: Mutex<Vec<(u64, Emergency)>> = Mutex::new(Vec::new());
/// The benchmark's temporary folder, removed after the servers are stopped (unless kept).
static FOLDER: Mutex<Option<PathBuf>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(1);
static WATCH: Once = Once::new();

/// Removes its entry when dropped (the owner stopped the server itself).
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut active) = ACTIVE.lock() {
            active.retain(|(id, _)| *id != self.0);
        }
    }
}

pub fn register(emergency: Emergency) -> Registration {
    install();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut active) = ACTIVE.lock() {
        active.push((id, emergency));
    }
    Registration(id)
}

/// Names the folder to remove when a signal ends the benchmark.
pub fn remove_on_signal(folder: Option<PathBuf>) {
    install();
    if let Ok(mut f) = FOLDER.lock() {
        *f = folder;
    }
}

/// Starts the signal watcher once.
pub fn install() {
    WATCH.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("signal-watch".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let signal = rt.block_on(async {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                        signal(SignalKind::hangup()),
                    ) else {
                        return None;
                    };
                    tokio::select! {
                        _ = int.recv() => Some("SIGINT"),
                        _ = term.recv() => Some("SIGTERM"),
                        _ = hup.recv() => Some("SIGHUP"),
                    }
                });
                let Some(name) = signal else { return };
                eprintln!("\nmoat-bench: {name}: stopping the servers it started");
                let all: Vec<Emergency> = ACTIVE
                    .lock()
                    .map(|a| a.iter().map(|(_, e)| e.clone()).collect())
                    .unwrap_or_default();
                for e in all {
                    stop(&e);
                }
                if let Some(folder) = FOLDER.lock().ok().and_then(|mut f| f.take()) {
                    // A raw fsync test may still be writing into it: retry until it gives up.
                    for _ in 0..20 {
                        if std::fs::remove_dir_all(&folder).is_ok() || !folder.exists() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                std::process::exit(130);
            });
        if let Err(e) = spawned {
            eprintln!(
                "moat-bench: cannot watch for signals ({e}); Ctrl-C may leave servers running"
            );
        }
    });
}

/// Stops a server as fast as is safe.
pub fn stop(emergency: &Emergency) {
    match emergency {
        Emergency::Tree { pid } => {
            let children = children_of(*pid);
            signal(*pid, Signal::TERM);
            if !wait_gone(&[*pid], Duration::from_secs(20)) {
                signal(*pid, Signal::KILL);
            }
            for child in children {
                signal(child, Signal::KILL);
            }
        }
        Emergency::Postfix {
            config_dir,
            queue_dir,
        } => {
            let _ = Command::new(POSTFIX)
                .arg("-c")
                .arg(config_dir)
                .arg("abort")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            kill_postfix_leftovers(config_dir, queue_dir, Duration::from_secs(5));
        }
    }
}

/// Waits up to `patience` for the processes of one Postfix instance to exit, then kills the rest.
/// A Postfix daemon is recognised by `MAIL_CONFIG=<config_dir>` in its environment or by its
/// working directory being the instance's queue directory (every Postfix daemon chdirs there).
pub fn kill_postfix_leftovers(config_dir: &Path, queue_dir: &Path, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let pids = postfix_processes(config_dir, queue_dir);
        if pids.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for pid in &pids {
                signal(*pid, Signal::KILL);
            }
            let _ = wait_gone(&pids, Duration::from_secs(5));
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn postfix_processes(config_dir: &Path, queue_dir: &Path) -> Vec<u32> {
    let marker = format!("MAIL_CONFIG={}", config_dir.display());
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let env_match = std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()));
            let cwd_match =
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == queue_dir);
            env_match || cwd_match
        })
        .collect()
}

/// Live (non-zombie) children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // comm is in parentheses; state and ppid follow it.
            let Some((_, after)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            ppid == Some(parent) && state != Some("Z")
        })
        .collect()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// True if the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, after)| after.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Waits until none of `pids` is alive; false on timeout.
pub fn wait_gone(pids: &[u32], patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while pids.iter().any(|&p| alive(p)) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
