//! Domains, domain aliases, catch-all administration, domain removal.

use moat_vdomain::StoreError;

use super::{addr, targets};
use crate::harness::Ctx;

pub async fn domains_crud(ctx: Ctx) {
    let s = &ctx.store;
    assert!(s.list_domains().await.expect("list").is_empty());
    let d = s.add_domain("  Example.TEST ").await.expect("add");
    assert_eq!(d.name, "example.test");
    assert!(d.created > 1_600_000_000);
    s.add_domain("other.test").await.expect("add other");

    let err = s.add_domain("EXAMPLE.test").await.expect_err("duplicate");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(err.to_string(), "domain \"example.test\" already exists");

    s.add_user(&addr("a@example.test"), "pw", None)
        .await
        .expect("user");
    s.add_alias(
        &addr("info@example.test"),
        &targets(&["a@example.test", "x@remote.test"]),
    )
    .await
    .expect("alias");
    let list = s.list_domains().await.expect("list");
    let names: Vec<_> = list.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["example.test", "other.test"]);
    assert_eq!(list[0].users, 1);
    assert_eq!(
        list[0].aliases, 1,
        "one source with two targets counts once"
    );
    assert_eq!(list[1].users, 0);

    let got = s.get_domain("Example.Test").await.expect("get");
    assert_eq!(got, list[0]);

    let err = s.get_domain("nope.test").await.expect_err("missing");
    assert!(matches!(err, StoreError::DomainNotFound(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "domain \"nope.test\" does not exist (add it with: moat domain add nope.test)"
    );

    assert!(
        s.remove_domain("other.test", false)
            .await
            .expect("remove")
            .is_empty()
    );
    assert!(matches!(
        s.get_domain("other.test").await,
        Err(StoreError::DomainNotFound(_))
    ));
    assert!(matches!(
        s.remove_domain("other.test", false).await,
        Err(StoreError::DomainNotFound(_))
    ));
    for bad in ["", "a..b", "-x.test", "a_b.test", "[127.0.0.1]", "10.0.0.1"] {
        let err = s.add_domain(bad).await.expect_err(bad);
        assert!(
            matches!(err, StoreError::InvalidAddress(_)),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(s.list_domains().await.expect("list").len(), 1);
}

pub async fn domain_idna(ctx: Ctx) {
    let s = &ctx.store;
    let d = s.add_domain("Bücher.Example").await.expect("add");
    assert_eq!(d.name, "xn--bcher-kva.example");
    // Both spellings find it, and the Unicode form is a duplicate.
    assert_eq!(
        s.get_domain("bücher.example").await.expect("get").name,
        d.name
    );
    assert_eq!(
        s.get_domain("XN--BCHER-KVA.example")
            .await
            .expect("get")
            .name,
        d.name
    );
    assert!(matches!(
        s.add_domain("BÜCHER.example").await,
        Err(StoreError::AlreadyExists(_))
    ));
    // Non-ASCII local parts are refused (no SMTPUTF8 yet).
    assert!(moat_vdomain::Address::parse("Jörg@Bücher.Example").is_err());
    let u = s
        .add_user(&addr("joerg@Bücher.Example"), "pw", None)
        .await
        .expect("user");
    assert_eq!(u.address, "joerg@xn--bcher-kva.example");
}

pub async fn domain_aliases(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("real.test").await.expect("add");
    s.add_domain("second.test").await.expect("add");
    s.add_domain_alias("Alias.test", "REAL.test")
        .await
        .expect("alias");
    s.add_domain_alias("alias2.test", "real.test")
        .await
        .expect("alias2");
    let d = s.get_domain("real.test").await.expect("get");
    assert_eq!(d.alias_domains, ["alias.test", "alias2.test"]);

    let err = s
        .add_domain_alias("alias.test", "second.test")
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let err = s
        .add_domain_alias("x.test", "nope.test")
        .await
        .expect_err("missing target");
    assert!(matches!(err, StoreError::DomainNotFound(_)), "{err:?}");
    let err = s
        .add_domain_alias("x.test", "alias.test")
        .await
        .expect_err("alias of alias");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_domain_alias("second.test", "real.test")
        .await
        .expect_err("real domain");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_domain_alias("real.test", "real.test")
        .await
        .expect_err("self");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .add_domain("alias.test")
        .await
        .expect_err("name taken by alias");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .get_domain("alias.test")
        .await
        .expect_err("alias is not a domain");
    assert!(err.to_string().contains("real.test"), "{err}");
    let err = s
        .add_user(&addr("u@alias.test"), "pw", None)
        .await
        .expect_err("alias domain");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    s.remove_domain_alias("ALIAS2.test").await.expect("remove");
    let err = s
        .remove_domain_alias("alias2.test")
        .await
        .expect_err("gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        s.get_domain("real.test").await.expect("get").alias_domains,
        ["alias.test"]
    );
}

pub async fn catchall_admin(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("c.test").await.expect("add");
    s.add_user(&addr("boss@c.test"), "pw", None)
        .await
        .expect("user");
    let err = s
        .set_catchall("nope.test", "boss@c.test")
        .await
        .expect_err("no domain");
    assert!(matches!(err, StoreError::DomainNotFound(_)), "{err:?}");
    let err = s
        .set_catchall("c.test", "ghost@c.test")
        .await
        .expect_err("would loop");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = s
        .set_catchall("c.test", "not an address")
        .await
        .expect_err("bad target");
    assert!(matches!(err, StoreError::InvalidAddress(_)), "{err:?}");

    s.set_catchall("c.test", "Boss@C.test").await.expect("set");
    assert_eq!(
        s.get_domain("c.test")
            .await
            .expect("get")
            .catchall
            .as_deref(),
        Some("boss@c.test")
    );
    s.set_catchall("c.test", "someone@elsewhere.test")
        .await
        .expect("replace");
    assert_eq!(
        s.get_domain("c.test")
            .await
            .expect("get")
            .catchall
            .as_deref(),
        Some("someone@elsewhere.test")
    );
    assert_eq!(ctx.count("catchalls").await, 1);
    s.clear_catchall("c.test").await.expect("clear");
    assert_eq!(s.get_domain("c.test").await.expect("get").catchall, None);
    let err = s.clear_catchall("c.test").await.expect_err("none left");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn remove_domain_with_users(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("gone.test").await.expect("add");
    s.add_domain("kept.test").await.expect("add");
    s.add_user(&addr("a@gone.test"), "pw", Some(1000))
        .await
        .expect("a");
    s.add_user(&addr("b@gone.test"), "pw", None)
        .await
        .expect("b");
    s.add_user(&addr("k@kept.test"), "pw", None)
        .await
        .expect("k");
    s.add_alias(
        &addr("x@gone.test"),
        &targets(&["a@gone.test", "k@kept.test"]),
    )
    .await
    .expect("alias");
    s.add_alias(&addr("y@kept.test"), &targets(&["a@gone.test"]))
        .await
        .expect("alias");
    s.set_catchall("gone.test", "a@gone.test")
        .await
        .expect("catchall");
    s.add_domain_alias("gone-alias.test", "gone.test")
        .await
        .expect("dalias");

    let err = s
        .remove_domain("gone.test", false)
        .await
        .expect_err("has users");
    match &err {
        StoreError::HasUsers { domain, users } => {
            assert_eq!(domain, "gone.test");
            assert_eq!(*users, 2);
        }
        other => panic!("expected HasUsers, got {other:?}"),
    }
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        s.list_users("gone.test").await.expect("still there").len(),
        2
    );

    let removed = s.remove_domain("GONE.test", true).await.expect("force");
    let names: Vec<_> = removed.iter().map(|u| u.address.as_str()).collect();
    assert_eq!(names, ["a@gone.test", "b@gone.test"]);
    assert_eq!(removed[0].quota_bytes, Some(1000));

    // Cascade: nothing of gone.test is left; kept.test is untouched.
    assert_eq!(ctx.count("users").await, 1);
    assert_eq!(ctx.count("aliases").await, 1, "only y@kept.test remains");
    assert_eq!(ctx.count("catchalls").await, 0);
    assert_eq!(ctx.count("domain_aliases").await, 0);
    assert_eq!(ctx.count("domains").await, 1);
    let aliases = s.list_aliases(None).await.expect("aliases");
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0].source, "y@kept.test");
}
