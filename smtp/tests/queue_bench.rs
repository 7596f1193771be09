//! A measurement, not a check (ignored by default): injections/s and deliveries/s of the real
//! moat-queue with the fake moat-local (which answers at once, so this is the queue's own cost:
//! two file fsyncs and two shared directory fsyncs per message, one fsync per done mark).
//!
//! `cargo test --release -p moat-smtp --test queue_bench -- --ignored --nocapture`

mod queue_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use queue_support::*;

const MESSAGES: usize = 2000;
const CLIENTS: usize = 20;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn injections_and_deliveries_per_second() {
    let env = Arc::new(Env::new(always_ok()));
    let _queue = env.start(&[]);
    let mut body = b"Subject: bench\r\n\r\n".to_vec();
    while body.len() < 4096 {
        body.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        );
    }
    let body = Arc::new(body);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (env, body) = (Arc::clone(&env), Arc::clone(&body));
        tasks.push(tokio::spawn(async move {
            for _ in (c..MESSAGES).step_by(CLIENTS) {
                env.inject_ok("bench@example.test", &["sink@example.test"], &body)
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let injected = start.elapsed();
    assert!(
        wait_until(Duration::from_secs(300), || env.local.delivered().len()
            >= MESSAGES)
        .await,
        "{}",
        env.log()
    );
    let delivered = start.elapsed();
    assert!(wait_until(Duration::from_secs(60), || env.all_files() == 0).await);
    eprintln!(
        "{MESSAGES} messages of {} bytes, {CLIENTS} clients: {:.0} injections/s (all K after {:.2} s), \
         {:.0} deliveries/s (all delivered after {:.2} s)",
        body.len(),
        MESSAGES as f64 / injected.as_secs_f64(),
        injected.as_secs_f64(),
        MESSAGES as f64 / delivered.as_secs_f64(),
        delivered.as_secs_f64()
    );
}
