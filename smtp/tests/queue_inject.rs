//! moat-queue, the real binary: injection, the commit, delivery, limits, the sweep, admin.

mod queue_support;

use std::time::Duration;

use moat_common::wire::Status;
use moat_smtp::queue::admin_client::{AdminError, QueueAdmin};
use queue_support::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_message_is_committed_delivered_and_removed() {
    let env = Env::new(always_ok());
    let _queue = env.start(&[]);
    let body = message("first");
    let id = env
        .inject_ok(
            "alice@example.test",
            &["bob@example.test", "carol@example.test"],
            &body,
        )
        .await;
    assert_eq!(id.len(), 16, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 2).await,
        "{}",
        env.log()
    );
    let mut got = env.local.delivered();
    got.sort_by(|a, b| a.rcpt.cmp(&b.rcpt));
    assert_eq!(got[0].rcpt, "bob@example.test");
    assert_eq!(got[1].rcpt, "carol@example.test");
    for d in &got {
        assert_eq!(
            (d.id.as_str(), d.sender.as_str()),
            (id.as_str(), "alice@example.test")
        );
        assert_eq!(
            d.message, body,
            "moat-local reads the message from offset 0"
        );
    }
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "queue not emptied"
    );
    let log = env.log();
    assert!(
        log.contains(&format!(
            "{id}: from=<alice@example.test> size={} nrcpt=2 origin=smtp",
            body.len()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{id}: to=<bob@example.test> delivered")),
        "{log}"
    );
    // "removed" is logged just after the files go.
    let removed = format!("{id}: removed");
    assert!(
        wait_until(WAIT, || env.log().contains(&removed)).await,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_bad_envelopes_leave_nothing_behind() {
    let env = Env::new(always_ok());
    let _queue = env.start(&[("max_message_size", "1000")]);
    let big = vec![b'x'; 5000];
    match env
        .inject("a@example.test", &["b@example.test"], &big)
        .await
    {
        Ok(Status::Permanent(text)) => assert!(text.contains("too big"), "{text}"),
        other => panic!("{other:?}"),
    }
    let long = format!("{}@example.test", "x".repeat(400));
    for (sender, rcpts) in [
        ("a@example.test", vec![]),
        ("a@example.test", vec!["no-at-sign"]),
        ("a@example.test", vec!["two@at@example.test"]),
        ("a@example.test", vec!["b\r\nX-Evil: 1@example.test"]),
        ("a\0@example.test", vec!["b@example.test"]),
        ("a@example.test", vec![long.as_str()]),
    ] {
        match env.inject(sender, &rcpts, b"Subject: x\r\n\r\nx\r\n").await {
            Ok(Status::Permanent(_)) => {}
            other => panic!("{sender:?} {rcpts:?}: {other:?}"),
        }
    }
    // A client that leaves in the middle of its message.
    let mut inj = moat_common::client::queue::Injection::open(
        &env.socket,
        moat_common::client::queue::Origin::Smtp,
        "leaves early",
    )
    .await
    .expect("open");
    inj.write(&vec![b'y'; 200_000]).await.expect("write");
    drop(inj);
    // One that is fine, so we know the queue went on working.
    env.inject_ok("a@example.test", &["b@example.test"], &message("ok"))
        .await;
    assert!(wait_until(WAIT, || env.local.delivered().len() == 1).await);
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "files left behind"
    );
    assert_eq!(env.local.attempts().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_removes_uncommitted_files_and_delivers_committed_ones() {
    let env = Env::new(always_ok());
    for sub in ["tmp", "mess", "env", "done", "retry"] {
        std::fs::create_dir_all(env.queue_dir.join(sub)).expect("mkdir");
    }
    let q = &env.queue_dir;
    std::fs::write(q.join("tmp/1TW2KQ8F0A3C0001"), b"half a message").expect("tmp");
    std::fs::write(q.join("tmp/1TW2KQ8F0A3C0002.env"), b"V1\n").expect("tmp env");
    std::fs::write(q.join("mess/1TW2KQ8F0A3C0003"), b"Subject: orphan\r\n\r\n").expect("orphan");
    std::fs::write(q.join("done/1TW2KQ8F0A3C0003"), b"0 K x\n").expect("orphan done");
    // A committed message, as a crashed queue would have left it (recipient 0 already done).
    let kept = "1TW2KQ8F0A3C0004";
    std::fs::write(q.join("mess").join(kept), message("kept")).expect("mess");
    std::fs::write(
        q.join("env").join(kept),
        b"V1\nT1700000000\nOsmtp\nU0\nZ10\nCtest\nFa@example.test\nRdone@example.test\nRpending@example.test\nE\n",
    )
    .expect("env");
    std::fs::write(q.join("done").join(kept), b"0 K delivered\n").expect("done");
    hand_over(q);
    let _queue = env.start(&[]);
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 1).await,
        "{}",
        env.log()
    );
    let d = &env.local.delivered()[0];
    assert_eq!(
        (d.id.as_str(), d.rcpt.as_str()),
        (kept, "pending@example.test")
    );
    assert_eq!(d.message, message("kept"));
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "{}",
        env.log()
    );
    assert!(
        env.log()
            .contains("sweep removed 2 unfinished and 2 orphaned file(s)"),
        "{}",
        env.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_list_show_flush_delete() {
    // Every delivery is deferred, with a retry far away: only a flush brings it back early.
    let env = Env::new(std::sync::Arc::new(|_, _| {
        Status::Temporary("try later".into())
    }));
    let _queue = env.start(&[("retry_schedule", "3600")]);
    let admin = QueueAdmin::new(&env.socket);
    let a = env
        .inject_ok(
            "a@example.test",
            &["x@example.test", "y@example.test"],
            &message("a"),
        )
        .await;
    let b = env.inject_ok("", &["z@example.test"], &message("b")).await;
    assert!(wait_until(WAIT, || env.local.attempts().len() == 3).await);
    assert!(wait_until(WAIT, || env.files("retry") == 2).await);

    let list = admin.list().await.expect("list");
    assert_eq!(list.len(), 2);
    let row = list.iter().find(|r| r.id == a).expect("a listed");
    assert_eq!(
        (row.sender.as_str(), row.recipients.as_str()),
        ("a@example.test", "x@example.test,y@example.test")
    );
    assert_eq!(row.size, message("a").len() as u64);
    assert!(list.iter().any(|r| r.id == b && r.sender.is_empty()));

    let details = admin.show(&a).await.expect("show");
    assert_eq!(details.attempts, 1);
    assert_eq!(details.last_error, "try later");
    assert_eq!(details.origin, "smtp");
    assert!(details.next_try.is_some());
    assert_eq!(details.recipients.len(), 2);
    assert!(details.recipients.iter().all(|r| r.state == "pending"));
    assert!(matches!(
        admin.show("0000000000000000").await,
        Err(AdminError::Refused(_))
    ));
    assert!(matches!(
        admin.show("../../etc/passwd").await,
        Err(AdminError::Refused(_))
    ));

    admin.delete(&b).await.expect("delete");
    assert!(matches!(
        admin.delete(&b).await,
        Err(AdminError::Refused(_))
    ));
    assert_eq!(admin.list().await.expect("list").len(), 1);
    assert_eq!(env.files("env"), 1);
    assert_eq!(env.files("mess"), 1);

    admin.flush().await.expect("flush");
    assert!(
        wait_until(WAIT, || env.local.attempts().len() == 5).await,
        "{}",
        env.log()
    );
    let details = admin.show(&a).await.expect("show");
    assert!(wait_until(WAIT, || env.local.attempts().len() == 5).await);
    assert!(details.attempts >= 1);
    assert!(
        env.log().contains(&format!("{b}: deleted by uid")),
        "{}",
        env.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_supervisor_exit_stop_the_queue() {
    let env = Env::new(always_ok());
    let mut queue = env.start(&[]);
    env.inject_ok("a@example.test", &["b@example.test"], &message("x"))
        .await;
    assert!(queue.terminate(Duration::from_secs(15)), "{}", env.log());
    let mut queue = env.start(&[]);
    env.inject_ok("a@example.test", &["b@example.test"], &message("y"))
        .await;
    queue.close_control();
    assert!(queue.wait_exit(Duration::from_secs(15)), "{}", env.log());
    let log = env.log();
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(
        log.contains("the supervisor closed the setup channel: stopping"),
        "{log}"
    );
    assert_eq!(log.matches("]: stopped").count(), 2, "{log}");
    // Whatever was not delivered before the stop is delivered after the next start.
    let _queue = env.start(&[]);
    assert!(wait_until(WAIT, || env.local.delivered().len() == 2).await);
    assert!(wait_until(WAIT, || env.all_files() == 0).await);
}

/// Unmounts the small file system when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_a_temporary_failure_that_leaves_nothing() {
    let env = Env::new(always_ok());
    std::fs::create_dir(&env.queue_dir).expect("mkdir");
    // Needs root to mount a small tmpfs (CI runs as root); elsewhere there is nothing to fill.
    let mounted = is_root()
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&env.queue_dir)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs (not root?)");
        return;
    }
    let _mount = Mount(env.queue_dir.clone());
    hand_over(&env.queue_dir);
    let mut queue = env.start(&[]);
    let big = vec![b'x'; 1024 * 1024];
    match env
        .inject("a@example.test", &["b@example.test"], &big)
        .await
    {
        Ok(Status::Temporary(text)) => assert!(text.contains("disk is full"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(env.all_files(), 0, "nothing left behind");
    // The queue goes on working once there is room.
    env.inject_ok("a@example.test", &["b@example.test"], &message("small"))
        .await;
    assert!(wait_until(WAIT, || env.local.delivered().len() == 1).await);
    assert!(wait_until(WAIT, || env.all_files() == 0).await);
    queue.kill9();
}
