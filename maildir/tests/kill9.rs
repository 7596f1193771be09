//! Done-when #2: a delivery killed with SIGKILL at any point leaves at most a file in tmp/, never a
//! partial message in new/ or cur/; `clean_tmp` sweeps the leftovers.
//!
//! A child process (this test binary re-executed with `--exact <test name>`) streams large messages
//! slowly through `deliver_from`; the parent kills it at several points, some chosen by watching the
//! tmp/ file grow (so the kill is certainly mid-write), some by time.

use std::env;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use moat_maildir::{DeliverOptions, Maildir, Subdir, TMP_MAX_AGE};

const TEST_NAME: &str = "sigkill_during_delivery_leaves_only_tmp_files";
const ROLE_VAR: &str = "MOAT_MAILDIR_KILL_CHILD";
const DIR_VAR: &str = "MOAT_MAILDIR_KILL_DIR";
const BODY_LEN: usize = 2 * 1024 * 1024;
const CHUNK: usize = 32 * 1024;
const CHUNK_DELAY: Duration = Duration::from_millis(2);

fn header(len: usize) -> Vec<u8> {
    format!("Subject: big\r\nX-Body-Length: {len}\r\n\r\n").into_bytes()
}

fn body_byte(k: usize) -> u8 {
    b'a' + (k % 26) as u8
}

/// Streams header + body, pausing after every chunk like a slow SMTP client.
struct SlowMessage {
    header: Vec<u8>,
    pos: usize,
}

impl Read for SlowMessage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let total = self.header.len() + BODY_LEN;
        if self.pos >= total {
            return Ok(0);
        }
        thread::sleep(CHUNK_DELAY);
        let n = buf.len().min(CHUNK).min(total - self.pos);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            let p = self.pos + k;
            *b = match self.header.get(p) {
                Some(&h) => h,
                None => body_byte(p - self.header.len()),
            };
        }
        self.pos += n;
        Ok(n)
    }
}

/// True if `data` is a complete message as the child writes them.
fn is_complete(data: &[u8]) -> bool {
    let h = header(BODY_LEN);
    data.len() == h.len() + BODY_LEN
        && data.starts_with(&h)
        && data[h.len()..]
            .iter()
            .enumerate()
            .all(|(k, &b)| b == body_byte(k))
}

fn child(dir: &Path) {
    let md = Maildir::open(dir).expect("open");
    loop {
        let msg = SlowMessage {
            header: header(BODY_LEN),
            pos: 0,
        };
        md.deliver_from(msg, &DeliverOptions::new())
            .expect("deliver");
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new(env::current_exe().expect("current_exe"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, "1")
        .env(DIR_VAR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

fn files(dir: &Path) -> Vec<(String, PathBuf, u64)> {
    fs::read_dir(dir)
        .expect("readdir")
        .filter_map(|e| {
            let e = e.ok()?;
            let len = e.metadata().ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), e.path(), len))
        })
        .collect()
}

/// Waits until some tmp/ file has at least `bytes` bytes; returns its name.
fn wait_for_tmp_file(md: &Maildir, bytes: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((name, _, _)) = files(&md.path().join("tmp"))
            .into_iter()
            .find(|(_, _, len)| *len >= bytes)
        {
            return name;
        }
        assert!(Instant::now() < deadline, "child never started writing");
        thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn sigkill_during_delivery_leaves_only_tmp_files() {
    if env::var(ROLE_VAR).is_ok() {
        child(Path::new(&env::var(DIR_VAR).expect("dir")));
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(tmp.path().join("Maildir")).expect("create");

    // Kill points: by bytes already written to the tmp file (certainly mid-write), then by time.
    let by_bytes = [
        1u64,
        256 * 1024,
        BODY_LEN as u64 / 2,
        BODY_LEN as u64 - 4 * CHUNK as u64,
    ];
    let by_time = [
        Duration::from_millis(40),
        Duration::from_millis(150),
        Duration::from_millis(400),
    ];
    let mut killed_mid_write = Vec::new();
    for &bytes in &by_bytes {
        let mut c = spawn(md.path());
        let name = wait_for_tmp_file(&md, bytes);
        c.kill().expect("SIGKILL");
        c.wait().expect("reap");
        killed_mid_write.push(name);
    }
    for &delay in &by_time {
        let mut c = spawn(md.path());
        thread::sleep(delay);
        c.kill().expect("SIGKILL");
        c.wait().expect("reap");
    }
    // Let one child finish a message or two before the kill, so new/ is not trivially empty.
    let mut c = spawn(md.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while files(&md.subdir(Subdir::New)).is_empty() {
        assert!(Instant::now() < deadline, "no delivery completed");
        thread::sleep(Duration::from_millis(5));
    }
    c.kill().expect("SIGKILL");
    c.wait().expect("reap");

    // new/ and cur/ hold only complete messages; the killed writes are still in tmp/, nowhere else.
    let delivered: Vec<_> = files(&md.subdir(Subdir::New))
        .into_iter()
        .chain(files(&md.subdir(Subdir::Cur)))
        .collect();
    assert!(!delivered.is_empty());
    for (name, path, _) in &delivered {
        assert!(
            is_complete(&fs::read(path).expect("read")),
            "partial message {name} in new/ or cur/"
        );
    }
    let leftovers: Vec<String> = files(&md.path().join("tmp"))
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    for name in &killed_mid_write {
        assert!(
            leftovers.contains(name),
            "killed write {name} should remain in tmp/"
        );
        assert!(
            !delivered
                .iter()
                .any(|(n, _, _)| n.starts_with(name.as_str())),
            "{name} reached new/"
        );
    }

    // The listing and UID sync do not see tmp/; the sweep removes leftovers only when old enough.
    assert_eq!(md.list().expect("list").len(), delivered.len());
    assert_eq!(
        md.sync_uidlist().expect("sync").records().len(),
        delivered.len()
    );
    assert_eq!(
        md.clean_tmp(TMP_MAX_AGE).expect("sweep"),
        0,
        "fresh files are kept"
    );
    assert_eq!(
        md.clean_tmp(Duration::ZERO).expect("sweep"),
        leftovers.len()
    );
    assert!(files(&md.path().join("tmp")).is_empty());
    assert_eq!(
        files(&md.subdir(Subdir::New)).len(),
        delivered.len(),
        "the sweep never touches new/"
    );
}
