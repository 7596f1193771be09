//! moat-queue, the real binary, with one message for 5,000 recipients (a list post): one queued
//! copy (one message file, one envelope), injected over the real socket in `R` records; every
//! recipient delivered through the fake moat-local; a kill in the middle loses nobody and repeats
//! at most the deliveries that were in flight; the failed recipients bounce in one report of
//! bounded size. A peer that is not a trusted local one keeps the SMTP limit of 1000.

mod queue_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moat_common::client::queue::{Injection, MAX_RECIPIENTS, Origin};
use moat_common::wire::Status;
use queue_support::*;

const RECIPIENTS: usize = 5000;
const SENDER: &str = "list-return-1@lists.test";
const WAIT: Duration = Duration::from_secs(60);

fn me() -> String {
    rustix::process::getuid().as_raw().to_string()
}

async fn inject(env: &Env, rcpts: &[String]) -> Status {
    let mut inj = Injection::open(&env.socket, Origin::Forward, "moat-lists")
        .await
        .expect("open");
    inj.write(&message("post")).await.expect("write");
    inj.finish(SENDER, rcpts).await.expect("a verdict")
}

/// `a*` are delivered at once, `b*` wait (their destination is down) until the gate opens, and
/// `bad*` fail for good; spread over 7 domains.
fn recipient(i: usize) -> String {
    let local = if i.is_multiple_of(2) {
        "a"
    } else if i % 10 == 1 {
        "bad"
    } else {
        "b"
    };
    format!("{local}{i}@d{}.test", i % 7)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_copy_for_five_thousand_and_a_kill_loses_nobody() {
    let open = Arc::new(AtomicBool::new(false));
    let gate = Arc::clone(&open);
    let env = Env::new(Arc::new(move |rcpt: &str, _| {
        if rcpt.starts_with("bad") {
            Status::Permanent("5.1.1 no such user".into())
        } else if rcpt.starts_with('b') && !gate.load(Ordering::SeqCst) {
            Status::Temporary("4.4.1 no answer from the destination".into())
        } else {
            Status::Ok("delivered".into())
        }
    }));
    let settings = [("peers_local", me()), ("retry_schedule", "1".into())];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut queue = env.start(&settings);
    let rcpts: Vec<String> = (0..RECIPIENTS).map(recipient).collect();
    let started = Instant::now();
    let id = match inject(&env, &rcpts).await {
        Status::Ok(id) => id,
        other => panic!("{other:?}\n{}", env.log()),
    };
    let injected = started.elapsed();
    // One copy: one message file of the message's own size, one envelope.
    assert_eq!((env.files("mess"), env.files("env")), (1, 1));
    let size = std::fs::metadata(env.queue_dir.join("mess").join(&id))
        .expect("message file")
        .len();
    assert_eq!(size, message("post").len() as u64);

    let delivered_to = |env: &Env| -> HashMap<String, usize> {
        let mut count = HashMap::new();
        for a in env.local.delivered().into_iter().filter(|a| a.id == id) {
            *count.entry(a.rcpt).or_insert(0) += 1;
        }
        count
    };
    // Killed mid-way: some `a*` delivered, the `b*` waiting.
    assert!(
        wait_until(WAIT, || delivered_to(&env).len() >= 1000).await,
        "{}",
        env.log()
    );
    queue.kill9();
    let before_kill = delivered_to(&env).len();
    assert!(before_kill < RECIPIENTS, "the kill came too late");
    assert_eq!(
        (env.files("mess"), env.files("env")),
        (1, 1),
        "still queued"
    );

    // The destination is back and the queue starts again: everyone else gets it.
    open.store(true, Ordering::SeqCst);
    let _queue = env.start(&settings);
    let good = rcpts.iter().filter(|r| !r.starts_with("bad")).count();
    assert!(
        wait_until(WAIT, || delivered_to(&env).len() == good
            && env.all_files() == 0)
        .await,
        "{} of {good} delivered, {} files left\n{}",
        delivered_to(&env).len(),
        env.all_files(),
        env.log()
    );
    let finished = started.elapsed();
    let counts = delivered_to(&env);
    assert!(
        rcpts
            .iter()
            .filter(|r| !r.starts_with("bad"))
            .all(|r| counts.contains_key(r))
    );
    // Again only what was in flight at the kill (answered, not yet marked): at most one per
    // delivery slot (`max_deliveries`, 20).
    let twice: usize = counts.values().map(|n| n - 1).sum();
    assert!(twice <= 20, "{twice} recipients got it twice");

    // The 500 failed ones: one bounce to the sender, naming 100 and counting the rest.
    let bounces: Vec<Attempt> = env
        .local
        .delivered()
        .into_iter()
        .filter(|a| a.rcpt == SENDER)
        .collect();
    assert_eq!(bounces.len(), 1);
    let report = String::from_utf8_lossy(&bounces[0].message).to_string();
    assert!(report.len() < 64 * 1024, "{} bytes", report.len());
    assert_eq!(report.matches("Final-Recipient:").count(), 100);
    assert!(
        report.contains("... and 400 more recipient(s), not listed in this report."),
        "{report}"
    );
    eprintln!(
        "{RECIPIENTS} recipients: injected in {:.3} s, {before_kill} delivered before the kill, \
         all done {:.2} s after the start (restart included), {twice} delivered twice",
        injected.as_secs_f64(),
        finished.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_is_not_a_local_one_keeps_the_smtp_limit() {
    let env = Env::new(always_ok());
    // The test is moat-smtpd here, not a trusted local peer.
    let _queue = env.start(&[]);
    let rcpts: Vec<String> = (0..=MAX_RECIPIENTS)
        .map(|i| format!("r{i}@example.test"))
        .collect();
    let over = inject(&env, &rcpts).await;
    if is_root() {
        // The queue runs as `nobody`: root is just a peer.
        match over {
            Status::Permanent(text) => assert!(text.starts_with("5.5.3 too many"), "{text}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(env.all_files(), 0, "nothing left of the refused one");
    } else {
        // The queue runs as the test's own uid, which it trusts like itself.
        assert!(matches!(over, Status::Ok(_)), "{over:?}");
    }
    let at_limit = inject(&env, &rcpts[..MAX_RECIPIENTS]).await;
    assert!(matches!(at_limit, Status::Ok(_)), "{at_limit:?}");
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "{}",
        env.log()
    );
}
