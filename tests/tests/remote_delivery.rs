//! moat-remote against real receiving servers on loopback: Python's aiosmtpd
//! (`tests/peers/smtp_peer.py`, Debian python3-aiosmtpd) reached through static routes and
//! through an MX lookup served by a dnslib DNS server (python3-dnslib); hostile peers are raw
//! sockets here. Every address is 127.0.0.1.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moat_tests::dns::DnsServer;
use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};

fn stack(remote: &str) -> Stack {
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[queue]\nretry_min = \"1s\"\n[remote]\nnameserver = \"127.0.0.1:9\"\n\
             timeout_connect_secs = 3\ntimeout_command_secs = 3\n{remote}"
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s
}

/// Submits `message` as alice on port 587 (STARTTLS + AUTH), with smtplib.
fn submit(s: &Stack, to: &[&str], message: &[u8]) {
    let to: Vec<String> = to.iter().map(|t| format!("{t:?}")).collect();
    let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", [{}], bytes.fromhex("{hex}"))
"#,
        to.join(", ")
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

/// The message body after the headers the stack prepends (Received) — from `Subject:` on.
fn from_subject(bytes: &[u8]) -> &[u8] {
    let at = bytes
        .windows(9)
        .position(|w| w == b"Subject: ")
        .expect("Subject in the delivered message");
    &bytes[at..]
}

#[test]
fn accepting_peer_gets_the_message_byte_exact_and_mixed_answers_are_per_recipient() {
    let peer = Peer::start(None);
    let s = stack(&format!(
        "[remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
        peer.port
    ));
    let body = b"From: alice@example.test\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\
        Message-ID: <dots@example.test>\r\nSubject: dots\r\n\r\n\
        .leading dot\r\n..two\r\n.\r\nend\r\n";
    submit(
        &s,
        &[
            "ok1@far.example",
            "perm@far.example",
            "temp@far.example",
            "ok2@far.example",
        ],
        body,
    );
    let got = peer.wait(1, &s);
    let (env, bytes) = &got[0];
    assert_eq!(
        env,
        &vec![
            "alice@example.test".to_string(),
            "ok1@far.example".into(),
            "ok2@far.example".into()
        ]
    );
    assert_eq!(
        from_subject(bytes),
        from_subject(body),
        "byte-exact after dot-unstuffing"
    );
    // 550 → failed (the bounce goes when the message is finished); 451 → retried on the short
    // schedule, and the recipients already delivered are not sent again.
    s.wait_log("to=<perm@far.example> failed: 5.1.1");
    s.wait_log("to=<temp@far.example> deferred (attempt 2)");
    assert_eq!(
        peer.received().len(),
        1,
        "delivered recipients are not sent again"
    );
    assert_eq!(s.queued(), 1, "the 451 recipient waits in the queue");
    // A message whose only recipient gets 550 bounces into alice's Maildir at once.
    submit(
        &s,
        &["perm2@far.example"],
        b"From: alice@example.test\r\nSubject: refused\r\n\r\nhi\r\n",
    );
    let bounces = s.wait_messages("alice@example.test", 1);
    assert!(bounces[0].contains("perm2@far.example"), "{}", bounces[0]);
    assert!(bounces[0].contains("550 5.1.1"), "{}", bounces[0]);
}

fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (dir.join("peer-cert.pem"), dir.join("peer-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

#[test]
fn self_signed_starttls_peer_is_used_under_may_and_refused_under_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(tmp.path());
    let peer = Peer::start(Some((&cert, &key)));
    let s = stack(&format!(
        "[remote.routes]\n\"may.example\" = {{ host = \"localhost:{0}\", tls = \"may\" }}\n\
         \"verify.example\" = {{ host = \"127.0.0.1:{0}\", tls = \"verify\" }}\n",
        peer.port
    ));
    submit(
        &s,
        &["ok@may.example"],
        b"From: alice@example.test\r\nSubject: tls\r\n\r\nhi\r\n",
    );
    let got = peer.wait(1, &s);
    assert_eq!(got[0].0[1], "ok@may.example");
    submit(
        &s,
        &["ok@verify.example"],
        b"From: alice@example.test\r\nSubject: verify\r\n\r\nhi\r\n",
    );
    s.wait_log("to=<ok@verify.example> deferred (attempt 1)");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        peer.received().len(),
        1,
        "nothing sent without a verified certificate"
    );
    assert!(s.log().contains("4.7.5"), "{}", s.log());
}

/// A peer that greets, then misbehaves as `mode` says, for every connection.
fn hostile(mode: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                match mode {
                    "silent" => {
                        std::thread::sleep(Duration::from_secs(60));
                    }
                    "endless-line" => {
                        let chunk = [b'x'; 64 * 1024];
                        let _ = stream.write_all(b"220 ");
                        for _ in 0..160 {
                            if stream.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        // A 10 MB multi-line reply to EHLO.
                        let _ = stream.write_all(b"220 hostile ESMTP\r\n");
                        let mut buf = [0u8; 512];
                        let _ = stream.read(&mut buf);
                        let line = format!("250-{}\r\n", "y".repeat(1000));
                        for _ in 0..10_000 {
                            if stream.write_all(line.as_bytes()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_peers_cost_bounded_memory_and_other_deliveries_go_on() {
    let peer = Peer::start(None);
    let (silent, line, flood) = (hostile("silent"), hostile("endless-line"), hostile("flood"));
    let s = stack(&format!(
        "[remote.routes]\n\"good.example\" = \"127.0.0.1:{}\"\n\
         \"silent.example\" = \"127.0.0.1:{silent}\"\n\"line.example\" = \"127.0.0.1:{line}\"\n\
         \"flood.example\" = \"127.0.0.1:{flood}\"\n",
        peer.port
    ));
    submit(
        &s,
        &["x@silent.example", "x@line.example", "x@flood.example"],
        b"From: alice@example.test\r\nSubject: hostile\r\n\r\nhi\r\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    submit(
        &s,
        &["ok@good.example"],
        b"From: alice@example.test\r\nSubject: good\r\n\r\nhi\r\n",
    );
    peer.wait(1, &s);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the good delivery waited for the silent peer"
    );
    for domain in ["silent", "line", "flood"] {
        s.wait_log(&format!("to=<x@{domain}.example> deferred (attempt 1)"));
    }
    let log = s.log();
    assert!(log.contains("longer than"), "{log}");
    assert!(log.contains("no answer within 3 s"), "{log}");
    let pid = s.pid_of("moat-remote").expect("moat-remote runs");
    let hwm = vm_hwm_kib(pid);
    assert!(hwm < 64 * 1024, "moat-remote peaked at {hwm} KiB");
    assert!(
        s.messages("alice@example.test").is_empty(),
        "no bounce: temporary"
    );
}

#[test]
fn mx_lookup_through_a_loopback_dns_server() {
    let peer = Peer::start(None);
    let zone = "mx.example. 60 IN MX 20 backup.mx.example.\n\
                mx.example. 60 IN MX 10 mail.mx.example.\n\
                mail.mx.example. 60 IN A 127.0.0.1\n\
                backup.mx.example. 60 IN A 127.0.0.2\n\
                nullmx.example. 60 IN MX 0 .\n";
    let dns = DnsServer::start(zone);
    let dns_port = dns.port;
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[queue]\nretry_min = \"1s\"\n[remote]\nnameserver = \"127.0.0.1:{dns_port}\"\n\
             port = {}\ntimeout_connect_secs = 3\ntimeout_command_secs = 3\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    submit(
        &s,
        &["ok@mx.example", "someone@nullmx.example"],
        b"From: alice@example.test\r\nSubject: mx\r\n\r\nhi\r\n",
    );
    let got = peer.wait(1, &s);
    assert_eq!(got[0].0[1], "ok@mx.example");
    let bounces = s.wait_messages("alice@example.test", 1);
    assert!(bounces[0].contains("null MX"), "{}", bounces[0]);
    drop(dns);
}
