//! Store-level behaviour: concurrent writers and reopening.

use moat_vdomain::{Store, StoreError};

use super::addr;
use crate::harness::Ctx;

pub async fn concurrent_writers(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("many.test").await.expect("domain");
    // Writers contend for the store's write lock; all must succeed, none may see a
    // half-finished transaction.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.add_user(&addr(&format!("u{i}@many.test")), "pw", None)
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("add_user");
    }
    // The same address from several writers: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.add_user(&addr("same@many.test"), "pw", None).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.list_users("many.test").await.expect("list").len(), 9);
}

pub async fn reconnect_keeps_data(ctx: Ctx) {
    ctx.store.add_domain("keep.test").await.expect("domain");
    ctx.store.close().await;
    assert!(matches!(
        ctx.store.list_domains().await,
        Err(StoreError::Unavailable(_))
    ));
    // Connecting again re-runs migrations (a no-op) and sees the data.
    let again = Store::connect(&ctx.url).await.expect("reconnect");
    assert_eq!(
        again.list_domains().await.expect("list")[0].name,
        "keep.test"
    );
    again.close().await;
}
