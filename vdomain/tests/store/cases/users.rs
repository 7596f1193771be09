//! Users, address validation, passwords and authentication, quotas.

use moat_vdomain::{Address, AddressError, StoreError, password};
use sqlx::Row;

use super::addr;
use crate::harness::Ctx;

pub async fn users_crud(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("u.test").await.expect("domain");
    let u = s
        .add_user(&addr("Alice@U.test"), "pw1", None)
        .await
        .expect("add");
    assert_eq!(u.address, "alice@u.test");
    assert_eq!((u.local.as_str(), u.domain.as_str()), ("alice", "u.test"));
    assert!(u.enabled);
    assert_eq!(u.quota_bytes, None);
    assert_eq!(u.maildir(), "u.test/alice");

    let err = s
        .add_user(&addr("ALICE@u.test"), "pw", None)
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(err.to_string(), "user \"alice@u.test\" already exists");

    let err = s
        .add_user(&addr("bob@nope.test"), "pw", None)
        .await
        .expect_err("no domain");
    assert!(
        matches!(err, StoreError::DomainNotFound(ref d) if d == "nope.test"),
        "{err:?}"
    );
    let err = s
        .add_user(&addr("bob@u.test"), "", None)
        .await
        .expect_err("empty pw");
    assert!(matches!(err, StoreError::EmptyPassword), "{err:?}");

    s.add_user(&addr("bob@u.test"), "pw2", Some(5_000_000))
        .await
        .expect("bob");
    let list = s.list_users("U.TEST").await.expect("list");
    let names: Vec<_> = list.iter().map(|u| u.address.as_str()).collect();
    assert_eq!(names, ["alice@u.test", "bob@u.test"]);
    assert!(matches!(
        s.list_users("nope.test").await,
        Err(StoreError::DomainNotFound(_))
    ));

    assert_eq!(s.get_user(&addr("alice@u.test")).await.expect("get"), u);
    let err = s
        .get_user(&addr("carol@u.test"))
        .await
        .expect_err("missing");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(err.to_string(), "user \"carol@u.test\" does not exist");
    assert!(matches!(
        s.get_user(&addr("carol@nope.test")).await,
        Err(StoreError::DomainNotFound(_))
    ));

    let removed = s.remove_user(&addr("bob@u.test")).await.expect("remove");
    assert_eq!(removed.address, "bob@u.test");
    assert_eq!(removed.quota_bytes, Some(5_000_000));
    assert!(matches!(
        s.remove_user(&addr("bob@u.test")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.get_user(&addr("bob@u.test")).await,
        Err(StoreError::NotFound(_))
    ));

    // Serialisation never includes the hash.
    let json = format!("{:?}", s.list_users("u.test").await.expect("list"));
    assert!(!json.contains("argon2"), "{json}");
}

pub async fn invalid_addresses(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("d.test").await.expect("domain");
    let long = format!("{}@d.test", "a".repeat(65));
    let cases = [
        "../x@d.test",
        "a/b@d.test",
        ".a@d.test",
        "a.@d.test",
        "a..b@d.test",
        long.as_str(),
        "a\0b@d.test",
        "a b@d.test",
        "",
        "   ",
        "@d.test",
        "nobody",
        "x@",
        "x@d..test",
        "x@[127.0.0.1]",
    ];
    for bad in cases {
        let err = Address::parse(bad).expect_err(bad);
        assert!(!err.to_string().is_empty());
        // The store re-checks addresses built by hand, bypassing parse.
        if let Some((l, d)) = bad.rsplit_once('@') {
            let forged = Address {
                local: l.to_owned(),
                domain: d.to_owned(),
            };
            let err = s.add_user(&forged, "pw", None).await.expect_err(bad);
            assert!(
                matches!(err, StoreError::InvalidAddress(_)),
                "{bad:?}: {err:?}"
            );
        }
    }
    assert_eq!(Address::parse(""), Err(AddressError::Empty));
    assert!(Address::parse(&format!("{}@d.test", "a".repeat(64))).is_ok());
    let msg = Address::parse("a\0b@d.test").expect_err("nul").to_string();
    assert!(msg.contains("\\0"), "NUL is shown escaped: {msg}");
    assert!(!msg.contains('\0'));
    assert_eq!(ctx.count("users").await, 0);
}

pub async fn passwords(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("p.test").await.expect("domain");
    s.add_domain_alias("p-alias.test", "p.test")
        .await
        .expect("dalias");
    s.add_user(&addr("carol@p.test"), "correct horse", None)
        .await
        .expect("user");

    let raw = ctx.raw().await;
    let row = sqlx::query("SELECT password_hash FROM users")
        .fetch_one(&raw)
        .await
        .expect("hash row");
    let hash: String = row.try_get(0).expect("hash");
    raw.close().await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(password::verify_password(&hash, "correct horse"));
    assert!(!password::verify_password(&hash, "wrong"));

    let ok = s
        .authenticate("carol@p.test", "correct horse")
        .await
        .expect("auth");
    assert_eq!(ok.expect("accepted").address, "carol@p.test");
    let ok = s
        .authenticate("CAROL@P.Test", "correct horse")
        .await
        .expect("auth");
    assert!(ok.is_some(), "login is case-insensitive");
    let ok = s
        .authenticate("carol@p-alias.test", "correct horse")
        .await
        .expect("auth");
    assert_eq!(ok.expect("via domain alias").address, "carol@p.test");
    for (login, pw) in [
        ("carol@p.test", "wrong"),
        ("carol@p.test", ""),
        ("carol@p.test", "Correct horse"),
        ("nobody@p.test", "correct horse"),
        ("carol@nope.test", "correct horse"),
        ("not an address", "correct horse"),
        ("", ""),
    ] {
        let r = s.authenticate(login, pw).await.expect("auth runs");
        assert!(r.is_none(), "{login:?}/{pw:?} must be refused");
    }

    s.set_enabled(&addr("carol@p.test"), false)
        .await
        .expect("disable");
    assert!(
        !s.get_user(&addr("carol@p.test"))
            .await
            .expect("get")
            .enabled
    );
    assert!(
        s.authenticate("carol@p.test", "correct horse")
            .await
            .expect("auth")
            .is_none()
    );
    s.set_enabled(&addr("carol@p.test"), true)
        .await
        .expect("enable");
    assert!(
        s.authenticate("carol@p.test", "correct horse")
            .await
            .expect("auth")
            .is_some()
    );

    s.set_password(&addr("carol@p.test"), "battery staple")
        .await
        .expect("set");
    assert!(
        s.authenticate("carol@p.test", "correct horse")
            .await
            .expect("auth")
            .is_none()
    );
    assert!(
        s.authenticate("carol@p.test", "battery staple")
            .await
            .expect("auth")
            .is_some()
    );
    assert!(matches!(
        s.set_password(&addr("carol@p.test"), "").await,
        Err(StoreError::EmptyPassword)
    ));
    assert!(matches!(
        s.set_password(&addr("dave@p.test"), "x").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_enabled(&addr("dave@nope.test"), true).await,
        Err(StoreError::DomainNotFound(_))
    ));
}

pub async fn quota(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("q.test").await.expect("domain");
    let u = addr("q@q.test");
    s.add_user(&u, "pw", Some(1 << 30)).await.expect("user");
    assert_eq!(
        s.get_user(&u).await.expect("get").quota_bytes,
        Some(1 << 30)
    );
    s.set_quota(&u, Some(42)).await.expect("set");
    assert_eq!(s.get_user(&u).await.expect("get").quota_bytes, Some(42));
    s.set_quota(&u, None).await.expect("clear");
    assert_eq!(s.get_user(&u).await.expect("get").quota_bytes, None);
    for bad in [0, -1] {
        let err = s.set_quota(&u, Some(bad)).await.expect_err("bad quota");
        assert!(
            matches!(err, StoreError::InvalidQuota(q) if q == bad),
            "{err:?}"
        );
        let err = s
            .add_user(&addr("z@q.test"), "pw", Some(bad))
            .await
            .expect_err("bad");
        assert!(matches!(err, StoreError::InvalidQuota(_)), "{err:?}");
    }
    assert!(matches!(
        s.set_quota(&addr("nobody@q.test"), None).await,
        Err(StoreError::NotFound(_))
    ));
    // Large quotas survive the round trip.
    s.set_quota(&u, Some(i64::MAX)).await.expect("max");
    assert_eq!(
        s.get_user(&u).await.expect("get").quota_bytes,
        Some(i64::MAX)
    );
}
