//! moat-local `C`, the peer check per request kind, and the daemon's life cycle.

mod local_support;

use std::time::Duration;

use local_support::*;
use moat_common::client::local::{Delivery, LocalClient};
use moat_common::wire::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_answers_exists_unknown_and_over_quota() {
    let local = Local::start();
    local.auth.set(
        "alice@example.test",
        Answer::Targets(vec![mailbox("alice@example.test", Some(1000), None)]),
    );
    local.auth.set(
        "free@example.test",
        Answer::Targets(vec![mailbox("free@example.test", None, None)]),
    );
    local.auth.set(
        "far@example.test",
        Answer::Targets(vec![forward("x@remote.example")]),
    );
    local.auth.set(
        "down@example.test",
        Answer::Temporary("store unavailable".into()),
    );

    assert_eq!(
        local.check("alice@example.test", Some(500)).await,
        Status::Ok("ok".into())
    );
    assert_eq!(
        local.check("alice@example.test", None).await,
        Status::Ok("ok".into())
    );
    assert_eq!(
        local.check("alice@example.test", Some(1001)).await,
        Status::Temporary("over quota".into())
    );
    assert_eq!(
        local.check("free@example.test", Some(u64::MAX)).await,
        Status::Ok("ok".into())
    );
    assert_eq!(
        local.check("far@example.test", Some(1 << 30)).await,
        Status::Ok("ok".into())
    );
    assert_eq!(
        local.check("ghost@example.test", None).await,
        Status::Permanent("no such user".into())
    );
    assert_eq!(
        local.check("someone@not-ours.example", None).await,
        Status::Permanent("no such user".into())
    );
    assert_eq!(
        local.check("down@example.test", None).await,
        Status::Temporary("store unavailable".into())
    );
    assert!(
        files_in(&local.mail_root).is_empty(),
        "a check creates nothing"
    );

    // Fill the mailbox: then even a message of unknown size is refused, and L agrees.
    let msg = [b"Subject: fill\r\n\r\n".as_slice(), &[b'z'; 900]].concat();
    let status = local
        .deliver("Q1", "s@x.example", "alice@example.test", &msg)
        .await;
    assert!(matches!(status, Status::Ok(_)), "{status:?}");
    assert_eq!(
        local.check("alice@example.test", Some(100)).await,
        Status::Temporary("over quota".into())
    );
    let status = local
        .deliver("Q2", "s@x.example", "alice@example.test", &msg)
        .await;
    assert_eq!(status, Status::Temporary("mailbox full".into()));
    assert_eq!(
        local.check("alice@example.test", Some(10)).await,
        Status::Ok("ok".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_eof_stops_the_daemon() {
    let mut local = Local::start();
    local.auth.set(
        "a@example.test",
        Answer::Targets(vec![mailbox("a@example.test", None, None)]),
    );
    assert!(matches!(
        local.check("a@example.test", None).await,
        Status::Ok(_)
    ));
    let status = tokio::task::block_in_place(|| local.close_control());
    assert!(status.success(), "{status:?}");
    assert!(
        local
            .log()
            .contains("supervisor closed the control channel"),
        "{}",
        local.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon() {
    let mut local = Local::start();
    // Before the handler is installed, SIGTERM simply kills: wait until it serves.
    assert!(local.wait_log("serving").contains("serving"));
    local.signal(rustix::process::Signal::TERM);
    let status = tokio::task::block_in_place(|| local.wait_exit());
    assert!(status.success(), "{status:?}");
    assert!(
        local.log().contains("stopping (SIGTERM)"),
        "{}",
        local.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_deliveries_in_flight_finish() {
    let mut local = Local::start();
    assert!(local.wait_log("serving").contains("serving"));
    local.auth.set(
        "a@example.test",
        Answer::Targets(vec![mailbox("a@example.test", None, None)]),
    );
    local.auth.delay(Duration::from_millis(500));
    let client = local.client();
    let in_flight = tokio::spawn(async move {
        let file = message_file(&sample("drain"));
        client
            .deliver("Q1", "", "a@example.test", std::os::fd::AsFd::as_fd(&file))
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    local.signal(rustix::process::Signal::TERM);
    let answer = in_flight.await.expect("join").expect("answered");
    assert_eq!(
        answer,
        Delivery::Status(Status::Ok("delivered to 1 mailbox".into()))
    );
    let status = tokio::task::block_in_place(|| local.wait_exit());
    assert!(status.success(), "{status:?}");
    assert_eq!(local.new_messages("example.test/a").len(), 1);
    assert!(
        local.log().contains("finishing 1 request(s) in flight"),
        "{}",
        local.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_stop_the_start() {
    for (key, value) in [
        ("peers_queue", "moat-queue"),
        ("mail_root", "/nonexistent/mail"),
        ("mail_root", "relative"),
    ] {
        let mut local = Local::start_with(&[(key, value)]);
        let status = tokio::task::block_in_place(|| local.wait_exit());
        assert_eq!(status.code(), Some(111), "{key}={value}");
    }
}

/// The peer check with real uids: as root, connect from a thread that has switched to another
/// uid (Linux set*uid system calls act on the calling thread only). Skipped when not root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_peer_kind_is_refused() {
    if !is_root() {
        eprintln!(
            "skipped: needs root to connect as another uid (the decision is unit-tested in peers.rs)"
        );
        return;
    }
    const QUEUE: u32 = 65530;
    const SMTPD: u32 = 65531;
    let local = Local::start_with(&[("peers_queue", "65530"), ("peers_smtpd", "65531")]);
    local.auth.set(
        "a@example.test",
        Answer::Targets(vec![mailbox("a@example.test", None, None)]),
    );
    let socket = local.socket.clone();
    let ask = move |uid: u32, deliver: bool| {
        let socket = socket.clone();
        std::thread::spawn(move || {
            rustix::thread::set_thread_res_uid(
                rustix::process::Uid::from_raw(uid),
                rustix::process::Uid::from_raw(uid),
                rustix::process::Uid::from_raw(uid),
            )
            .expect("setuid on this thread");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async {
                let client = LocalClient::new(&socket);
                if deliver {
                    let file = message_file(&sample("peer"));
                    client
                        .deliver("Q1", "", "a@example.test", std::os::fd::AsFd::as_fd(&file))
                        .await
                        .map(|d| match d {
                            Delivery::Status(s) => s,
                            Delivery::Remote => Status::Temporary("R".into()),
                        })
                } else {
                    client.check("a@example.test", None).await
                }
            })
            .expect("answer")
        })
        .join()
        .expect("thread")
    };
    let denied = Status::Permanent("permission denied".into());
    let results = tokio::task::spawn_blocking(move || {
        [
            ask(SMTPD, true),
            ask(QUEUE, false),
            ask(12345, false),
            ask(12345, true),
            ask(SMTPD, false),
            ask(QUEUE, true),
        ]
    })
    .await
    .expect("join");
    assert_eq!(results[0], denied, "smtpd may not deliver");
    assert_eq!(results[1], denied, "the queue may not check");
    assert_eq!(results[2], denied, "a stranger may not check");
    assert_eq!(results[3], denied, "a stranger may not deliver");
    assert_eq!(results[4], Status::Ok("ok".into()), "smtpd may check");
    assert_eq!(
        results[5],
        Status::Ok("delivered to 1 mailbox".into()),
        "the queue may deliver"
    );
    let log = local.wait_log("permission denied");
    assert!(
        log.contains("permission denied: request 'L' from uid 65531"),
        "{log}"
    );
    assert_eq!(
        local.new_messages("example.test/a").len(),
        1,
        "only the queue's delivery"
    );
}
