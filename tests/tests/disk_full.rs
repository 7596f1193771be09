//! Disk full, end to end (issue 12, "Resource faults"): the queue folder, then the mail folder,
//! sits on a small tmpfs that a filler file fills up while Python's smtplib talks to the stack.
//! A full queue must answer 452 4.3.1 at DATA (insufficient system storage; never 250, never
//! 5xx) and keep serving; a full mail
//! folder must defer the delivery (no bounce, no partial file in new/ or cur/); once the filler
//! is gone the same message goes through, and every message that got 250 arrives exactly once.
//!
//! Root only (mounting needs it; CI runs as root). The tmpfs is mounted over the data folder's
//! `queue/` or `mail/` while the stack is stopped, so the supervisor's start gives it to its
//! user as on any disk; it is unmounted in a Drop guard, after the stack stops, even on panic.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use moat_common::privilege;
use moat_tests::Stack;

const ALICE: &str = "alice@example.test";

/// A stack whose `queue/` or `mail/` folder is a 4 MiB tmpfs. Dropping it stops the stack
/// first (nothing holds the mount then), then unmounts.
struct OnTmpfs {
    stack: Stack,
    mount: PathBuf,
}

impl OnTmpfs {
    /// Starts a stack with `extra` config and alice, stops it, mounts a tmpfs over the data
    /// folder's `folder`, and starts it again there.
    fn start(extra: &str, folder: &str) -> OnTmpfs {
        let mut stack = Stack::start_with_user(extra, ALICE, "alice-secret");
        stack.stop();
        let mount = stack.data.join(folder);
        std::fs::create_dir_all(&mount).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&mount)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount tmpfs on {}: {}",
            mount.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // From here on the guard owns the mount, so a failed restart still unmounts it.
        let mut guarded = OnTmpfs { stack, mount };
        guarded.stack.restart();
        // The supervisor gave the tmpfs's root to the folder's user, as it does on any disk.
        let owner = std::fs::metadata(&guarded.mount).expect("stat mount").uid();
        assert_ne!(
            owner,
            0,
            "{} still belongs to root",
            guarded.mount.display()
        );
        guarded
    }
}

impl Drop for OnTmpfs {
    fn drop(&mut self) {
        self.stack.stop();
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // A process still inside: detach it now, the kernel frees it when they leave.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// Fills the file system of `dir` with a file `filler`, then gives back `room` bytes of it.
/// Returns the filler's path (removing it gives all the space back).
fn fill(dir: &Path, room: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![b'x'; 64 * 1024];
    let mut written: u64 = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("writing the filler: {e}"),
        }
    }
    assert!(written > 1024 * 1024, "only {written} bytes fit the tmpfs");
    file.set_len(written.saturating_sub(room))
        .expect("truncate filler");
    file.sync_all().expect("sync filler");
    path
}

/// Sends a message of about 1 MiB (more than the room `fill` leaves), its end marked so a
/// truncation shows, to alice on port 25 in one connection; returns the replies as
/// `RCPT <code> <text>` and (if RCPT was accepted) `DATA <code> <text>` lines.
fn try_send(s: &Stack, subject: &str) -> String {
    s.python_ok(&format!(
        r#"
import os, smtplib
line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
message = (b"From: someone@sender.example\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n"
           + line * (1024 * 1024 // len(line)) + b"END OF MESSAGE\r\n")
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=60)
c.ehlo("client.example")
code, msg = c.mail("someone@sender.example")
assert code == 250, (code, msg)
code, msg = c.rcpt({ALICE:?})
print("RCPT", code, msg.decode(errors="replace"))
if code == 250:
    code, msg = c.data(message)
    print("DATA", code, msg.decode(errors="replace"))
c.quit()
"#
    ))
}

/// The reply code on the line of `out` starting with `verb`.
fn code(out: &str, verb: &str) -> Option<u16> {
    out.lines().find_map(|l| {
        l.strip_prefix(verb)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// How many of alice's messages (new/ and cur/) carry `subject`.
fn count(s: &Stack, subject: &str) -> usize {
    let header = format!("\r\nSubject: {subject}\r\n");
    s.messages(ALICE)
        .iter()
        .filter(|m| m.contains(&header))
        .count()
}

/// A new connection gets its greeting, EHLO and NOOP answered: the server still serves.
fn still_serving(s: &Stack) {
    s.python_ok(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
code, msg = c.ehlo("client.example"); assert code == 250, (code, msg)
code, msg = c.noop(); assert code == 250, (code, msg)
c.quit()
"#,
    );
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn full_queue_answers_4xx_keeps_serving_and_takes_the_message_when_space_returns() {
    if !privilege::is_root() {
        eprintln!("not root: mounting the small tmpfs needs root (CI runs as root)");
        return;
    }
    let t = OnTmpfs::start("", "queue");
    let s = &t.stack;
    // The queue works on the tmpfs: the supervisor gave it to the queue's user.
    s.deliver(
        "someone@sender.example",
        ALICE,
        "Subject: before\r\n\r\nfits\r\n",
    );
    s.wait_queued(0);

    let filler = fill(&s.data.join("queue"), 64 * 1024);
    let out = try_send(s, "while full");
    let (rcpt, data) = (code(&out, "RCPT"), code(&out, "DATA"));
    let refused_at = match (rcpt, data) {
        (Some(250), Some(c)) => c,
        (Some(c), _) => c,
        _ => panic!("no reply codes:\n{out}"),
    };
    eprintln!("full queue: {out}");
    assert!(
        refused_at == 452 && out.contains("4.3.1"),
        "a full queue must answer 452 4.3.1 (insufficient system storage; never 250 or 5xx):\n{out}\nlog:\n{}",
        s.log()
    );
    still_serving(s);
    let log = s.log();
    let why: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("No space left") || l.contains("disk is full"))
        .collect();
    eprintln!("logged: {why:#?}");
    assert!(!why.is_empty(), "the log must say the disk is full:\n{log}");
    // Nothing of the refused message stayed behind (the filler aside).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.queued(), 0, "{}", s.log());
    assert_eq!(count(s, "while full"), 0, "{}", s.log());

    std::fs::remove_file(&filler).expect("remove filler");
    let out = try_send(s, "while full");
    assert_eq!(code(&out, "DATA"), Some(250), "{out}\nlog:\n{}", s.log());
    let got = s.wait_messages(ALICE, 2);
    // Every 250 arrived exactly once, whole; the refused attempt left no copy.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s.messages(ALICE).len(), 2, "{}", s.log());
    assert_eq!(count(s, "before"), 1);
    assert_eq!(count(s, "while full"), 1);
    assert!(
        got.iter()
            .any(|m| m.contains("while full") && m.ends_with("END OF MESSAGE\r\n")),
        "the message arrived truncated"
    );
    s.wait_queued(0);
    // No orphan of the refused attempt (a partial data file) is left in the queue.
    let left = files_under(&s.data.join("queue"));
    assert!(left.is_empty(), "queue folder after recovery: {left:?}");
}

#[test]
fn full_mail_folder_defers_without_bounce_or_partial_file_then_the_retry_delivers() {
    if !privilege::is_root() {
        eprintln!("not root: mounting the small tmpfs needs root (CI runs as root)");
        return;
    }
    let t = OnTmpfs::start("[queue]\nretry_schedule = [\"1s\"]\n", "mail");
    let s = &t.stack;
    // The first delivery makes alice's Maildir on the tmpfs.
    s.deliver(
        "someone@sender.example",
        ALICE,
        "Subject: before\r\n\r\nfits\r\n",
    );
    s.wait_queued(0);

    let filler = fill(&s.data.join("mail"), 64 * 1024);
    let out = try_send(s, "while full");
    assert_eq!(code(&out, "DATA"), Some(250), "{out}\nlog:\n{}", s.log());
    let qid = out
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("no queue id in {out}"));
    // Two attempts deferred, each logged with the queue id and why; nothing bounced.
    for attempt in [1, 2] {
        s.wait_log(&format!(
            "{qid}: to=<{ALICE}> deferred (attempt {attempt}):"
        ));
    }
    let log = s.log();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(&qid)).collect();
    eprintln!("while full: {ours:#?}");
    assert!(
        ours.iter()
            .any(|l| l.starts_with("moat-local[") && l.contains("deferred")),
        "moat-local says why it deferred:\n{log}"
    );
    assert!(
        !ours
            .iter()
            .any(|l| l.contains("bounced") || l.contains(" failed") || l.contains("expired")),
        "a full disk must not bounce:\n{log}"
    );
    assert_eq!(s.queued(), 1, "{log}");
    // new/ and cur/ hold only the first message, whole.
    assert_eq!(s.messages(ALICE).len(), 1, "{log}");
    assert_eq!(count(s, "before"), 1);
    let tmp = s.maildir(ALICE).join("tmp");
    // The failed write's file in tmp/ is removed at once (a partial one would hold the space).
    let leftovers = files_under(&tmp);
    assert!(
        leftovers.is_empty(),
        "Maildir tmp/ while full: {leftovers:?}"
    );

    std::fs::remove_file(&filler).expect("remove filler");
    // The scheduled retry (every second here) delivers it: no flush needed.
    let started = Instant::now();
    let got = s.wait_messages(ALICE, 2);
    eprintln!("delivered {:?} after the space returned", started.elapsed());
    s.wait_queued(0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.messages(ALICE).len(), 2, "{}", s.log());
    assert_eq!(count(s, "while full"), 1, "{}", s.log());
    assert!(
        got.iter()
            .any(|m| m.contains("while full") && m.ends_with("END OF MESSAGE\r\n")),
        "the message arrived truncated"
    );
    let leftovers = files_under(&tmp);
    assert!(
        leftovers.is_empty(),
        "Maildir tmp/ after recovery: {leftovers:?}"
    );
    // Each file is as long as its name's S= says: nothing was cut short.
    let md = s.maildir(ALICE);
    for name in files_under(&md) {
        let size = std::fs::metadata(md.join(&name)).expect("stat").len();
        let said = name.split(",S=").nth(1).and_then(|r| r.split(',').next());
        assert_eq!(said, Some(size.to_string().as_str()), "{name}");
    }
    assert!(
        !s.log()
            .lines()
            .any(|l| l.contains(&qid) && l.contains("bounced")),
        "{}",
        s.log()
    );
}
