//! moat-remote as an SMTP client, against aiosmtpd peers on loopback
//! (`tests/peers/smtp_peer.py`, which counts its sessions and can leave out SMTPUTF8 or
//! 8BITMIME, or answer slowly): connection reuse, the per-destination concurrency limit,
//! SMTPUTF8 and 8BITMIME, MX preference with a refusing first host (dnslib on 127.0.0.1), and the
//! `encrypt` TLS policy against a plaintext-only server.

use std::time::{Duration, Instant};

use moat_tests::dns::DnsServer;
use moat_tests::peer::{Options, Peer};
use moat_tests::{Mode, Stack};

/// A stack whose `[remote]` section is `remote` (short timeouts; DNS only on loopback: the
/// nameserver is 127.0.0.1:9, where nothing answers, unless `remote` names one).
fn stack(remote: &str) -> Stack {
    let nameserver = if remote.contains("nameserver") {
        ""
    } else {
        "nameserver = \"127.0.0.1:9\"\n"
    };
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\n{nameserver}timeout_connect_secs = 3\ntimeout_command_secs = 5\n{remote}"
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s
}

fn route(domain: &str, peer: &Peer) -> String {
    format!("\"{domain}\" = \"127.0.0.1:{}\"\n", peer.port)
}

/// Submits `message` as alice on port 587 (STARTTLS + AUTH) with smtplib, with these MAIL FROM
/// options (e.g. `SMTPUTF8`).
fn submit(s: &Stack, to: &[&str], message: &[u8], options: &[&str]) {
    let to: Vec<String> = to.iter().map(|t| format!("{t:?}")).collect();
    let options: Vec<String> = options.iter().map(|o| format!("{o:?}")).collect();
    let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", [{}], bytes.fromhex("{hex}"), mail_options=[{}])
"#,
        to.join(", "),
        options.join(", ")
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

/// A whole header, so submission adds nothing and the bytes arrive as sent (after Received).
const HEADER: &str = "From: alice@example.test\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\
                      Message-ID: <client@example.test>\r\n";

fn plain(subject: &str) -> Vec<u8> {
    format!("{HEADER}Subject: {subject}\r\n\r\nhi\r\n").into_bytes()
}

/// Waits until the queue is empty (the last results are written after the peer has the mail).
fn wait_queue_empty(s: &Stack) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.queued() > 0 {
        assert!(Instant::now() < deadline, "still queued:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_messages_to_one_route_within_the_idle_window_share_one_connection() {
    let peer = Peer::start(None);
    let s = stack(&format!("[remote.routes]\n{}", route("far.example", &peer)));
    submit(&s, &["ok1@far.example"], &plain("first"), &[]);
    peer.wait(1, &s);
    submit(&s, &["ok2@far.example"], &plain("second"), &[]);
    let got = peer.wait(2, &s);
    assert_eq!(got[1].0[1], "ok2@far.example");
    assert_eq!(peer.sessions().0, 1, "one SMTP session:\n{}", s.log());
    assert!(
        s.log().contains("reusing an idle connection"),
        "{}",
        s.log()
    );
}

#[test]
fn at_most_max_per_destination_transactions_run_at_once() {
    let peer = Peer::start_with(
        None,
        &Options {
            data_delay: Some(1.0),
            ..Options::default()
        },
    );
    let s = stack(&format!(
        "max_per_destination = 2\n[remote.routes]\n{}",
        route("slow.example", &peer)
    ));
    let messages = 6;
    std::thread::scope(|scope| {
        for i in 0..messages {
            let s = &s;
            scope.spawn(move || {
                submit(s, &[&format!("ok{i}@slow.example")], &plain("slow"), &[]);
            });
        }
    });
    peer.wait(messages, &s);
    let (sessions, most) = peer.sessions();
    assert_eq!(
        most, 2,
        "never more than 2 at once, and 2 used ({sessions} sessions)"
    );
    assert!(
        s.log().contains("waiting: 2 transaction(s) to 127.0.0.1:"),
        "the others waited:\n{}",
        s.log()
    );
    wait_queue_empty(&s);
    assert!(
        !s.log().contains("deferred"),
        "nothing failed while waiting"
    );
}

#[test]
fn smtputf8_mail_bounces_at_a_server_without_smtputf8_and_goes_to_one_with_it() {
    let old = Peer::start_with(
        None,
        &Options {
            no_smtputf8: true,
            ..Options::default()
        },
    );
    let utf8 = Peer::start(None);
    let s = stack(&format!(
        "[remote.routes]\n{}{}",
        route("old.example", &old),
        route("new.example", &utf8)
    ));
    // A non-ASCII recipient: the old server cannot take it.
    submit(&s, &["jörg@old.example"], &plain("umlaut"), &["SMTPUTF8"]);
    let bounces = s.wait_messages("alice@example.test", 1);
    assert!(bounces[0].contains("5.6.7"), "{}", bounces[0]);
    assert!(
        bounces[0].contains("does not support SMTPUTF8"),
        "{}",
        bounces[0]
    );
    // An ASCII envelope with a UTF-8 header: needs SMTPUTF8 only when the sender asked for it.
    let header = plain("Grüße");
    let header = header.as_slice();
    submit(&s, &["ok@old.example"], header, &["SMTPUTF8"]);
    let bounces = s.wait_messages("alice@example.test", 2);
    assert!(
        bounces[1].contains("does not support SMTPUTF8"),
        "{}",
        bounces[1]
    );
    submit(&s, &["ok@old.example"], header, &[]);
    let got = old.wait(1, &s);
    assert!(got[0].1.ends_with(header), "sent as it is");
    assert!(
        old.mail_options(1).contains("BODY=8BITMIME"),
        "{}",
        old.mail_options(1)
    );
    assert!(!old.mail_options(1).contains("SMTPUTF8"));
    // The server that offers SMTPUTF8 gets it on MAIL FROM.
    submit(&s, &["okjörg@new.example"], header, &["SMTPUTF8"]);
    let got = utf8.wait(1, &s);
    assert_eq!(got[0].0[1], "okjörg@new.example");
    assert!(
        utf8.mail_options(1).contains("SMTPUTF8"),
        "{}",
        utf8.mail_options(1)
    );
    assert!(old.received().len() == 1 && s.messages("alice@example.test").len() == 2);
}

#[test]
fn an_8bit_body_goes_as_it_is_to_a_server_without_8bitmime() {
    let peer = Peer::start_with(
        None,
        &Options {
            no_8bitmime: true,
            ..Options::default()
        },
    );
    let s = stack(&format!(
        "[remote.routes]\n{}",
        route("seven.example", &peer)
    ));
    let body = format!("{HEADER}Subject: eight\r\n\r\ncaf\u{e9}\r\n");
    let body = body.as_bytes();
    submit(&s, &["ok@seven.example"], body, &[]);
    let got = peer.wait(1, &s);
    assert!(got[0].1.ends_with(body), "byte-exact");
    assert!(
        !peer.mail_options(1).contains("BODY="),
        "{}",
        peer.mail_options(1)
    );
}

#[test]
fn mx_hosts_are_tried_in_preference_order_past_a_refusing_one() {
    // 127.0.0.2 has no server on the port (refused); the preferred working host is 127.0.0.1,
    // and a less preferred one on 127.0.0.3 must get nothing. The records come out of order.
    let first = Peer::start(None);
    let last = Peer::start_with(
        None,
        &Options {
            address: Some("127.0.0.3".into()),
            port: Some(first.port),
            ..Options::default()
        },
    );
    let dns = DnsServer::start(
        "pref.example. 60 IN MX 30 c.pref.example.\n\
         pref.example. 60 IN MX 10 a.pref.example.\n\
         pref.example. 60 IN MX 20 b.pref.example.\n\
         a.pref.example. 60 IN A 127.0.0.2\n\
         b.pref.example. 60 IN A 127.0.0.1\n\
         c.pref.example. 60 IN A 127.0.0.3\n",
    );
    let s = stack(&format!(
        "nameserver = \"127.0.0.1:{}\"\nport = {}\n",
        dns.port, first.port
    ));
    submit(&s, &["ok@pref.example"], &plain("mx"), &[]);
    let got = first.wait(1, &s);
    assert_eq!(got[0].0[1], "ok@pref.example");
    let log = s.log();
    let refused = log
        .find("a.pref.example[127.0.0.2]")
        .expect("the most preferred host was tried first");
    let delivered = log
        .find("to=<ok@pref.example> delivered")
        .expect("delivered");
    assert!(refused < delivered, "{log}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        last.received().is_empty(),
        "the least preferred host got nothing"
    );
    assert_eq!(last.sessions().0, 0);
}

#[test]
fn encrypt_policy_to_a_plaintext_only_server_defers_and_keeps_the_message() {
    let peer = Peer::start(None);
    let s = stack(&format!(
        "[remote.routes]\n\"enc.example\" = {{ host = \"127.0.0.1:{}\", tls = \"encrypt\" }}\n",
        peer.port
    ));
    submit(&s, &["ok@enc.example"], &plain("secret"), &[]);
    s.wait_log("to=<ok@enc.example> deferred (attempt 1): 4.7.4");
    assert!(
        s.log()
            .contains("does not offer STARTTLS and the TLS policy is encrypt"),
        "{}",
        s.log()
    );
    assert_eq!(s.queued(), 1, "the message stays queued");
    assert!(peer.received().is_empty(), "nothing sent in plaintext");
    assert!(s.messages("alice@example.test").is_empty(), "no bounce");
}
