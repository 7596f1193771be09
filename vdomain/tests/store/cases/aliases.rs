//! Aliases: one-to-many, listing, removal, the user/alias exclusivity, and atomicity.

use moat_vdomain::{Alias, StoreError};

use super::{addr, targets};
use crate::harness::Ctx;

pub async fn aliases_one_to_many(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("a.test").await.expect("domain");
    s.add_domain("b.test").await.expect("domain");
    let team = addr("team@a.test");
    s.add_alias(
        &team,
        &targets(&["Zed@a.test", "ann@REMOTE.example", "zed@a.test"]),
    )
    .await
    .expect("add");
    s.add_alias(&team, &targets(&["bob@a.test"]))
        .await
        .expect("add more");
    s.add_alias(&addr("x@b.test"), &targets(&["y@c.example"]))
        .await
        .expect("other");

    let list = s.list_aliases(Some("A.test")).await.expect("list");
    assert_eq!(
        list,
        [Alias {
            source: "team@a.test".into(),
            targets: targets(&["zed@a.test", "ann@remote.example", "bob@a.test"]),
        }]
    );
    let all = s.list_aliases(None).await.expect("all");
    let sources: Vec<_> = all.iter().map(|a| a.source.as_str()).collect();
    assert_eq!(sources, ["team@a.test", "x@b.test"]);
    assert!(matches!(
        s.list_aliases(Some("nope.test")).await,
        Err(StoreError::DomainNotFound(_))
    ));

    let err = s
        .add_alias(&team, &targets(&["bob@a.test"]))
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let err = s.add_alias(&team, &[]).await.expect_err("no targets");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_alias(&team, &targets(&["a/b@a.test"]))
        .await
        .expect_err("bad target");
    assert!(matches!(err, StoreError::InvalidAddress(_)), "{err:?}");
    let err = s
        .add_alias(&team, &targets(&["TEAM@a.test"]))
        .await
        .expect_err("self");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_alias(&addr("x@nope.test"), &targets(&["y@a.test"]))
        .await
        .expect_err("no domain");
    assert!(matches!(err, StoreError::DomainNotFound(_)), "{err:?}");

    s.remove_alias(&team, Some("ANN@remote.example"))
        .await
        .expect("remove one");
    assert_eq!(
        s.list_aliases(Some("a.test")).await.expect("list")[0].targets,
        targets(&["zed@a.test", "bob@a.test"])
    );
    let err = s
        .remove_alias(&team, Some("ann@remote.example"))
        .await
        .expect_err("gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    s.remove_alias(&team, None).await.expect("remove all");
    assert!(
        s.list_aliases(Some("a.test"))
            .await
            .expect("list")
            .is_empty()
    );
    let err = s.remove_alias(&team, None).await.expect_err("none");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(ctx.count("aliases").await, 1);
}

pub async fn alias_user_conflicts(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("c.test").await.expect("domain");
    s.add_user(&addr("u@c.test"), "pw", None)
        .await
        .expect("user");
    s.add_alias(&addr("al@c.test"), &targets(&["u@c.test"]))
        .await
        .expect("alias");

    let err = s
        .add_alias(&addr("U@c.test"), &targets(&["x@remote.test"]))
        .await
        .expect_err("user is not an alias");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_user(&addr("al@c.test"), "pw", None)
        .await
        .expect_err("alias is not a user");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("al@c.test"), "{err}");
    assert_eq!(ctx.count("users").await, 1);
    assert_eq!(ctx.count("aliases").await, 1);
}

pub async fn no_partial_rows(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("t.test").await.expect("domain");
    let src = addr("list@t.test");
    s.add_alias(&src, &targets(&["b@t.test"]))
        .await
        .expect("first");

    // The first target is inserted, the second hits the unique constraint inside the
    // same transaction: the first must be rolled back.
    let err = s
        .add_alias(&src, &targets(&["a@t.test", "b@t.test"]))
        .await
        .expect_err("b is already a target");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(
        ctx.count("aliases").await,
        1,
        "a@t.test must not have been kept"
    );
    assert_eq!(
        s.list_aliases(None).await.expect("list")[0].targets,
        targets(&["b@t.test"])
    );

    // A late validation failure leaves nothing either.
    let err = s
        .add_alias(
            &addr("new@t.test"),
            &targets(&["ok@t.test", "bad..x@t.test"]),
        )
        .await
        .expect_err("bad target");
    assert!(matches!(err, StoreError::InvalidAddress(_)), "{err:?}");
    assert_eq!(ctx.count("aliases").await, 1);

    // Refused domain removal removes nothing.
    s.add_user(&addr("u@t.test"), "pw", None)
        .await
        .expect("user");
    s.set_catchall("t.test", "u@t.test")
        .await
        .expect("catchall");
    assert!(s.remove_domain("t.test", false).await.is_err());
    assert_eq!(ctx.count("domains").await, 1);
    assert_eq!(ctx.count("users").await, 1);
    assert_eq!(ctx.count("aliases").await, 1);
    assert_eq!(ctx.count("catchalls").await, 1);

    // A failed catch-all change keeps the old one.
    assert!(s.set_catchall("t.test", "ghost@t.test").await.is_err());
    assert_eq!(
        s.get_domain("t.test")
            .await
            .expect("get")
            .catchall
            .as_deref(),
        Some("u@t.test")
    );

    // The store is still usable after the failed transactions (no lock left behind).
    s.add_alias(&src, &targets(&["c@t.test"]))
        .await
        .expect("later write");
    assert_eq!(ctx.count("aliases").await, 2);
}
