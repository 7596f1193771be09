//! Test harness for moat-local: the real binary started through `moat_common::child::spawn`
//! with its setup channel, a fake moat-auth answering `R` from a table, and a fake moat-queue
//! capturing forwards. As root (CI), the daemon drops to `nobody` as in production, so the
//! mail root is handed to nobody and the sockets are made reachable for it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_common::child::{Item, spawn};
use moat_common::client::auth::{Target, TargetKind};
use moat_common::client::local::{Delivery, LocalClient};
use moat_common::conn::Conn;
use moat_common::wire::{Record, Status};

pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// What the fake moat-auth answers for an address.
#[derive(Debug, Clone)]
pub enum Answer {
    Targets(Vec<Target>),
    Unknown,
    Temporary(String),
}

pub fn mailbox(address: &str, quota: Option<i64>, detail: Option<&str>) -> Target {
    let (local, domain) = address.rsplit_once('@').expect("address");
    Target {
        kind: TargetKind::Mailbox,
        address: address.to_string(),
        maildir: format!("{domain}/{local}"),
        quota,
        detail: detail.map(str::to_string),
    }
}

pub fn forward(address: &str) -> Target {
    Target {
        kind: TargetKind::Forward,
        address: address.to_string(),
        maildir: String::new(),
        quota: None,
        detail: None,
    }
}

/// A fake moat-auth on a Unix socket.
#[derive(Clone)]
pub struct FakeAuth {
    pub path: PathBuf,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    delay: Arc<Mutex<Duration>>,
}

impl FakeAuth {
    pub fn start(path: PathBuf) -> FakeAuth {
        let listener = tokio::net::UnixListener::bind(&path).expect("bind auth");
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let table = Arc::clone(&answers);
        let wait = Arc::clone(&delay);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let table = Arc::clone(&table);
                let wait = *wait.lock().expect("lock");
                tokio::spawn(async move {
                    let mut conn = Conn::new(stream);
                    let Ok(Some(req)) = conn.recv().await else {
                        return;
                    };
                    tokio::time::sleep(wait).await;
                    let address = req.text(0).unwrap_or("").to_string();
                    let answer = table.lock().expect("lock").get(&address).cloned();
                    let reply = match (req.kind, answer) {
                        (b'R', Some(Answer::Targets(targets))) => {
                            let mut r =
                                Status::Ok(format!("{} targets", targets.len())).to_record();
                            for t in &targets {
                                r = t.push_fields(r);
                            }
                            r
                        }
                        (b'R', Some(Answer::Temporary(why))) => Status::Temporary(why).to_record(),
                        _ => Status::Permanent("no such user".into()).to_record(),
                    };
                    let _ = conn.send(&reply).await;
                });
            }
        });
        open_up(&path);
        FakeAuth {
            path,
            answers,
            delay,
        }
    }

    /// Makes every later answer wait this long.
    pub fn delay(&self, by: Duration) {
        *self.delay.lock().expect("lock") = by;
    }

    pub fn set(&self, address: &str, answer: Answer) {
        self.answers
            .lock()
            .expect("lock")
            .insert(address.to_string(), answer);
    }
}

/// One message a fake queue received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub origin: String,
    pub client: String,
    pub message: Vec<u8>,
    pub sender: String,
    pub recipients: Vec<String>,
}

/// A fake moat-queue capturing injections and answering `K [FWD...]`.
#[derive(Clone)]
pub struct FakeQueue {
    pub path: PathBuf,
    pub injected: Arc<Mutex<Vec<Injected>>>,
}

impl FakeQueue {
    pub fn start(path: PathBuf) -> FakeQueue {
        let listener = tokio::net::UnixListener::bind(&path).expect("bind queue");
        let injected: Arc<Mutex<Vec<Injected>>> = Arc::default();
        let store = Arc::clone(&injected);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut conn = Conn::new(stream);
                    let Ok(Some(h)) = conn.recv().await else {
                        return;
                    };
                    let mut got = Injected {
                        origin: h.text(0).unwrap_or("").into(),
                        client: h.text(1).unwrap_or("").into(),
                        message: Vec::new(),
                        sender: String::new(),
                        recipients: Vec::new(),
                    };
                    while let Ok(Some(r)) = conn.recv().await {
                        match r.kind {
                            b'M' => got.message.extend_from_slice(&r.fields[0]),
                            b'E' => {
                                got.sender = r.text(0).unwrap_or("").into();
                                got.recipients = (1..r.fields.len())
                                    .map(|i| r.text(i).unwrap_or("").to_string())
                                    .collect();
                                let n = {
                                    let mut s = store.lock().expect("lock");
                                    s.push(got.clone());
                                    s.len()
                                };
                                let id = format!("FWD{n:013}");
                                let _ = conn.send(&Status::Ok(id).to_record()).await;
                                return;
                            }
                            _ => return,
                        }
                    }
                });
            }
        });
        open_up(&path);
        FakeQueue { path, injected }
    }

    pub fn taken(&self) -> Vec<Injected> {
        self.injected.lock().expect("lock").clone()
    }
}

/// A temporary directory the daemons can reach (as root they run as nobody).
pub fn test_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    if is_root() {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    dir
}

/// As root the daemons run as nobody: hand them a directory they must write in.
pub fn give_to_nobody(path: &Path) {
    if is_root() {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
}

/// As root the daemons run as nobody: let them reach a socket we created.
pub fn open_up(path: &Path) {
    if is_root() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    }
}

/// A running moat-local with its fakes. Must be created inside a multi-thread tokio runtime.
pub struct Local {
    pub dir: tempfile::TempDir,
    pub mail_root: PathBuf,
    pub socket: PathBuf,
    pub auth: FakeAuth,
    pub queue: FakeQueue,
    pub log_path: PathBuf,
    child: Option<Child>,
    control: Option<StdUnixStream>,
}

impl Local {
    pub fn start() -> Local {
        Local::start_with(&[])
    }

    /// Starts moat-local with extra (or overriding) settings.
    pub fn start_with(extra: &[(&str, &str)]) -> Local {
        Local::start_in(test_dir(), extra)
    }

    /// Starts moat-local in `dir` (from `test_dir`), e.g. beside a real moat-auth.
    pub fn start_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Local {
        let mail_root = dir.path().join("mail");
        std::fs::create_dir(&mail_root).expect("mail root");
        give_to_nobody(&mail_root);
        let auth = FakeAuth::start(dir.path().join("auth.sock"));
        let queue = FakeQueue::start(dir.path().join("queue.sock"));
        let (child, control, socket, log_path) =
            spawn_local(dir.path(), &mail_root, &auth.path, &queue.path, extra);
        Local {
            dir,
            mail_root,
            socket,
            auth,
            queue,
            log_path,
            child: Some(child),
            control: Some(control),
        }
    }

    pub fn client(&self) -> LocalClient {
        LocalClient::new(&self.socket)
    }

    /// Delivers `message` as queue id `qid`. The descriptor's offset is left at the end of the
    /// file, as a queue that just wrote it would leave it: moat-local must read from 0.
    pub async fn deliver(&self, qid: &str, sender: &str, rcpt: &str, message: &[u8]) -> Status {
        match self.deliver_answer(qid, sender, rcpt, message).await {
            Delivery::Status(status) => status,
            Delivery::Remote => panic!("moat-local answered R (not local) for {rcpt}"),
        }
    }

    /// Like `deliver`, with moat-local's whole answer (`R` included).
    pub async fn deliver_answer(
        &self,
        qid: &str,
        sender: &str,
        rcpt: &str,
        message: &[u8],
    ) -> Delivery {
        let file = message_file(message);
        self.client()
            .deliver(qid, sender, rcpt, file.as_fd())
            .await
            .expect("moat-local answers")
    }

    pub async fn check(&self, rcpt: &str, size: Option<u64>) -> Status {
        self.client()
            .check(rcpt, size)
            .await
            .expect("moat-local answers")
    }

    pub fn maildir(&self, location: &str) -> PathBuf {
        self.mail_root.join(location).join("Maildir")
    }

    /// The messages in `location`'s new/, sorted by name.
    pub fn new_messages(&self, location: &str) -> Vec<Vec<u8>> {
        files_in(&self.maildir(location).join("new"))
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for a log line containing `text` (log lines are written after the reply).
    pub fn wait_log(&self, text: &str) -> String {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(text) || Instant::now() > until {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes the control channel (the supervisor going away) and waits for the exit.
    pub fn close_control(&mut self) -> ExitStatus {
        self.control.take();
        self.wait_exit()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("moat-local did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() || std::env::var_os("MOAT_TEST_SHOW_LOG").is_some() {
            eprintln!("--- moat-local log ---\n{}", self.log());
        }
    }
}

/// Spawns the real binary; returns the child, the control channel, the socket and the log file.
pub fn spawn_local(
    dir: &Path,
    mail_root: &Path,
    auth: &Path,
    queue: &Path,
    extra: &[(&str, &str)],
) -> (Child, StdUnixStream, PathBuf, PathBuf) {
    let socket = dir.join("local.sock");
    let listener = StdUnixListener::bind(&socket).expect("bind local");
    open_up(&socket);
    let log_path = dir.join("moat-local.log");
    let log = File::create(&log_path).expect("log file");
    let mut settings: Vec<(String, String)> = vec![
        ("run_dir".into(), dir.display().to_string()),
        ("hostname".into(), "mx.example.test".into()),
        ("mail_root".into(), mail_root.display().to_string()),
        ("auth_socket".into(), auth.display().to_string()),
        ("queue_socket".into(), queue.display().to_string()),
        ("peers_queue".into(), String::new()),
        ("peers_smtpd".into(), String::new()),
    ];
    if is_root() {
        settings.push(("user".into(), "nobody".into()));
    }
    for (k, v) in extra {
        settings.retain(|(key, _)| key != k);
        settings.push((k.to_string(), v.to_string()));
    }
    let mut items: Vec<Item<'_>> = settings
        .iter()
        .map(|(k, v)| Item::Setting(k.as_str(), v.clone()))
        .collect();
    items.push(Item::Fd("local", listener.as_fd()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat-local"));
    cmd.stdout(Stdio::null()).stderr(Stdio::from(log));
    let (child, control) = spawn(&mut cmd, &items).expect("spawn moat-local");
    (child, control, socket, log_path)
}

/// A message file with its offset at the end.
pub fn message_file(message: &[u8]) -> File {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(message).expect("write");
    file.seek(SeekFrom::End(0)).expect("seek");
    file
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// A small message with CRLF lines and 8-bit bytes in the body.
pub fn sample(subject: &str) -> Vec<u8> {
    format!(
        "Received: from client.example (client.example [192.0.2.1])\r\n\tby mx.example.test\r\n\
         From: sender@remote.example\r\nTo: someone@example.test\r\nSubject: {subject}\r\n\r\n\
         Hello,\r\n.leading dot\r\n\u{e9}t\u{e9}\r\n\r\n-- \r\nend\r\n"
    )
    .into_bytes()
}

/// What moat-local makes of `message` for `sender` and mailbox `to`.
pub fn expected(sender: &str, to: &str, message: &[u8]) -> Vec<u8> {
    let mut v = format!("Return-Path: <{sender}>\r\nDelivered-To: {to}\r\n").into_bytes();
    v.extend_from_slice(message);
    v
}

pub fn status_text(s: &Status) -> &str {
    match s {
        Status::Ok(t) | Status::Temporary(t) | Status::Permanent(t) => t,
    }
}

/// Sends one raw record to `socket` (blocking) and returns the reply.
pub fn raw_request(socket: &Path, record: &Record) -> Status {
    use std::io::Read;
    let mut s = StdUnixStream::connect(socket).expect("connect");
    s.write_all(&record.encode().expect("encode"))
        .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let (r, _) = Record::decode(&buf).expect("decode").expect("whole");
    Status::from_record(&r).expect("status")
}
