//! moat-local `L` end to end: the real binary, a fake moat-auth and a fake moat-queue.

mod local_support;

use std::os::unix::fs::PermissionsExt;

use local_support::*;
use moat_common::client::local::Delivery;
use moat_common::wire::{Record, Status};

const QID: &str = "1TW2KQ8F0A3C0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_delivery_lands_in_new_with_headers_first() {
    let local = Local::start();
    local.auth.set(
        "alice@example.test",
        Answer::Targets(vec![mailbox("alice@example.test", None, None)]),
    );
    let msg = sample("plain");
    let status = local
        .deliver(QID, "sender@remote.example", "alice@example.test", &msg)
        .await;
    assert_eq!(status, Status::Ok("delivered to 1 mailbox".into()));

    let got = local.new_messages("example.test/alice");
    assert_eq!(
        got,
        vec![expected(
            "sender@remote.example",
            "alice@example.test",
            &msg
        )]
    );
    let md = local.maildir("example.test/alice");
    assert!(files_in(&md.join("tmp")).is_empty(), "nothing left in tmp/");
    for sub in ["", "new", "cur", "tmp"] {
        let mode = std::fs::metadata(md.join(sub))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
    let file = &files_in(&md.join("new"))[0];
    assert_eq!(
        std::fs::metadata(file).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    let log = local.wait_log("delivered to=<alice@example.test>");
    assert!(
        log.contains(&format!(
            "{QID}: delivered to=<alice@example.test> maildir=example.test/alice"
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_sender_and_lf_only_message() {
    let local = Local::start();
    local.auth.set(
        "bob@example.test",
        Answer::Targets(vec![mailbox("bob@example.test", None, None)]),
    );
    let msg = b"Subject: lf\n\nbody\n".to_vec();
    let status = local.deliver(QID, "", "bob@example.test", &msg).await;
    assert!(matches!(status, Status::Ok(_)), "{status:?}");
    let mut want = b"Return-Path: <>\nDelivered-To: bob@example.test\n".to_vec();
    want.extend_from_slice(&msg);
    assert_eq!(local.new_messages("example.test/bob"), vec![want]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_to_three_mailboxes() {
    let local = Local::start();
    let users = ["a@example.test", "b@example.test", "c@example.test"];
    local.auth.set(
        "team@example.test",
        Answer::Targets(
            users
                .iter()
                .map(|u| mailbox(u, Some(1 << 20), None))
                .collect(),
        ),
    );
    let msg = sample("team");
    let status = local
        .deliver(QID, "s@remote.example", "team@example.test", &msg)
        .await;
    assert_eq!(status, Status::Ok("delivered to 3 mailboxes".into()));
    for user in users {
        let location = format!("example.test/{}", user.split('@').next().expect("local"));
        assert_eq!(
            local.new_messages(&location),
            vec![expected("s@remote.example", user, &msg)],
            "{user}"
        );
        // Quota in force: Maildir++ usage is kept.
        let size = std::fs::read_to_string(local.maildir(&location).join("maildirsize"))
            .expect("maildirsize");
        assert!(size.starts_with("1048576S"), "{size}");
    }
    let log = local.wait_log("to=<c@example.test>");
    assert_eq!(
        log.matches(&format!("{QID}: delivered to=<")).count(),
        3,
        "{log}"
    );
    assert!(log.contains("rcpt=<team@example.test>"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_is_reinjected() {
    let local = Local::start();
    local.auth.set(
        "fwd@example.test",
        Answer::Targets(vec![
            forward("far@remote.example"),
            mailbox("keep@example.test", None, None),
        ]),
    );
    let msg = sample("forward");
    let status = local
        .deliver(QID, "s@remote.example", "fwd@example.test", &msg)
        .await;
    assert_eq!(
        status,
        Status::Ok("delivered to 1 mailbox, forwarded to 1 address".into())
    );
    let injected = local.queue.taken();
    assert_eq!(injected.len(), 1);
    let fwd = &injected[0];
    assert_eq!(fwd.origin, "forward");
    assert_eq!(fwd.sender, "s@remote.example");
    assert_eq!(fwd.recipients, vec!["far@remote.example".to_string()]);
    let mut want = b"Delivered-To: fwd@example.test\r\n".to_vec();
    want.extend_from_slice(&msg);
    assert_eq!(fwd.message, want);
    assert!(fwd.client.contains(QID), "{}", fwd.client);
    assert_eq!(
        local.new_messages("example.test/keep"),
        vec![expected("s@remote.example", "keep@example.test", &msg)]
    );
    let log = local.wait_log("forwarded to=<far@remote.example>");
    assert!(
        log.contains(&format!(
            "{QID}: forwarded to=<far@remote.example> rcpt=<fwd@example.test> as=FWD"
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_forward_streams_in_chunks() {
    let local = Local::start();
    local.auth.set(
        "list@example.test",
        Answer::Targets(vec![forward("far@remote.example")]),
    );
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..20_000 {
        msg.extend_from_slice(format!("line {i:08} of a large message body\r\n").as_bytes());
    }
    let status = local.deliver(QID, "", "list@example.test", &msg).await;
    assert_eq!(status, Status::Ok("forwarded to 1 address".into()));
    let fwd = &local.queue.taken()[0];
    assert_eq!(
        &fwd.message[b"Delivered-To: list@example.test\r\n".len()..],
        &msg[..]
    );
    assert_eq!(fwd.sender, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_address_goes_to_inbox() {
    let local = Local::start();
    local.auth.set(
        "alice+news@example.test",
        Answer::Targets(vec![mailbox("alice@example.test", None, Some("news"))]),
    );
    let msg = sample("sub");
    let status = local
        .deliver(QID, "s@remote.example", "alice+news@example.test", &msg)
        .await;
    assert_eq!(status, Status::Ok("delivered to 1 mailbox".into()));
    assert_eq!(
        local.new_messages("example.test/alice"),
        vec![expected("s@remote.example", "alice@example.test", &msg)]
    );
    let log = local.wait_log("detail=news");
    assert!(
        log.contains("detail=news rcpt=<alice+news@example.test>"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_store_trouble() {
    let local = Local::start();
    let status = local
        .deliver(QID, "s@x.example", "ghost@example.test", &sample("x"))
        .await;
    assert_eq!(status, Status::Permanent("no such user".into()));
    local.auth.set(
        "slow@example.test",
        Answer::Temporary("store unavailable".into()),
    );
    let status = local
        .deliver(QID, "s@x.example", "slow@example.test", &sample("x"))
        .await;
    assert_eq!(status, Status::Temporary("store unavailable".into()));
    assert!(files_in(&local.mail_root).is_empty(), "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moat_auth_down_is_temporary() {
    let local = Local::start();
    std::fs::remove_file(&local.auth.path).expect("rm auth.sock");
    let status = local
        .deliver(QID, "s@x.example", "alice@example.test", &sample("x"))
        .await;
    assert_eq!(status, Status::Temporary("user store unavailable".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quota_is_temporary_and_leaves_nothing() {
    let local = Local::start();
    local.auth.set(
        "full@example.test",
        Answer::Targets(vec![mailbox("full@example.test", Some(300), None)]),
    );
    let small = b"Subject: s\r\n\r\nx\r\n".to_vec();
    let status = local
        .deliver(QID, "s@x.example", "full@example.test", &small)
        .await;
    assert!(matches!(status, Status::Ok(_)), "{status:?}");
    let big = [b"Subject: b\r\n\r\n".as_slice(), &[b'y'; 400]].concat();
    let status = local
        .deliver(QID, "s@x.example", "full@example.test", &big)
        .await;
    assert_eq!(status, Status::Temporary("mailbox full".into()));
    assert_eq!(local.new_messages("example.test/full").len(), 1);
    assert!(files_in(&local.maildir("example.test/full").join("tmp")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_full_mailbox_defers_the_alias() {
    let local = Local::start();
    local.auth.set(
        "both@example.test",
        Answer::Targets(vec![
            mailbox("roomy@example.test", None, None),
            mailbox("tiny@example.test", Some(10), None),
        ]),
    );
    let status = local
        .deliver(QID, "s@x.example", "both@example.test", &sample("x"))
        .await;
    assert_eq!(status, Status::Temporary("mailbox full".into()));
    // At least once: the retry may deliver to roomy again.
    assert_eq!(local.new_messages("example.test/roomy").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_are_refused() {
    let local = Local::start();
    local.auth.set(
        "alice@example.test",
        Answer::Targets(vec![mailbox("alice@example.test", None, None)]),
    );
    local.auth.set(
        "alias@example.test",
        Answer::Targets(vec![mailbox("alice@example.test", None, None)]),
    );
    let looped = [
        b"delivered-to:   <ALICE@example.test>\r\n".as_slice(),
        &sample("loop"),
    ]
    .concat();
    for rcpt in ["alice@example.test", "alias@example.test"] {
        let status = local.deliver(QID, "s@x.example", rcpt, &looped).await;
        assert_eq!(
            status,
            Status::Permanent("mail loop detected".into()),
            "{rcpt}"
        );
    }
    let mut hops = Vec::new();
    for i in 0..101 {
        hops.extend_from_slice(format!("Received: from hop{i}\r\n").as_bytes());
    }
    hops.extend_from_slice(b"Subject: hops\r\n\r\nbody\r\n");
    let status = local
        .deliver(QID, "s@x.example", "alice@example.test", &hops)
        .await;
    assert_eq!(status, Status::Permanent("mail loop detected".into()));
    // Delivered-To for someone else, or in the body, is fine.
    let fine = b"Delivered-To: bob@example.test\r\nSubject: ok\r\n\r\nDelivered-To: alice@example.test\r\n";
    let status = local
        .deliver(QID, "s@x.example", "alice@example.test", fine)
        .await;
    assert!(matches!(status, Status::Ok(_)), "{status:?}");
    assert_eq!(local.new_messages("example.test/alice").len(), 1);
    let log = local.wait_log("mail loop detected");
    assert!(
        log.contains(&format!(
            "{QID}: bounced rcpt=<alice@example.test>: mail loop detected"
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_maildir_from_auth_is_refused() {
    let local = Local::start();
    for (i, location) in [
        "../x",
        "example.test/../../x",
        "/etc/x",
        "example.test/.x",
        "x",
    ]
    .iter()
    .enumerate()
    {
        let rcpt = format!("evil{i}@example.test");
        let mut t = mailbox("evil@example.test", None, None);
        t.maildir = location.to_string();
        local.auth.set(&rcpt, Answer::Targets(vec![t]));
        let status = local
            .deliver(QID, "s@x.example", &rcpt, &sample("evil"))
            .await;
        assert_eq!(
            status,
            Status::Temporary("mailbox misconfigured".into()),
            "{location}"
        );
    }
    assert!(!local.dir.path().join("x").exists());
    assert!(files_in(&local.mail_root).is_empty(), "nothing created");
    // A bad target address (header injection) and a nonsense quota are refused too.
    local.auth.set(
        "inj@example.test",
        Answer::Targets(vec![mailbox("a@example.test\r\nBcc: x@y", None, None)]),
    );
    let status = local
        .deliver(QID, "s@x.example", "inj@example.test", &sample("x"))
        .await;
    assert!(matches!(status, Status::Temporary(_)), "{status:?}");
    local.auth.set(
        "q@example.test",
        Answer::Targets(vec![mailbox("q@example.test", Some(-1), None)]),
    );
    let status = local
        .deliver(QID, "s@x.example", "q@example.test", &sample("x"))
        .await;
    assert!(matches!(status, Status::Temporary(_)), "{status:?}");
    assert!(files_in(&local.mail_root).is_empty(), "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused() {
    let local = Local::start();
    let socket = local.socket.clone();
    let status = tokio::task::spawn_blocking(move || {
        let no_fd = raw_request(
            &socket,
            &Record::new(b'L')
                .field(QID)
                .field("")
                .field("a@example.test"),
        );
        let bad_rcpt = raw_request(
            &socket,
            &Record::new(b'L').field(QID).field("").field("a@b\r\nX: y"),
        );
        let unknown = raw_request(&socket, &Record::new(b'Q').field("x"));
        (no_fd, bad_rcpt, unknown)
    })
    .await
    .expect("join");
    assert_eq!(
        status.0,
        Status::Permanent("no message descriptor attached".into())
    );
    assert!(
        matches!(&status.1, Status::Permanent(t) if t.starts_with("bad request")),
        "{:?}",
        status.1
    );
    assert_eq!(status.2, Status::Permanent("unknown request".into()));
    // A descriptor that is not a regular file.
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let status = local
        .client()
        .deliver(QID, "", "a@example.test", std::os::fd::AsFd::as_fd(&a))
        .await
        .expect("answer");
    assert!(
        matches!(status, Delivery::Status(Status::Permanent(_))),
        "{status:?}"
    );
    // A message past the 100 MiB limit (a sparse file: nothing is written).
    local.auth.set(
        "a@example.test",
        Answer::Targets(vec![mailbox("a@example.test", None, None)]),
    );
    let huge = tempfile::tempfile().expect("tempfile");
    huge.set_len(100 * 1024 * 1024 + 1).expect("set_len");
    let status = local
        .client()
        .deliver(QID, "", "a@example.test", std::os::fd::AsFd::as_fd(&huge))
        .await
        .expect("answer");
    assert!(
        matches!(&status, Delivery::Status(Status::Permanent(t)) if t.starts_with("message too large")),
        "{status:?}"
    );
    assert!(files_in(&local.mail_root).is_empty(), "nothing created");
}
