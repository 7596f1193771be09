//! moat-queue, the real binary, with VERP (the injection's `V`) and a fake moat-local: each
//! recipient's delivery (first try and retry) gets its own sender, `show` says VERP, and two
//! failed recipients bounce separately, each to its own VERP address. (Remote delivery: tests/tests/verp_delivery.rs.)

mod queue_support;

use std::sync::Arc;
use std::time::Duration;

use moat_common::client::queue::{Injection, Origin};
use moat_common::wire::Status;
use moat_smtp::queue::admin_client::QueueAdmin;
use queue_support::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn each_recipient_gets_its_own_sender_and_its_own_bounce() {
    // `bad*` fail for good; `slow` waits one retry, which keeps the message there for `show`.
    let env = Env::new(Arc::new(|rcpt: &str, n| {
        if rcpt.starts_with("bad") {
            Status::Permanent("5.1.1 no such user".into())
        } else if rcpt.starts_with("slow") && n == 1 {
            Status::Temporary("4.2.0 later".into())
        } else {
            Status::Ok("delivered".into())
        }
    }));
    let _queue = env.start(&[("retry_schedule", "2")]);
    let mut inj = Injection::open(&env.socket, Origin::Smtp, "list manager")
        .await
        .expect("open");
    inj.write(&message("verp")).await.expect("write");
    inj.set_verp();
    let rcpts: Vec<String> = ["ok@a.test", "bad1@b.test", "bad2@c.test", "slow@d.test"]
        .map(String::from)
        .to_vec();
    let id = match inj.finish("list@lists.test", &rcpts).await {
        Ok(Status::Ok(id)) => id,
        other => panic!("{other:?}\n{}", env.log()),
    };
    assert!(
        wait_until(WAIT, || env.local.attempts().len() >= 4).await,
        "{}",
        env.log()
    );
    let details = QueueAdmin::new(&env.socket).show(&id).await.expect("show");
    assert!(details.verp);
    assert!(env.log().contains(" verp\n"), "{}", env.log());

    let bounces = || -> Vec<Attempt> {
        let all = env.local.attempts();
        all.into_iter().filter(|a| a.sender.is_empty()).collect()
    };
    assert!(
        wait_until(WAIT, || bounces().len() == 2).await,
        "{}",
        env.log()
    );
    for a in env.local.attempts().iter().filter(|a| a.id == id) {
        let (local, domain) = a.rcpt.split_once('@').expect("address");
        assert_eq!(a.sender, format!("list-{local}={domain}@lists.test"));
    }
    let mut got: Vec<(String, Option<String>)> = bounces()
        .iter()
        .map(|b| (b.rcpt.clone(), header(&b.message, "To")))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "list-bad1=b.test@lists.test".to_string(),
                Some("<list-bad1=b.test@lists.test>".to_string())
            ),
            (
                "list-bad2=c.test@lists.test".to_string(),
                Some("<list-bad2=c.test@lists.test>".to_string())
            ),
        ]
    );
    for b in bounces() {
        let text = String::from_utf8_lossy(&b.message);
        let other = if b.rcpt.contains("bad1") {
            "bad2"
        } else {
            "bad1"
        };
        assert!(!text.contains(other), "one recipient per bounce: {text}");
    }
}
