//! moat-queue, the real binary: who may attach a list post's one-click attribute (`W`).
//! Only moat-lists (`peers_lists`) and the queue itself: moat-smtpd relays anyone's mail, so
//! a `W` from it would let a stranger choose header lines our delivery agents write.

mod queue_support;

use moat_common::client::one_click::OneClick;
use moat_common::client::queue::{Injection, Origin};
use moat_common::wire::Status;
use queue_support::*;

async fn inject_with_one_click(env: &Env) -> Status {
    let oc = OneClick::for_list("https://lists.example.test", "dev@example.test", &[7; 32])
        .expect("one-click");
    let mut inj = Injection::open(&env.socket, Origin::Smtp, "test client")
        .await
        .expect("open");
    inj.set_one_click(oc);
    inj.write(&message("one-click")).await.expect("write");
    inj.finish("dev-return@example.test", &["bob@example.test".to_string()])
        .await
        .expect("finish")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_click_refused_from_smtpd() {
    let env = Env::new(always_ok());
    // The test's uid is moat-smtpd's here (the harness's `peers_smtpd`), not moat-lists'.
    let _queue = env.start(&[]);
    let status = inject_with_one_click(&env).await;
    assert_eq!(
        status,
        Status::Permanent("5.7.1 one-click attribute not allowed".into()),
        "{}",
        env.log()
    );
    assert_eq!(env.files("mess"), 0, "nothing queued");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_click_accepted_from_lists() {
    let env = Env::new(always_ok());
    let me = rustix::process::getuid().as_raw().to_string();
    let _queue = env.start(&[("peers_lists", &me)]);
    let status = inject_with_one_click(&env).await;
    assert!(matches!(status, Status::Ok(_)), "{status:?}\n{}", env.log());
}
