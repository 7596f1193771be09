//! The SQL store down, end to end (issue 12, "Resource faults"): the stack (`moat serve`) keeps
//! its users in a fresh PostgreSQL database `moat_test_<random>` (created and dropped with
//! `psql`: `moat_tests::pg`). The database is then made unreachable without
//! stopping the machine's PostgreSQL server, which other tests share: `ALLOW_CONNECTIONS false`
//! and its sessions terminated. While it is down, Python's smtplib must hear 451 4.3.0 at RCPT
//! for a local user (never 250, never 550 "no such user"), imaplib a temporary refusal
//! (`NO [UNAVAILABLE]`, never `[AUTHENTICATIONFAILED]`), and a message queued by `sendmail`
//! (which needs no store to queue) must be deferred, not bounced. Once the database takes
//! connections again, with nothing restarted, RCPT gets 250, the deferred message is
//! delivered by the scheduled retry, the IMAP login works, and every message that got 250
//! arrives exactly once.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use moat_tests::pg::{Database, admin_url};
use moat_tests::{Mode, Stack, bin_dir};

const ALICE: &str = "alice@example.test";

/// RCPT to alice on port 25 in one connection; if accepted, the message goes with `subject`.
/// Returns `RCPT <code> <text>` and (if RCPT got 250) `DATA <code> <text>` lines.
fn try_send(s: &Stack, subject: &str) -> String {
    s.python_ok(&format!(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=60)
c.ehlo("client.example")
code, msg = c.mail("someone@sender.example")
assert code == 250, (code, msg)
code, msg = c.rcpt({ALICE:?})
print("RCPT", code, msg.decode(errors="replace"))
if code == 250:
    code, msg = c.data(b"From: someone@sender.example\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nhi\r\n")
    print("DATA", code, msg.decode(errors="replace"))
c.quit()
"#
    ))
}

/// An IMAP login as alice: `LOGIN OK`, or `LOGIN REFUSED <server text>`.
fn try_login(s: &Stack) -> String {
    s.python_ok(
        r#"
import imaplib, os
M = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=30)
try:
    typ, _ = M.login("alice@example.test", "alice-secret")
    print("LOGIN", typ)
    M.logout()
except imaplib.IMAP4.error as e:
    print("LOGIN REFUSED", e)
"#,
    )
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

/// Queues a message for alice with the `sendmail` command: the queue takes it without asking
/// the store, so it waits for moat-local's delivery.
fn sendmail(s: &Stack, subject: &str) {
    let mut child = Command::new(bin_dir().join("sendmail"))
        .args(["-t", "-f", "cron@example.test"])
        .env("MOAT_QUEUE_SOCKET", s.data.join("run/queue.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sendmail");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("To: {ALICE}\nSubject: {subject}\n\nqueued\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "sendmail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn store_down_answers_4xx_defers_and_recovers_without_restart() {
    let admin = admin_url();
    if admin == "skip" {
        println!("MOAT_TEST_PG=skip: this test needs PostgreSQL");
        return;
    }
    let db = Database::create(&admin);
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let store = format!("{base}/{}", db.name);

    let mut s = Stack::start_configured(Mode::Serve, "[queue]\nretry_schedule = [\"1s\"]\n");
    let toml = std::fs::read_to_string(&s.config).expect("config");
    let sqlite = "url = \"sqlite:db/users.db\"";
    assert!(toml.contains(sqlite), "{toml}");
    std::fs::write(&s.config, toml.replace(sqlite, &format!("url = {store:?}"))).expect("config");
    s.restart();
    let pid = s.pid_of("moat-auth").expect("moat-auth runs");
    s.wait_log(&format!("moat-auth[{pid}]: user store open (Postgres)"));
    s.add_domain("example.test");
    s.add_user(ALICE, "alice-secret");

    // Up: all works.
    let out = try_send(&s, "before");
    assert_eq!(code(&out, "DATA"), Some(250), "{out}\nlog:\n{}", s.log());
    s.wait_messages(ALICE, 1);
    assert_eq!(try_login(&s).trim(), "LOGIN OK", "{}", s.log());

    let auth_lines = s.log_of("moat-auth").len();
    db.take_down();

    // RCPT: a temporary refusal, never "no such user", never 250.
    let out = try_send(&s, "while down");
    eprintln!("store down, SMTP: {out}");
    assert_eq!(
        code(&out, "RCPT"),
        Some(451),
        "RCPT while the store is down:\n{out}\nlog:\n{}",
        s.log()
    );
    assert!(out.contains("4.3.0"), "{out}");
    // IMAP: a temporary refusal, not a wrong password.
    let out = try_login(&s);
    eprintln!("store down, IMAP: {out}");
    assert!(
        out.contains("LOGIN REFUSED") && out.contains("[UNAVAILABLE]"),
        "IMAP login while the store is down:\n{out}\nlog:\n{}",
        s.log()
    );
    assert!(!out.contains("AUTHENTICATIONFAILED"), "{out}");
    // A queued message is deferred (twice, the retry runs every second), not bounced.
    sendmail(&s, "queued while down");
    s.wait_log(&format!("to=<{ALICE}> deferred (attempt 2):"));
    let log = s.log();
    let deferred: Vec<&str> = log.lines().filter(|l| l.contains("deferred")).collect();
    eprintln!("while down: {deferred:#?}");
    assert!(
        !log.lines().any(|l| l.contains(&format!("to=<{ALICE}>"))
            && (l.contains("bounced") || l.contains(" failed") || l.contains("expired"))),
        "the store down must not bounce:\n{log}"
    );
    assert_eq!(s.queued(), 1, "{log}");
    // moat-auth says why: each refused lookup or login is logged with the store's error.
    let auth_log = s.log_of("moat-auth");
    let why = auth_log.get(auth_lines..).unwrap_or_default();
    eprintln!("moat-auth while down: {why:#?}");
    assert!(
        why.iter().any(|l| l.contains(&db.name)),
        "moat-auth logs the store's error:\n{log}"
    );
    assert_eq!(s.messages(ALICE).len(), 1, "{log}");

    // Back, nothing restarted: the deferred message arrives, RCPT and login work again.
    let auth = s.pid_of("moat-auth");
    db.bring_back();
    s.wait_messages(ALICE, 2);
    s.wait_queued(0);
    let out = try_send(&s, "after");
    assert_eq!(code(&out, "RCPT"), Some(250), "{out}\nlog:\n{}", s.log());
    assert_eq!(code(&out, "DATA"), Some(250), "{out}\nlog:\n{}", s.log());
    assert_eq!(try_login(&s).trim(), "LOGIN OK", "{}", s.log());
    s.wait_messages(ALICE, 3);
    assert_eq!(s.pid_of("moat-auth"), auth, "moat-auth was restarted");
    // Every 250 arrived exactly once; the refused attempt left no copy.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.messages(ALICE).len(), 3, "{}", s.log());
    for subject in ["before", "queued while down", "after"] {
        assert_eq!(count(&s, subject), 1, "{subject}\n{}", s.log());
    }
    assert_eq!(count(&s, "while down"), 0, "{}", s.log());
    assert!(
        !s.log().lines().any(|l| l.contains("bounced")),
        "{}",
        s.log()
    );
    s.stop();
}
