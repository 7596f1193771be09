//! Test support for the moat-queue tests: a temp queue started as the real binary through the
//! supervisor's setup channel, and a fake moat-local (a test double for the other process) that
//! answers each delivery with a policy and records what it got.
//!
//! Works as root (the queue drops to `nobody`, and the temp folder is handed to it) and as an
//! ordinary user (the queue runs as that user).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_common::child::{Item, spawn};
use moat_common::client::queue::{Injection, Origin};
use moat_common::conn::Conn;
use moat_common::wire::Status;

/// One delivery request the fake moat-local received.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: String,
    pub sender: String,
    pub rcpt: String,
    pub message: Vec<u8>,
    /// What the fake answered.
    pub answer: Status,
    pub at: Instant,
}

/// Decides the answer: (recipient, how many times this id+recipient was asked before + 1).
pub type Policy = Arc<dyn Fn(&str, usize) -> Status + Send + Sync>;

pub fn always_ok() -> Policy {
    Arc::new(|_, _| Status::Ok("delivered".into()))
}

/// The fake moat-local.
pub struct FakeLocal {
    pub path: PathBuf,
    pub attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl FakeLocal {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().expect("lock").clone()
    }

    /// The `K`-answered deliveries.
    pub fn delivered(&self) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(|a| matches!(a.answer, Status::Ok(_)))
            .collect()
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The uid/gid the queue runs as.
pub fn queue_ids() -> (u32, u32) {
    if is_root() {
        (65534, 65534)
    } else {
        (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }
}

/// Gives `path` and everything under it to the queue's user (root only).
pub fn hand_over(path: &Path) {
    if !is_root() {
        return;
    }
    let (uid, gid) = queue_ids();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            hand_over(&entry.expect("entry").path());
        }
    }
}

/// A temp folder with the queue socket (kept open here, like the supervisor does) and the fake
/// moat-local socket.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub queue_dir: PathBuf,
    pub socket: PathBuf,
    pub local: FakeLocal,
    listener: UnixListener,
}

impl Env {
    /// Must be called inside a tokio runtime (the fake moat-local runs as a task).
    pub fn new(policy: Policy) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        hand_over(dir.path());
        let socket = dir.path().join("queue.sock");
        let listener = UnixListener::bind(&socket).expect("bind queue.sock");
        let local_path = dir.path().join("local.sock");
        let local_listener = UnixListener::bind(&local_path).expect("bind local.sock");
        std::fs::set_permissions(&local_path, std::fs::Permissions::from_mode(0o666))
            .expect("chmod");
        local_listener.set_nonblocking(true).expect("nonblocking");
        let local_listener =
            tokio::net::UnixListener::from_std(local_listener).expect("tokio listener");
        let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
        let log = Arc::clone(&attempts);
        tokio::spawn(async move {
            while let Ok((stream, _)) = local_listener.accept().await {
                let (log, policy) = (Arc::clone(&log), Arc::clone(&policy));
                tokio::spawn(async move { serve_local(Conn::new(stream), log, policy).await });
            }
        });
        Env {
            queue_dir: dir.path().join("queue"),
            socket,
            local: FakeLocal {
                path: local_path,
                attempts,
            },
            listener,
            dir,
        }
    }

    /// Starts moat-queue with the test defaults and `extra` settings.
    pub fn start(&self, extra: &[(&str, &str)]) -> Queue {
        let me = rustix::process::getuid().as_raw().to_string();
        let mut settings: HashMap<&str, String> = HashMap::from([
            ("queue_dir", self.queue_dir.display().to_string()),
            ("local_socket", self.local.path.display().to_string()),
            ("hostname", "mx.example.test".to_string()),
            ("peers_smtpd", me),
            ("retry_schedule", "1".to_string()),
            ("run_dir", self.dir.path().display().to_string()),
        ]);
        if is_root() {
            settings.insert("user", "nobody".to_string());
        }
        for (k, v) in extra {
            settings.insert(k, v.to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("queue.log"))
            .expect("log file");
        let mut items: Vec<Item<'_>> = settings
            .iter()
            .map(|(k, v)| Item::Setting(k, v.clone()))
            .collect();
        items.push(Item::Fd("queue", self.listener.as_fd()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat-queue"));
        cmd.stderr(log);
        let (child, control) = spawn(&mut cmd, &items).expect("spawn moat-queue");
        Queue { child, control }
    }

    /// moat-queue's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("queue.log")).unwrap_or_default()
    }

    /// How many files are in the queue's folders.
    pub fn files(&self, sub: &str) -> usize {
        std::fs::read_dir(self.queue_dir.join(sub)).map_or(0, |d| d.count())
    }

    pub fn all_files(&self) -> usize {
        ["tmp", "mess", "env", "done", "retry"]
            .iter()
            .map(|s| self.files(s))
            .sum()
    }

    /// Injects a message; `Err` = the connection failed.
    pub async fn inject(
        &self,
        sender: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> std::io::Result<Status> {
        let mut inj = Injection::open(&self.socket, Origin::Smtp, "test client").await?;
        inj.write(message).await?;
        let rcpts: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
        inj.finish(sender, &rcpts).await
    }

    /// Injects and expects `K`, returning the id.
    pub async fn inject_ok(&self, sender: &str, rcpts: &[&str], message: &[u8]) -> String {
        match self.inject(sender, rcpts, message).await {
            Ok(Status::Ok(id)) => id,
            other => panic!("injection failed: {other:?}\n{}", self.log()),
        }
    }
}

async fn serve_local(mut conn: Conn, log: Arc<Mutex<Vec<Attempt>>>, policy: Policy) {
    let Ok(Some(req)) = conn.recv().await else {
        return;
    };
    let text = |i: usize| req.text(i).unwrap_or("?").to_string();
    let mut message = Vec::new();
    if let Some(fd) = conn.take_fd() {
        let _ = std::fs::File::from(fd).read_to_end(&mut message);
    }
    let (id, sender, rcpt) = (text(0), text(1), text(2));
    let answer = {
        let mut log = log.lock().expect("lock");
        let before = log.iter().filter(|a| a.id == id && a.rcpt == rcpt).count();
        let answer = policy(&rcpt, before + 1);
        log.push(Attempt {
            id,
            sender,
            rcpt,
            message,
            answer: answer.clone(),
            at: Instant::now(),
        });
        answer
    };
    let _ = conn.send(&answer.to_record()).await;
}

/// A running moat-queue.
pub struct Queue {
    pub child: Child,
    control: UnixStream,
}

impl Queue {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (at most `limit`) for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, limit: Duration) -> bool {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        self.wait_exit(limit)
    }

    /// Waits (at most `limit`) for the process to exit by itself; returns whether it exited 0.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Closes the setup channel (the supervisor went away).
    pub fn close_control(&mut self) {
        let _ = self.control.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A small message with a subject.
pub fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

/// The value of header `name` in `message` (first occurrence, unfolded).
pub fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text
        .split("\r\n\r\n")
        .next()?
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}
