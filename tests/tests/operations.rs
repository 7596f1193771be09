//! Running the MTA as an admin does: mail for remote domains waits in the queue and `moat
//! queue` lists, shows, flushes and deletes it; `sendmail` from a script delivers; SIGHUP swaps
//! the certificate without refusing anyone; SIGTERM drains and stops every process.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moat_tests::{Stack, bin_dir};

fn stack() -> Stack {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let s = Stack::start_configured(
        moat_tests::Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\ntimeout_connect_secs = 2\n\
             [remote.routes]\n\"remote.example\" = \"127.0.0.1:{closed}\"\n"
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("bob@example.test", "bob-secret");
    s
}

fn submit(s: &Stack, to: &str, subject: &str) {
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", ["{to}"], b"From: alice@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n")
"#
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

/// One line of `moat queue list --json`.
struct Entry {
    id: String,
    recipients: String,
}

fn queue_list(s: &Stack) -> Vec<Entry> {
    let json: serde_json::Value =
        serde_json::from_str(&s.admin(&["queue", "list", "--json"], "")).expect("JSON");
    json.as_array()
        .expect("a list")
        .iter()
        .map(|m| Entry {
            id: m["id"].as_str().unwrap_or_default().to_string(),
            recipients: m["recipients"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

#[test]
fn remote_mail_waits_in_the_queue_and_moat_queue_manages_it() {
    let s = stack();
    assert!(s.admin(&["queue", "list"], "").contains("empty"));
    submit(&s, "friend@remote.example", "for later");
    let deadline = Instant::now() + Duration::from_secs(20);
    let entry = loop {
        let list = queue_list(&s);
        if let Some(e) = list.into_iter().next() {
            let shown = s.admin(&["queue", "show", &e.id], "");
            // Routed to a closed loopback port: deferred, never bounced.
            if shown.contains("4.4.1 127.0.0.1[127.0.0.1]") {
                break e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not queued as waiting:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(entry.recipients, "friend@remote.example");
    let table = s.admin(&["queue", "list"], "");
    assert!(
        table.contains(&entry.id) && table.contains("<alice@example.test>"),
        "{table}"
    );
    // It waited; it did not bounce back to alice.
    assert_eq!(s.messages("alice@example.test").len(), 0, "{}", s.log());
    s.admin(&["queue", "flush"], "");
    // A message whose delivery is in progress (the flush just started one) is deleted as soon
    // as that attempt ends; otherwise at once.
    s.admin(&["queue", "delete", &entry.id], "");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !queue_list(&s).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still queued after delete:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.queued(), 0);
    let out = s.moat(&["queue", "show", &entry.id], "");
    assert!(!out.status.success(), "a deleted message cannot be shown");
    // The queue id is on the log lines of the message's life.
    let lines = s.log().lines().filter(|l| l.contains(&entry.id)).count();
    assert!(lines >= 2, "queue id on the log lines:\n{}", s.log());
}

#[test]
fn sendmail_from_a_script_delivers() {
    let s = stack();
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
        .write_all(b"To: bob@example.test\nSubject: nightly report\n\nall good\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = s.wait_messages("bob@example.test", 1);
    assert!(bob[0].contains("Subject: nightly report\r\n"), "{}", bob[0]);
    assert!(
        bob[0].contains("all good\r\n"),
        "CRLF line endings: {}",
        bob[0]
    );
    assert!(
        bob[0].starts_with("Return-Path: <cron@example.test>"),
        "{}",
        bob[0]
    );
    assert!(bob[0].contains("\r\nDate: ") && bob[0].to_ascii_lowercase().contains("message-id:"));
}

#[test]
fn sighup_swaps_the_certificate_without_refusing_connections() {
    let s = stack();
    let old_pid = s.pid_of("moat-smtpd").expect("smtpd");
    let fresh =
        rcgen::generate_simple_self_signed(vec!["renewed.example.test".to_string()]).expect("cert");
    std::fs::write(s.data.join("tls/cert.pem"), fresh.cert.pem()).expect("cert");
    std::fs::write(
        s.data.join("tls/key.pem"),
        fresh.signing_key.serialize_pem(),
    )
    .expect("key");
    moat_tests::signal(s.moat_pid(), rustix::process::Signal::HUP);
    // Keep connecting while the swap happens: no connection may be refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::net::TcpStream::connect(("127.0.0.1", s.submission)).expect("never refused");
        if s.pid_of("moat-smtpd").is_some_and(|p| p != old_pid) {
            break;
        }
        assert!(Instant::now() < deadline, "no new moat-smtpd:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = s.python(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    print(ssl.DER_cert_to_PEM_cert(c.sock.getpeercert(True)))
"#,
    );
    let served = String::from_utf8_lossy(&out.stdout).replace(['\r', '\n'], "");
    let expected = fresh.cert.pem().replace(['\r', '\n'], "");
    assert_eq!(
        served,
        expected,
        "the new certificate is served:\n{}",
        s.log()
    );
    // And mail still flows.
    submit(&s, "bob@example.test", "after reload");
    s.wait_messages("bob@example.test", 1);
}

#[test]
fn sigterm_drains_and_stops_every_process() {
    let mut s = stack();
    submit(&s, "bob@example.test", "before stopping");
    s.wait_messages("bob@example.test", 1);
    let children: Vec<u32> = ["moat-smtpd", "moat-queue", "moat-local", "moat-auth"]
        .iter()
        .map(|p| s.pid_of(p).expect("running"))
        .collect();
    let status = s.stop().expect("stopped");
    assert!(
        status.success(),
        "moat exits 0 after SIGTERM: {status}\n{}",
        s.log()
    );
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|st| st.contains(") Z ")),
            "process {pid} outlived the supervisor"
        );
    }
    assert!(s.log().contains("stopped"), "{}", s.log());
}
