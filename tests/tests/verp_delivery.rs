//! VERP through the whole stack: a message injected into queue.sock with the `V` record (as a
//! list manager would) reaches each recipient with its own envelope sender, remote ones as the
//! aiosmtpd peer saw them and the local one as its Maildir's Return-Path, and the 550 of one
//! remote recipient bounces to that recipient's VERP address. The list's domain is ours and
//! sub-addressing uses `-`, so `list-perm=far.example@example.test` is `list`'s mailbox.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use moat_common::wire::{Record, Status};
use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};

/// Injects `message` the way `common::client::queue::Injection` with `set_verp()` does, with
/// blocking I/O (this crate has no async runtime); returns the queue's verdict.
fn inject_verp(s: &Stack, sender: &str, rcpts: &[&str], message: &[u8]) -> Status {
    let mut conn = UnixStream::connect(s.data.join("run/queue.sock")).expect("queue.sock");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut envelope = Record::new(b'E').field(sender);
    for r in rcpts {
        envelope = envelope.field(r);
    }
    for record in [
        Record::new(b'H').field("submission").field("verp test"),
        Record::new(b'M').field(message),
        Record::new(b'V'),
        envelope,
    ] {
        conn.write_all(&record.encode().expect("encode"))
            .expect("send");
    }
    let mut buf = Vec::new();
    loop {
        if let Some((reply, _)) = Record::decode(&buf).expect("a reply frame") {
            return Status::from_record(&reply).expect("a status");
        }
        let mut chunk = [0u8; 512];
        let n = conn.read(&mut chunk).expect("read the reply");
        assert!(n > 0, "the queue closed without a reply");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn each_recipient_gets_its_own_sender_and_bounces_go_to_it() {
    let peer = Peer::start(None);
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[addresses]\nsubaddress_delimiter = \"-\"\n\
             [remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("list@example.test", "list-secret");
    let status = inject_verp(
        &s,
        "list@example.test",
        &[
            "ok1@far.example",
            "alice@example.test",
            "perm@far.example",
            "ok2+tag@far.example",
        ],
        b"From: list@example.test\r\nSubject: issue 42\r\n\r\nhi\r\n",
    );
    assert!(matches!(status, Status::Ok(_)), "{status:?}");

    // One transaction per remote recipient, each with its own sender.
    let mut senders: Vec<Vec<String>> = peer.wait(2, &s).into_iter().map(|(e, _)| e).collect();
    senders.sort();
    assert_eq!(
        senders,
        vec![
            vec![
                "list-ok1=far.example@example.test".to_string(),
                "ok1@far.example".into()
            ],
            vec![
                "list-ok2+tag=far.example@example.test".to_string(),
                "ok2+tag@far.example".into()
            ],
        ]
    );
    let local = s.wait_messages("alice@example.test", 1);
    assert!(
        local[0].starts_with("Return-Path: <list-alice=example.test@example.test>\r\n"),
        "{}",
        local[0]
    );

    // The 550 recipient's bounce goes to its VERP address (the list's mailbox through `-`).
    let bounces = s.wait_messages("list@example.test", 1);
    assert!(
        bounces[0].contains("\r\nTo: <list-perm=far.example@example.test>\r\n"),
        "{}",
        bounces[0]
    );
    assert!(bounces[0].contains("perm@far.example"), "{}", bounces[0]);
    assert!(!bounces[0].contains("ok1@far.example"), "{}", bounces[0]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s.messages("list@example.test").len(), 1, "one bounce");
    assert_eq!(peer.received().len(), 2);
}
