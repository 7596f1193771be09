//! The harness for end-to-end tests: a whole Moat stack started with `moat up` in a temporary
//! folder on free loopback ports, driven by real clients (Python's smtplib, swaks, lettre), and
//! inspected through the CLI and the Maildirs on disk, as an admin would.

pub mod dkim;
pub mod dns;
pub mod getmail;
pub mod imap_raw;
pub mod peer;
pub mod pg;
pub mod pop3_raw;
pub mod served;
pub mod smtp_client;

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::smtp_client::Client;

/// Where the workspace's binaries are: `MOAT_BIN_DIR`, or the folder above this test's `deps/`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MOAT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = deps.parent().expect("target dir").to_path_buf();
    for program in PROGRAMS.iter().chain(&["moat", "sendmail"]) {
        assert!(
            dir.join(program).is_file(),
            "{program} is not built in {}: run `cargo build --workspace` (./scripts/test does)",
            dir.display()
        );
    }
    dir
}

/// `N` distinct free loopback ports below the kernel's ephemeral range (32768 and up), so the
/// many short client connections of parallel tests cannot take one between our choice and the
/// stack's bind. All are held open until every one is chosen.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut next = seed;
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(N);
    while listeners.len() < N {
        next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let port = 20_000 + (next >> 8) % 12_000;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            listeners.push(l);
        }
    }
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// The programs the supervisor runs (every protocol has listeners in the harness, so all).
pub const PROGRAMS: [&str; 10] = [
    "moat-smtpd",
    "moat-queue",
    "moat-local",
    "moat-auth",
    "moat-pop3d",
    "moat-remote",
    "moat-imapd",
    "moat-lists",
    "moat-pop3-login",
    "moat-imap-login",
];

/// Every program the supervisor runs and the system user it runs as (as root, `moat serve`).
pub const USERS: [(&str, &str); 10] = [
    ("moat-smtpd", "moat-smtpd"),
    ("moat-queue", "moat-queue"),
    ("moat-local", "moat-vmail"),
    ("moat-auth", "moat-auth"),
    ("moat-remote", "moat-remote"),
    ("moat-lists", "moat-lists"),
    ("moat-pop3d", "moat-vmail"),
    ("moat-imapd", "moat-vmail"),
    ("moat-pop3-login", "moat-pop3-login"),
    ("moat-imap-login", "moat-imap-login"),
];

/// How the stack is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `moat up --dir DIR`: the quickstart.
    Up,
    /// `moat --config FILE serve`: the supervisor as installed.
    Serve,
}

/// A running stack.
pub struct Stack {
    _tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub imap: u16,
    pub imaps: u16,
    log: PathBuf,
    mode: Mode,
    moat: Option<Child>,
}

/// The supervisor's command line for `mode`.
fn moat_command(mode: Mode, data: &Path, config: &Path) -> Command {
    let mut command = Command::new(bin_dir().join("moat"));
    match mode {
        Mode::Up => command.args(["up", "--no-demo", "--dir"]).arg(data),
        Mode::Serve => command.arg("--config").arg(config).arg("serve"),
    };
    command.env_remove("MOAT_CONFIG").stdin(Stdio::null());
    command
}

impl Stack {
    /// Starts `moat up` on free ports and waits until every service answers.
    pub fn start() -> Stack {
        Stack::start_with(Mode::Up)
    }

    /// Starts the stack with `moat up` (quickstart) or `moat serve --config` (the production
    /// supervisor; the certificate is made here since nothing else would).
    pub fn start_with(mode: Mode) -> Stack {
        Stack::start_configured(mode, "")
    }

    /// Like `start_with`, with `extra` appended to moat.toml (whole sections, e.g. a
    /// `[limits]` table with lower limits or shorter timeouts for one test). Without a
    /// `[remote]` section, moat-remote asks a DNS server on 127.0.0.1:9 (nothing answers), so
    /// no test ever sends a query off the machine.
    pub fn start_configured(mode: Mode, extra: &str) -> Stack {
        // Another test may still grab a port between our choice and the bind: try again then.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Stack::try_start(mode, extra) {
                Ok(stack) => return stack,
                Err(log) if attempt < 4 && log.contains("Address already in use") => continue,
                Err(log) => panic!("the stack did not start:\n{log}"),
            }
        }
    }

    /// `moat up` with `extra` like `start_configured`, and one user (`local@domain`, its domain
    /// added first).
    pub fn start_with_user(extra: &str, address: &str, password: &str) -> Stack {
        let s = Stack::start_configured(Mode::Up, extra);
        let (_, domain) = address.split_once('@').expect("address");
        s.add_domain(domain);
        s.add_user(address, password);
        s
    }

    fn try_start(mode: Mode, extra: &str) -> Result<Stack, String> {
        let default_remote = if extra.contains("[remote]") {
            ""
        } else {
            "[remote]\nnameserver = \"127.0.0.1:9\"\n"
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        // As root, the programs run as their own system users and must be able to reach in.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let data = tmp.path().join("moat-data");
        std::fs::create_dir_all(data.join("db")).expect("mkdir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let [smtp, submission, submissions, pop3, pop3s, imap, imaps] = free_ports::<7>();
        let config = data.join("moat.toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mx.example.test\"\n\
                 [store]\nurl = \"sqlite:db/users.db\"\n\
                 [paths]\nmail = \"mail\"\nqueue = \"queue\"\nrun = \"run\"\n\
                 [listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nsubmission = [\"127.0.0.1:{submission}\"]\n\
                 submissions = [\"127.0.0.1:{submissions}\"]\n\
                 pop3 = [\"127.0.0.1:{pop3}\"]\npop3s = [\"127.0.0.1:{pop3s}\"]\n\
                 imap = [\"127.0.0.1:{imap}\"]\nimaps = [\"127.0.0.1:{imaps}\"]\n\
                 {default_remote}{extra}"
            ),
        )
        .expect("write config");
        let log = tmp.path().join("moat.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        if mode == Mode::Serve {
            // `moat up` makes its certificate; the installed supervisor expects one.
            let tls = data.join("tls");
            std::fs::create_dir_all(&tls).expect("mkdir tls");
            let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .expect("certificate");
            std::fs::write(tls.join("cert.pem"), certified.cert.pem()).expect("cert");
            std::fs::write(tls.join("key.pem"), certified.signing_key.serialize_pem())
                .expect("key");
            std::fs::set_permissions(tls.join("key.pem"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod key");
        }
        let moat = moat_command(mode, &data, &config)
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file)
            .spawn()
            .expect("start moat up");
        let mut stack = Stack {
            _tmp: tmp,
            data,
            config,
            smtp,
            submission,
            submissions,
            pop3,
            pop3s,
            imap,
            imaps,
            log,
            mode,
            moat: Some(moat),
        };
        stack.wait_ready()?;
        Ok(stack)
    }

    /// Stops the stack with SIGTERM and starts it again on the same folder and ports (what an
    /// admin's restart does); the log goes on in the same file.
    pub fn restart(&mut self) {
        self.stop();
        let log_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("log file");
        let moat = moat_command(self.mode, &self.data, &self.config)
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file)
            .spawn()
            .expect("start moat again");
        self.moat = Some(moat);
        if let Err(log) = self.wait_ready() {
            panic!("the stack did not start again:\n{log}");
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ports_up = [
                self.smtp,
                self.submission,
                self.submissions,
                self.pop3,
                self.pop3s,
                self.imap,
                self.imaps,
            ]
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            let programs_up = PROGRAMS.iter().all(|p| self.pid_of(p).is_some());
            if ports_up && programs_up {
                return Ok(());
            }
            if let Some(child) = self.moat.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("moat exited ({status}):\n{}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "the stack did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything the stack logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The supervisor's pid.
    pub fn moat_pid(&self) -> u32 {
        self.moat.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The pid of one of our stack's programs (a child of our supervisor).
    pub fn pid_of(&self, program: &str) -> Option<u32> {
        self.pids_of(program).into_iter().next()
    }

    /// Every running child of the supervisor started as `program` (more than one while a
    /// reload's replaced instance finishes its sessions).
    pub fn pids_of(&self, program: &str) -> Vec<u32> {
        let parent = self.moat_pid();
        let mut pids = Vec::new();
        let Ok(proc) = std::fs::read_dir("/proc") else {
            return pids;
        };
        for entry in proc.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // comm is in parentheses; ppid is the second field after it.
            let Some((head, after)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            if ppid != parent || fields.first() == Some(&"Z") {
                continue;
            }
            // The name it was started as, cut to 15 bytes by the kernel (our names fit). Not
            // /proc/PID/exe: the children are not dumpable, so only root may read that link.
            let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
            if comm == &program[..program.len().min(15)] {
                pids.push(pid);
            }
        }
        pids
    }

    /// Runs the admin CLI against this stack.
    pub fn moat(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(bin_dir().join("moat"))
            .args(args)
            .env("MOAT_CONFIG", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run moat");
        if let Some(mut input) = child.stdin.take() {
            use std::io::Write as _;
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait_with_output().expect("wait moat")
    }

    /// Runs the CLI and insists it succeeds.
    pub fn admin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.moat(args, stdin);
        assert!(
            out.status.success(),
            "moat {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_domain(&self, domain: &str) {
        self.admin(&["domain", "add", domain], "");
    }

    pub fn add_user(&self, address: &str, password: &str) {
        self.admin(
            &["user", "add", address, "--password-stdin"],
            &format!("{password}\n"),
        );
    }

    /// The Maildir of a user (`local@domain`).
    pub fn maildir(&self, address: &str) -> PathBuf {
        let (local, domain) = address.split_once('@').expect("address");
        self.data
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir")
    }

    /// Every message in a user's INBOX (new/ and cur/), sorted by file name.
    pub fn messages(&self, address: &str) -> Vec<String> {
        let md = self.maildir(address);
        let mut names: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(md.join(sub)).ok())
            .flat_map(|d| d.flatten().map(|e| e.path()))
            .collect();
        names.sort();
        names
            .iter()
            .filter_map(|p| {
                let mut s = String::new();
                std::fs::File::open(p).ok()?.read_to_string(&mut s).ok()?;
                Some(s)
            })
            .collect()
    }

    /// Waits until `address` has at least `n` messages; returns them.
    pub fn wait_messages(&self, address: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.messages(address);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{address} has {} of {n} messages after 30 s; log:\n{}",
                got.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the stack's log contains `needle` (30 s at most).
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a line of the log starts with `prefix` (30 s at most); returns the rest of
    /// the first such line.
    pub fn logged(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(rest) = self.log().lines().find_map(|l| l.strip_prefix(prefix)) {
                return rest.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line starts with {prefix:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log lines written by `program` (any instance of it: each line starts `program[pid]`).
    pub fn log_of(&self, program: &str) -> Vec<String> {
        let prefix = format!("{program}[");
        self.log()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// Waits until the supervisor runs a `program` other than pid `old` (its restart); returns
    /// the new pid.
    pub fn wait_restarted(&self, program: &str, old: u32, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            match self.pid_of(program) {
                Some(pid) if pid != old => return pid,
                _ => assert!(
                    Instant::now() < deadline,
                    "{program} not restarted:\n{}",
                    self.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many messages are still in the queue.
    pub fn queued(&self) -> usize {
        std::fs::read_dir(self.data.join("queue/env"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits (up to 10 s) until exactly `n` messages are in the queue: the queue removes a
    /// message's files just after it logs the last delivery, so a count taken right after
    /// that log line may still include it.
    pub fn wait_queued(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.queued() != n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.queued(), n, "messages in the queue\n{}", self.log());
    }

    /// The certificate the stack serves (self-signed).
    pub fn cert_path(&self) -> PathBuf {
        self.data.join("tls/cert.pem")
    }

    /// Runs a Python snippet (smtplib & co. are the clients nobody here wrote).
    pub fn python(&self, script: &str) -> Output {
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("SMTP_PORT", self.smtp.to_string())
            .env("SUBMISSION_PORT", self.submission.to_string())
            .env("SUBMISSIONS_PORT", self.submissions.to_string())
            .env("POP3_PORT", self.pop3.to_string())
            .env("POP3S_PORT", self.pop3s.to_string())
            .env("IMAP_PORT", self.imap.to_string())
            .env("IMAPS_PORT", self.imaps.to_string())
            .output()
            .expect("run python3")
    }

    /// Sends `message` (header, empty line, body) from `sender` to `rcpt` over SMTP on port 25
    /// with Python's smtplib; a refusal fails the test.
    pub fn send_smtp(&self, sender: &str, rcpt: &str, message: &str) {
        self.python_ok(&format!(
            r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
c.sendmail({sender:?}, [{rcpt:?}], {message:?}.encode())
c.quit()
"#
        ));
    }

    /// Sends `message` (header, empty line, body) from `sender` to `rcpt` over SMTP on port 25
    /// with the harness's own client, insists on a 250, and waits until `rcpt` holds one message
    /// more. One at a time: queued messages are delivered concurrently, so only this keeps the
    /// Maildir (and so the UID) order the sending order.
    pub fn deliver(&self, sender: &str, rcpt: &str, message: &str) {
        let before = self.messages(rcpt).len();
        let mut c = Client::connect(self.smtp).expect("smtp");
        c.ehlo("client.example").expect("ehlo");
        let r = c
            .send_mail(sender, &[rcpt], message.as_bytes())
            .expect("send");
        assert_eq!(r.0, 250, "{r:?}");
        self.wait_messages(rcpt, before + 1);
    }

    /// Runs `script` like `python` and returns its stdout; a failing script fails the test with
    /// its output and the stack's log.
    pub fn python_ok(&self, script: &str) -> String {
        let out = self.python(script);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python failed:\n{stdout}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    /// Stops the stack with SIGTERM (the graceful path) and returns the supervisor's exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.moat.take()?;
        signal(child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let children: Vec<u32> = PROGRAMS.iter().filter_map(|p| self.pid_of(p)).collect();
        self.stop();
        for pid in children {
            signal(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Reads a file if it exists.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
