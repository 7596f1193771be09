//! The queue's promise under kill -9: a burst of injections from several tasks, moat-queue killed
//! several times in the middle and restarted on the same listener (as the supervisor does).
//! Every message answered `K` must be delivered (duplicates allowed, counted), no message whose
//! envelope was never sent may appear, and every delivered message must be complete.

mod queue_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_common::client::queue::{Injection, Origin};
use moat_common::wire::Status;
use queue_support::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// `K` with this id.
    Acked(String),
    /// The envelope was sent, but no `K` came back: it may or may not be queued.
    Unknown,
    /// The connection failed before the envelope was sent: must never be delivered.
    NotSent,
}

fn body(token: &str) -> Vec<u8> {
    let mut m = format!("Subject: {token}\r\nX-Token: {token}\r\n\r\n").into_bytes();
    for i in 0..40 {
        m.extend(
            format!("{token} line {i} of a message that is a bit longer than one line\r\n")
                .as_bytes(),
        );
    }
    m
}

async fn inject(socket: &std::path::Path, token: &str) -> Outcome {
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        let Ok(mut inj) = Injection::open(socket, Origin::Smtp, "burst").await else {
            return Outcome::NotSent;
        };
        if inj.write(&body(token)).await.is_err() {
            return Outcome::NotSent;
        }
        match inj
            .finish("burst@example.test", &["sink@example.test".to_string()])
            .await
        {
            Ok(Status::Ok(id)) => Outcome::Acked(id),
            _ => Outcome::Unknown,
        }
    })
    .await;
    result.unwrap_or(Outcome::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_message_survives_kill_9() {
    let env = Env::new(always_ok());
    let mut queue = env.start(&[]);
    let outcomes: Arc<Mutex<HashMap<String, Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (socket, outcomes, stop) =
            (env.socket.clone(), Arc::clone(&outcomes), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let token = format!("t{t}-{n}");
                let outcome = inject(&socket, &token).await;
                outcomes.lock().expect("lock").insert(token, outcome);
                n += 1;
            }
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(300 + 70 * round)).await;
        queue.kill9();
        tokio::time::sleep(Duration::from_millis(50)).await;
        queue = env.start(&[]);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    let outcomes = outcomes.lock().expect("lock").clone();
    let acked: HashMap<&str, &str> = outcomes
        .iter()
        .filter_map(|(tok, o)| match o {
            Outcome::Acked(id) => Some((tok.as_str(), id.as_str())),
            _ => None,
        })
        .collect();
    assert!(
        acked.len() > 50,
        "too few injections to prove anything: {}",
        acked.len()
    );
    let token_of = |m: &[u8]| header(m, "X-Token").unwrap_or_default();
    let all_delivered = || {
        let got: std::collections::HashSet<String> = env
            .local
            .delivered()
            .iter()
            .map(|d| token_of(&d.message))
            .collect();
        acked.keys().all(|t| got.contains(*t))
    };
    assert!(
        wait_until(Duration::from_secs(60), all_delivered).await,
        "lost messages\n{}",
        env.log()
    );
    assert!(
        wait_until(Duration::from_secs(60), || env.all_files() == 0).await,
        "{}",
        env.log()
    );

    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in env.local.delivered() {
        let token = token_of(&d.message);
        assert_eq!(
            d.message,
            body(&token),
            "a partial or damaged message was delivered"
        );
        match outcomes.get(&token) {
            Some(Outcome::Acked(id)) => assert_eq!(&d.id, id),
            Some(Outcome::Unknown) => {}
            other => panic!("{token} was delivered but its envelope was never sent: {other:?}"),
        }
        *counts.entry(token).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let unknown_delivered = counts
        .keys()
        .filter(|t| outcomes.get(*t) == Some(&Outcome::Unknown))
        .count();
    let unknown = outcomes
        .values()
        .filter(|o| **o == Outcome::Unknown)
        .count();
    let not_sent = outcomes
        .values()
        .filter(|o| **o == Outcome::NotSent)
        .count();
    eprintln!(
        "kill -9 x4: {} acknowledged, all delivered; {duplicates} duplicate deliveries; \
         {unknown} without an answer after the envelope ({unknown_delivered} of them delivered); \
         {not_sent} failed before the envelope",
        acked.len()
    );
    let started = Instant::now();
    drop(queue);
    assert!(started.elapsed() < Duration::from_secs(5));
}
