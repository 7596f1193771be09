//! Address resolution: order, fan-out, sub-addressing, catch-all, loops.

use moat_vdomain::{Resolution, ResolveOptions, Store, StoreError, Target};

use super::{addr, targets};
use crate::harness::Ctx;

fn mailbox(user: &str, quota: Option<i64>, detail: Option<&str>) -> Target {
    let (local, domain) = user.split_once('@').expect("user@domain");
    Target::Mailbox {
        user: user.to_owned(),
        maildir: format!("{domain}/{local}"),
        quota_bytes: quota,
        detail: detail.map(str::to_owned),
    }
}

async fn resolve(s: &Store, address: &str) -> Resolution {
    s.resolve(address, &ResolveOptions::default())
        .await
        .unwrap_or_else(|e| panic!("resolve {address:?}: {e}"))
}

/// example.test with users ann (quota) and bob, alias `team` → ann, bob, a remote address and
/// `staff` (→ ann again, to test dedupe); `alias.test` is a domain alias of example.test.
async fn fixture(s: &Store) {
    s.add_domain("example.test").await.expect("domain");
    s.add_domain_alias("alias.test", "example.test")
        .await
        .expect("dalias");
    s.add_user(&addr("ann@example.test"), "pw", Some(1000))
        .await
        .expect("ann");
    s.add_user(&addr("bob@example.test"), "pw", None)
        .await
        .expect("bob");
    s.add_alias(&addr("staff@example.test"), &targets(&["ann@alias.test"]))
        .await
        .expect("staff");
    s.add_alias(
        &addr("team@example.test"),
        &targets(&[
            "ann@example.test",
            "bob@example.test",
            "friend@remote.example",
            "staff@example.test",
        ]),
    )
    .await
    .expect("team");
}

pub async fn resolve_order(ctx: Ctx) {
    let s = &ctx.store;
    fixture(s).await;

    // Exact user.
    assert_eq!(
        resolve(s, "Ann@Example.test").await,
        Resolution::Deliver(vec![mailbox("ann@example.test", Some(1000), None)])
    );
    // Domain alias rewrites the domain first.
    assert_eq!(
        resolve(s, "bob@alias.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );
    // Alias fan-out: local users, a remote forward, nested alias deduplicated.
    assert_eq!(
        resolve(s, "team@alias.test").await,
        Resolution::Deliver(vec![
            mailbox("ann@example.test", Some(1000), None),
            mailbox("bob@example.test", None, None),
            Target::Forward("friend@remote.example".into()),
        ])
    );
    // An unknown local part is Unknown; an unknown domain and a remote address are NotLocal.
    assert_eq!(resolve(s, "nobody@example.test").await, Resolution::Unknown);
    assert_eq!(resolve(s, "ann@nope.test").await, Resolution::NotLocal);
    assert_eq!(
        resolve(s, "friend@remote.example").await,
        Resolution::NotLocal
    );
    // Not an address at all is an error, not Unknown.
    assert!(matches!(
        s.resolve("a..b@example.test", &ResolveOptions::default())
            .await,
        Err(StoreError::InvalidAddress(_))
    ));
    // A local part we would refuse, in a domain we do not host, is not ours to judge.
    assert_eq!(
        resolve(s, "jörg@remote.example").await,
        Resolution::NotLocal
    );
    assert!(matches!(
        s.resolve("jörg@example.test", &ResolveOptions::default())
            .await,
        Err(StoreError::InvalidAddress(_))
    ));

    // A disabled user still receives mail.
    s.set_enabled(&addr("bob@example.test"), false)
        .await
        .expect("disable");
    assert_eq!(
        resolve(s, "bob@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );

    // Catch-all takes what matches nothing else, and its target is resolved again.
    s.set_catchall("example.test", "staff@example.test")
        .await
        .expect("catchall");
    assert_eq!(
        resolve(s, "nobody@alias.test").await,
        Resolution::Deliver(vec![mailbox("ann@example.test", Some(1000), None)])
    );
    // ...but never shadows a real user or alias.
    assert_eq!(
        resolve(s, "bob@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );
    // A remote catch-all target is a forward.
    s.set_catchall("example.test", "Sink@Remote.example")
        .await
        .expect("catchall");
    assert_eq!(
        resolve(s, "whoever@example.test").await,
        Resolution::Deliver(vec![Target::Forward("sink@remote.example".into())])
    );
    // Still NotLocal for a domain we do not host.
    assert_eq!(resolve(s, "whoever@nope.test").await, Resolution::NotLocal);
}

pub async fn resolve_subaddress(ctx: Ctx) {
    let s = &ctx.store;
    fixture(s).await;

    assert_eq!(
        resolve(s, "ann+News@example.test").await,
        Resolution::Deliver(vec![mailbox("ann@example.test", Some(1000), Some("news"))])
    );
    // On an alias the tag travels to the mailboxes; the remote address is not rewritten.
    assert_eq!(
        resolve(s, "team+x@alias.test").await,
        Resolution::Deliver(vec![
            mailbox("ann@example.test", Some(1000), Some("x")),
            mailbox("bob@example.test", None, Some("x")),
            Target::Forward("friend@remote.example".into()),
        ])
    );
    // Split at the first delimiter; an empty tag is no detail.
    assert_eq!(
        resolve(s, "bob+a+b@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, Some("a+b"))])
    );
    assert_eq!(
        resolve(s, "bob+@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );
    // Unknown base: Unknown (no catch-all yet).
    assert_eq!(
        resolve(s, "carol+x@example.test").await,
        Resolution::Unknown
    );
    // An exact user that contains the delimiter wins over sub-addressing.
    s.add_user(&addr("ann+archive@example.test"), "pw", None)
        .await
        .expect("user");
    assert_eq!(
        resolve(s, "ann+archive@example.test").await,
        Resolution::Deliver(vec![mailbox("ann+archive@example.test", None, None)])
    );

    // Delimiter off: no sub-addressing.
    let off = ResolveOptions {
        subaddress_delimiter: None,
        ..ResolveOptions::default()
    };
    assert_eq!(
        s.resolve("ann+news@example.test", &off)
            .await
            .expect("resolve"),
        Resolution::Unknown
    );
    // Another delimiter (qmail style).
    let dash = ResolveOptions {
        subaddress_delimiter: Some('-'),
        ..ResolveOptions::default()
    };
    assert_eq!(
        s.resolve("bob-lists@example.test", &dash)
            .await
            .expect("resolve"),
        Resolution::Deliver(vec![mailbox("bob@example.test", None, Some("lists"))])
    );
    // Sub-address is tried before the catch-all.
    s.set_catchall("example.test", "bob@example.test")
        .await
        .expect("catchall");
    assert_eq!(
        resolve(s, "ann+z@example.test").await,
        Resolution::Deliver(vec![mailbox("ann@example.test", Some(1000), Some("z"))])
    );
    assert_eq!(
        resolve(s, "carol+x@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );
}

pub async fn resolve_dangling_targets(ctx: Ctx) {
    let s = &ctx.store;
    fixture(s).await;
    s.add_alias(
        &addr("half@example.test"),
        &targets(&["ghost@example.test", "bob@example.test"]),
    )
    .await
    .expect("alias");
    s.add_alias(
        &addr("void@example.test"),
        &targets(&["ghost@example.test"]),
    )
    .await
    .expect("alias");
    // A target that resolves to nothing is dropped; others still deliver.
    assert_eq!(
        resolve(s, "half@example.test").await,
        Resolution::Deliver(vec![mailbox("bob@example.test", None, None)])
    );
    // Nothing left: Unknown (the sender gets a bounce).
    assert_eq!(resolve(s, "void@example.test").await, Resolution::Unknown);
    // Removing a user makes aliases pointing at it dangle, not fail.
    s.remove_user(&addr("bob@example.test"))
        .await
        .expect("remove");
    assert_eq!(resolve(s, "half@example.test").await, Resolution::Unknown);
}

pub async fn alias_loops(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("l.test").await.expect("domain");
    s.add_user(&addr("real@l.test"), "pw", None)
        .await
        .expect("user");
    s.add_alias(&addr("a@l.test"), &targets(&["b@l.test"]))
        .await
        .expect("a");
    s.add_alias(&addr("b@l.test"), &targets(&["real@l.test", "a@l.test"]))
        .await
        .expect("b");
    let err = s
        .resolve("a@l.test", &ResolveOptions::default())
        .await
        .expect_err("a -> b -> a");
    assert!(matches!(err, StoreError::AliasLoop(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("a@l.test -> b@l.test -> a@l.test"), "{msg}");
    assert!(err.is_temporary());
    // Entering the loop from elsewhere, via a sub-address, or via a domain alias is caught too.
    s.add_domain_alias("l2.test", "l.test")
        .await
        .expect("dalias");
    for start in ["b@l.test", "a+tag@l.test", "b@l2.test"] {
        assert!(
            matches!(
                s.resolve(start, &ResolveOptions::default()).await,
                Err(StoreError::AliasLoop(_))
            ),
            "{start}"
        );
    }
    // A loop through a domain alias spelling of the same address.
    s.add_alias(&addr("c@l.test"), &targets(&["c2@l.test"]))
        .await
        .expect("c");
    s.add_alias(&addr("c2@l.test"), &targets(&["C@L2.test"]))
        .await
        .expect("c2");
    assert!(matches!(
        s.resolve("c@l.test", &ResolveOptions::default()).await,
        Err(StoreError::AliasLoop(_))
    ));
    // Diamonds are not loops: two paths to the same mailbox give one copy.
    s.add_alias(&addr("d@l.test"), &targets(&["e@l.test", "f@l.test"]))
        .await
        .expect("d");
    s.add_alias(&addr("e@l.test"), &targets(&["real@l.test"]))
        .await
        .expect("e");
    s.add_alias(&addr("f@l.test"), &targets(&["real@l.test"]))
        .await
        .expect("f");
    assert_eq!(
        resolve(s, "d@l.test").await,
        Resolution::Deliver(vec![mailbox("real@l.test", None, None)])
    );
}

pub async fn alias_depth(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("deep.test").await.expect("domain");
    s.add_user(&addr("end@deep.test"), "pw", None)
        .await
        .expect("user");
    // hop0 -> hop1 -> ... -> hop9 -> end: end is reached at depth 10.
    for i in 0..10 {
        let next = if i == 9 {
            "end@deep.test".to_owned()
        } else {
            format!("hop{}@deep.test", i + 1)
        };
        s.add_alias(&addr(&format!("hop{i}@deep.test")), &[next])
            .await
            .expect("hop");
    }
    assert_eq!(
        resolve(s, "hop0@deep.test").await,
        Resolution::Deliver(vec![mailbox("end@deep.test", None, None)])
    );
    // One more hop in front exceeds the default limit of 10.
    s.add_alias(&addr("start@deep.test"), &targets(&["hop0@deep.test"]))
        .await
        .expect("start");
    let err = s
        .resolve("start@deep.test", &ResolveOptions::default())
        .await
        .expect_err("11 hops");
    assert!(matches!(err, StoreError::AliasLoop(_)), "{err:?}");
    assert!(err.to_string().contains("more than 10"), "{err}");
    // A larger limit allows it.
    let opts = ResolveOptions {
        max_depth: 11,
        ..ResolveOptions::default()
    };
    assert!(matches!(
        s.resolve("start@deep.test", &opts).await,
        Ok(Resolution::Deliver(_))
    ));
}

pub async fn catchall_loop(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("one.test").await.expect("domain");
    s.add_domain("two.test").await.expect("domain");
    // one.test's catch-all goes to two.test, whose catch-all comes back to one.test.
    s.set_catchall("one.test", "x@two.test")
        .await
        .expect("catchall");
    s.set_catchall("two.test", "y@one.test")
        .await
        .expect("catchall");
    let err = s
        .resolve("anything@one.test", &ResolveOptions::default())
        .await
        .expect_err("catch-all ping-pong");
    assert!(matches!(err, StoreError::AliasLoop(_)), "{err:?}");
    // A catch-all to an existing user in another domain is fine.
    s.add_user(&addr("x@two.test"), "pw", None)
        .await
        .expect("user");
    assert_eq!(
        resolve(s, "anything@one.test").await,
        Resolution::Deliver(vec![mailbox("x@two.test", None, None)])
    );
}
