//! Mailing lists: settings, rosters, bounce bookkeeping, the address collisions with users
//! and aliases (both directions), and resolution of the ezmlm address scheme.

use moat_vdomain::{
    ListChanges, ListFlags, MemberKind, ReplyTo, Resolution, ResolveOptions, Store, StoreError,
    Target,
};

use super::{addr, targets};
use crate::harness::Ctx;

fn list_target(list: &str, ext: Option<&str>) -> Target {
    Target::List {
        list_address: list.to_owned(),
        extension: ext.map(str::to_owned),
    }
}

async fn resolve(s: &Store, address: &str) -> Resolution {
    s.resolve(address, &ResolveOptions::default())
        .await
        .unwrap_or_else(|e| panic!("resolve {address:?}: {e}"))
}

pub async fn lists_crud(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("example.test").await.expect("domain");
    s.add_domain_alias("alias.test", "example.test")
        .await
        .expect("dalias");
    let dev = addr("Dev@Example.test");
    let list = s
        .create_list(
            &dev,
            ListFlags {
                moderated: true,
                archive: true,
                ..ListFlags::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(list.address, "dev@example.test");
    assert!(list.moderated && list.archive && !list.members_only && !list.digest);
    assert_eq!(
        (list.next_post, list.members, list.reply_to),
        (1, 0, ReplyTo::None)
    );
    assert!(list.created > 0);

    let err = s
        .create_list(&dev, ListFlags::default())
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let err = s
        .create_list(&addr("x@nope.test"), ListFlags::default())
        .await
        .expect_err("no domain");
    assert!(matches!(err, StoreError::DomainNotFound(_)), "{err:?}");
    let err = s
        .create_list(&addr("x@alias.test"), ListFlags::default())
        .await
        .expect_err("domain alias");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // The secret is 32 random bytes, stable, and different per list.
    let secret = s.list_secret(&dev).await.expect("secret");
    assert_eq!(s.list_secret(&dev).await.expect("again"), secret);
    s.create_list(&addr("announce@example.test"), ListFlags::default())
        .await
        .expect("second");
    assert_ne!(
        s.list_secret(&addr("announce@example.test"))
            .await
            .expect("other"),
        secret
    );
    let all = s.list_lists(None).await.expect("all");
    let names: Vec<_> = all.iter().map(|l| l.address.as_str()).collect();
    assert_eq!(names, ["announce@example.test", "dev@example.test"]);
    assert_eq!(
        s.list_lists(Some("example.test")).await.expect("one").len(),
        2
    );
    assert!(matches!(
        s.list_lists(Some("nope.test")).await,
        Err(StoreError::DomainNotFound(_))
    ));

    // Settings: only what is named changes; values are checked before anything is written.
    let changed = s
        .update_list(
            &dev,
            &ListChanges {
                moderated: Some(false),
                subject_prefix: Some("[dev]".into()),
                max_message_bytes: Some(Some(100_000)),
                reply_to: Some(ReplyTo::List),
                footer: Some("-- \r\nunsubscribe: dev-unsubscribe@example.test\r\n".into()),
                owner: Some(Some("Boss@Example.ORG".into())),
                ..ListChanges::default()
            },
        )
        .await
        .expect("update");
    assert!(!changed.moderated && changed.archive);
    assert_eq!(changed.subject_prefix, "[dev]");
    assert_eq!(changed.max_message_bytes, Some(100_000));
    assert_eq!(changed.reply_to, ReplyTo::List);
    assert_eq!(
        changed.footer,
        "-- \nunsubscribe: dev-unsubscribe@example.test\n"
    );
    assert_eq!(changed.owner.as_deref(), Some("Boss@example.org"));
    let err = s
        .update_list(
            &dev,
            &ListChanges {
                archive: Some(false),
                subject_prefix: Some("a\nb".into()),
                ..ListChanges::default()
            },
        )
        .await
        .expect_err("bad prefix");
    assert!(matches!(err, StoreError::InvalidValue(_)), "{err:?}");
    let now = s.get_list(&dev).await.expect("get");
    assert!(now.archive, "nothing written when one value is refused");
    let cleared = s
        .update_list(
            &dev,
            &ListChanges {
                max_message_bytes: Some(None),
                owner: Some(None),
                ..ListChanges::default()
            },
        )
        .await
        .expect("clear");
    assert_eq!((cleared.max_message_bytes, cleared.owner), (None, None));
    let err = s
        .update_list(&addr("nobody@example.test"), &ListChanges::default())
        .await
        .expect_err("no list");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Post numbers are handed out once each; digests record how far they got.
    assert_eq!(s.next_post_number(&dev).await.expect("1"), 1);
    assert_eq!(s.next_post_number(&dev).await.expect("2"), 2);
    assert_eq!(s.next_post_number(&dev).await.expect("3"), 3);
    assert_eq!(s.record_digest(&dev, 2, 1000).await.expect("digest"), 1);
    let l = s.get_list(&dev).await.expect("get");
    assert_eq!(
        (
            l.next_post,
            l.next_digest,
            l.digested_through,
            l.last_digest_at
        ),
        (4, 2, 2, Some(1000))
    );
    let err = s.record_digest(&dev, 9, 2000).await.expect_err("future");
    assert!(matches!(err, StoreError::InvalidValue(_)), "{err:?}");
    let err = s.record_digest(&dev, 1, 2000).await.expect_err("past");
    assert!(matches!(err, StoreError::InvalidValue(_)), "{err:?}");

    // Deleting: refused with members unless forced; members go with the list.
    s.add_member(&dev, "a@remote.example", MemberKind::Member)
        .await
        .expect("member");
    let err = s.delete_list(&dev, false).await.expect_err("has members");
    assert!(
        matches!(err, StoreError::HasMembers { members: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    let gone = s.delete_list(&dev, true).await.expect("forced");
    assert_eq!(gone.members, 1);
    assert_eq!(ctx.count("list_members").await, 0);
    let err = s.delete_list(&dev, true).await.expect_err("gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    s.delete_list(&addr("announce@example.test"), false)
        .await
        .expect("empty list");

    // A domain takes its lists and their rosters with it.
    s.create_list(&dev, ListFlags::default())
        .await
        .expect("again");
    s.add_member(&dev, "b@remote.example", MemberKind::Digest)
        .await
        .expect("member");
    s.remove_domain("example.test", false)
        .await
        .expect("domain");
    assert_eq!(ctx.count("lists").await, 0);
    assert_eq!(ctx.count("list_members").await, 0);
}

pub async fn list_members(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("example.test").await.expect("domain");
    let dev = addr("dev@example.test");
    s.create_list(&dev, ListFlags::default())
        .await
        .expect("list");

    let m = s
        .add_member(&dev, " Bob.Smith@Bücher.EXAMPLE ", MemberKind::Member)
        .await
        .expect("add");
    assert_eq!(m.address, "Bob.Smith@xn--bcher-kva.example");
    assert_eq!(
        (m.kind, m.bounce_count, m.first_bounce_at),
        (MemberKind::Member, 0, None)
    );
    let err = s
        .add_member(&dev, "bob.smith@xn--bcher-kva.example", MemberKind::Member)
        .await
        .expect_err("same address in another case");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    s.add_member(&dev, "bob.smith@bücher.example", MemberKind::Moderator)
        .await
        .expect("also a moderator");
    s.add_member(&dev, "ann@example.test", MemberKind::Digest)
        .await
        .expect("digest");
    s.add_member(&dev, "zed@remote.example", MemberKind::Member)
        .await
        .expect("zed");
    for bad in ["not an address", "a/b@x.example", "x@-bad.example"] {
        let err = s
            .add_member(&dev, bad, MemberKind::Member)
            .await
            .expect_err(bad);
        assert!(matches!(err, StoreError::InvalidAddress(_)), "{err:?}");
    }
    let err = s
        .add_member(
            &addr("nolist@example.test"),
            "a@b.example",
            MemberKind::Member,
        )
        .await
        .expect_err("no list");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let all = s.list_members(&dev, None).await.expect("all");
    let rows: Vec<_> = all
        .iter()
        .map(|m| (m.kind.as_str(), m.address.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("member", "Bob.Smith@xn--bcher-kva.example"),
            ("member", "zed@remote.example"),
            ("digest", "ann@example.test"),
            ("moderator", "bob.smith@xn--bcher-kva.example"),
        ]
    );
    let mods = s
        .list_members(&dev, Some(MemberKind::Moderator))
        .await
        .expect("mods");
    assert_eq!(mods.len(), 1);
    // Pages of one roster, in the same order, each after the last address of the one
    // before (any letter case), ending short.
    let roster = &dev;
    let page = move |after: &'static str, limit: u32| async move {
        s.list_members_page(roster, MemberKind::Member, after, limit)
            .await
            .expect("page")
            .into_iter()
            .map(|m| m.address)
            .collect::<Vec<_>>()
    };
    assert_eq!(page("", 1).await, ["Bob.Smith@xn--bcher-kva.example"]);
    assert_eq!(
        page("BOB.SMITH@xn--bcher-kva.example", 5).await,
        ["zed@remote.example"]
    );
    assert!(page("zed@remote.example", 5).await.is_empty());
    // A subscription between pages that sorts before `after` is not seen again, nor does it
    // shift the next page (offset paging would repeat or skip an address here).
    s.add_member(&dev, "aaron@example.test", MemberKind::Member)
        .await
        .expect("aaron");
    assert_eq!(
        page("Bob.Smith@xn--bcher-kva.example", 5).await,
        ["zed@remote.example"]
    );
    assert_eq!(
        page("", 5).await,
        [
            "aaron@example.test",
            "Bob.Smith@xn--bcher-kva.example",
            "zed@remote.example"
        ]
    );
    s.remove_member(&dev, "aaron@example.test", MemberKind::Member)
        .await
        .expect("aaron out");
    assert_eq!(s.get_list(&dev).await.expect("counts").members, 2);

    assert!(
        s.is_member(&dev, "BOB.smith@Bücher.example", Some(MemberKind::Member))
            .await
            .expect("is")
    );
    assert!(
        s.is_member(&dev, "ann@example.test", None)
            .await
            .expect("any")
    );
    assert!(
        !s.is_member(&dev, "ann@example.test", Some(MemberKind::Member))
            .await
            .expect("not")
    );
    assert!(
        !s.is_member(&dev, "<junk>", None)
            .await
            .expect("junk is no member")
    );

    // Bounce bookkeeping.
    let b = s
        .record_bounce(&dev, "zed@REMOTE.example", MemberKind::Member, 100)
        .await
        .expect("bounce");
    assert_eq!((b.bounce_count, b.first_bounce_at), (1, Some(100)));
    let b = s
        .record_bounce(&dev, "zed@remote.example", MemberKind::Member, 200)
        .await
        .expect("bounce 2");
    assert_eq!((b.bounce_count, b.first_bounce_at), (2, Some(100)));
    let b = s
        .set_probe_sent(&dev, "zed@remote.example", MemberKind::Member, Some(300))
        .await
        .expect("probe");
    assert_eq!((b.bounce_count, b.probe_sent_at), (2, Some(300)));
    let got = s
        .get_member(&dev, "zed@remote.example", MemberKind::Member)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(got, b);
    let b = s
        .clear_bounces(&dev, "zed@remote.example", MemberKind::Member)
        .await
        .expect("clear");
    assert_eq!(
        (b.bounce_count, b.first_bounce_at, b.probe_sent_at),
        (0, None, None)
    );
    let err = s
        .record_bounce(&dev, "nobody@remote.example", MemberKind::Member, 1)
        .await
        .expect_err("not a member");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let removed = s
        .remove_member(&dev, "ZED@remote.example", MemberKind::Member)
        .await
        .expect("remove");
    assert_eq!(removed.address, "zed@remote.example");
    let err = s
        .remove_member(&dev, "zed@remote.example", MemberKind::Member)
        .await
        .expect_err("gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        s.get_member(&dev, "zed@remote.example", MemberKind::Member)
            .await
            .expect("get")
            .is_none()
    );
}

pub async fn list_address_conflicts(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("example.test").await.expect("domain");
    s.create_list(&addr("dev@example.test"), ListFlags::default())
        .await
        .expect("list");

    // Users and aliases cannot take a list's address or its command addresses.
    for taken in [
        "dev",
        "dev-subscribe",
        "dev-unsubscribe",
        "dev-help",
        "dev-owner",
        "dev-return-1-a=b.example",
        "dev-sc.abc-a=b.example",
        "dev-get.7",
        "dev-digest-subscribe",
        "dev-accept-1",
    ] {
        let a = addr(&format!("{taken}@example.test"));
        let err = s.add_user(&a, "pw", None).await.expect_err(taken);
        assert!(matches!(err, StoreError::Conflict(_)), "{taken}: {err:?}");
        assert!(err.to_string().contains("dev@example.test"), "{err}");
        let err = s
            .add_alias(&a, &targets(&["x@remote.example"]))
            .await
            .expect_err(taken);
        assert!(matches!(err, StoreError::Conflict(_)), "{taken}: {err:?}");
    }
    // Other names with the list's prefix are free.
    s.add_user(&addr("dev-team@example.test"), "pw", None)
        .await
        .expect("not a command");
    s.add_alias(&addr("devel@example.test"), &targets(&["x@remote.example"]))
        .await
        .expect("other name");

    // And the other way: a list cannot take a user's or alias's address, nor own one.
    s.add_user(&addr("ops-help@example.test"), "pw", None)
        .await
        .expect("user");
    s.add_alias(&addr("sales@example.test"), &targets(&["x@remote.example"]))
        .await
        .expect("alias");
    for (name, clash) in [
        ("ops", "ops-help"),
        ("sales", "sales"),
        ("dev-team", "dev-team"),
        ("dev-help", "dev@example.test"),
    ] {
        let err = s
            .create_list(&addr(&format!("{name}@example.test")), ListFlags::default())
            .await
            .expect_err(name);
        assert!(matches!(err, StoreError::Conflict(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(clash), "{name}: {err}");
    }
    // A list that would own another list's name is refused too.
    s.create_list(&addr("web-owner@example.test"), ListFlags::default())
        .await
        .expect("no list web yet");
    let err = s
        .create_list(&addr("web@example.test"), ListFlags::default())
        .await
        .expect_err("would own web-owner");
    assert!(err.to_string().contains("web-owner"), "{err}");
}

pub async fn resolve_lists(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("example.test").await.expect("domain");
    s.add_domain_alias("alias.test", "example.test")
        .await
        .expect("dalias");
    s.add_user(&addr("ann@example.test"), "pw", None)
        .await
        .expect("ann");
    s.create_list(&addr("dev@example.test"), ListFlags::default())
        .await
        .expect("dev");
    s.create_list(&addr("dev-team@example.test"), ListFlags::default())
        .await
        .expect("dev-team");
    let dev = "dev@example.test";
    for (address, ext) in [
        ("dev@example.test", None),
        ("DEV@alias.test", None),
        ("dev-subscribe@example.test", Some("subscribe")),
        ("dev-unsubscribe@example.test", Some("unsubscribe")),
        ("dev-help@example.test", Some("help")),
        ("dev-owner@example.test", Some("owner")),
        ("dev-index@example.test", Some("index")),
        (
            "dev-digest-subscribe@example.test",
            Some("digest-subscribe"),
        ),
        (
            "dev-digest-unsubscribe@example.test",
            Some("digest-unsubscribe"),
        ),
        (
            "dev-sc.0f3a-Bob=Remote.example@example.test",
            Some("sc.0f3a-bob=remote.example"),
        ),
        (
            "dev-uc.0f3a-bob=remote.example@example.test",
            Some("uc.0f3a-bob=remote.example"),
        ),
        ("dev-accept-12ab@example.test", Some("accept-12ab")),
        ("dev-reject-12ab@example.test", Some("reject-12ab")),
        (
            "dev-return-7-bob=remote.example@example.test",
            Some("return-7-bob=remote.example"),
        ),
        ("dev-return-probe-x@example.test", Some("return-probe-x")),
        ("dev-get.7@example.test", Some("get.7")),
    ] {
        assert_eq!(
            resolve(s, address).await,
            Resolution::Deliver(vec![list_target(dev, ext)]),
            "{address}"
        );
    }
    // The longer list name wins; `dev-team-help` is dev-team's, not dev's.
    assert_eq!(
        resolve(s, "dev-team-help@example.test").await,
        Resolution::Deliver(vec![list_target("dev-team@example.test", Some("help"))])
    );
    assert_eq!(
        resolve(s, "dev-team@example.test").await,
        Resolution::Deliver(vec![list_target("dev-team@example.test", None)])
    );
    // Not commands, and not sub-address bases: unknown without a catch-all. Held-post ids
    // and post numbers follow moat-lists' grammar (1-64 of [a-z0-9]; 1-19 digits, N <= M),
    // so a malformed one is refused at RCPT instead of waiting in the queue...
    for other in [
        "dev-bogus",
        "dev-get.x",
        "dev+tag",
        "dev-",
        "dev-accept-12.ab",
        "dev-reject-a_b",
        "dev-accept-",
        "dev-get.00000000000000000007",
        "dev-get.9_3",
    ] {
        assert_eq!(
            resolve(s, &format!("{other}@example.test")).await,
            Resolution::Unknown,
            "{other}"
        );
    }
    // ...the catch-all's with one; lists and their commands still come first.
    s.set_catchall("example.test", "ann@example.test")
        .await
        .expect("catch-all");
    let to_ann = |detail: Option<&str>| Target::Mailbox {
        user: "ann@example.test".into(),
        maildir: "example.test/ann".into(),
        quota_bytes: None,
        detail: detail.map(str::to_owned),
    };
    assert_eq!(
        resolve(s, "dev-bogus@example.test").await,
        Resolution::Deliver(vec![to_ann(None)])
    );
    assert_eq!(
        resolve(s, "dev-accept-12.ab@example.test").await,
        Resolution::Deliver(vec![to_ann(None)])
    );
    assert_eq!(
        resolve(s, "dev-help@example.test").await,
        Resolution::Deliver(vec![list_target(dev, Some("help"))])
    );
    // An alias may point at a list (a list among its targets).
    s.add_alias(
        &addr("everyone@example.test"),
        &targets(&["dev@example.test", "ann@example.test"]),
    )
    .await
    .expect("alias");
    assert_eq!(
        resolve(s, "everyone@example.test").await,
        Resolution::Deliver(vec![list_target(dev, None), to_ann(None)])
    );
}

/// VERP and confirmation addresses of long member addresses: a list's `return-`, `sc.` and `uc.`
/// addresses resolve with local parts up to 255 octets; every other local part keeps 64.
pub async fn resolve_long_list_commands(ctx: Ctx) {
    let s = &ctx.store;
    s.add_domain("example.test").await.expect("domain");
    s.add_domain_alias("alias.test", "example.test")
        .await
        .expect("dalias");
    s.add_user(&addr("ann@example.test"), "pw", None)
        .await
        .expect("ann");
    s.create_list(&addr("dev@example.test"), ListFlags::default())
        .await
        .expect("dev");
    let dev = "dev@example.test";
    let member = format!("{}=far.example", "a.very.long.member.name".repeat(4));
    let cookie = "0f3a".repeat(7);
    for ext in [
        format!("return-12-{member}"),
        format!("return-probe-{member}"),
        format!("sc.{cookie}-{member}"),
        format!("uc.{cookie}-{member}"),
    ] {
        let local = format!("dev-{ext}");
        assert!(local.len() > 64, "{local}");
        for domain in ["example.test", "ALIAS.test"] {
            assert_eq!(
                resolve(s, &format!("{}@{domain}", local.to_uppercase())).await,
                Resolution::Deliver(vec![list_target(dev, Some(&ext))]),
                "{local}@{domain}"
            );
        }
    }
    // 255 octets is the most.
    let longest = format!("dev-return-1-{}", "b".repeat(255 - 13));
    assert_eq!(longest.len(), 255);
    assert_eq!(
        resolve(s, &format!("{longest}@example.test")).await,
        Resolution::Deliver(vec![list_target(dev, Some(&longest[4..]))])
    );
    let too_long = format!("{longest}b@example.test");
    assert!(matches!(
        s.resolve(&too_long, &ResolveOptions::default()).await,
        Err(StoreError::InvalidAddress(_))
    ));
    // Other long local parts stay refused: other commands of the list, sub-addresses of a
    // user, anything under a catch-all.
    s.set_catchall("example.test", "ann@example.test")
        .await
        .expect("catch-all");
    let long = "x".repeat(70);
    for local in [
        format!("dev-accept-{long}"),
        format!("dev-{long}"),
        format!("ann+{long}"),
        long.clone(),
    ] {
        let got = s
            .resolve(&format!("{local}@example.test"), &ResolveOptions::default())
            .await;
        assert!(
            matches!(got, Err(StoreError::InvalidAddress(_))),
            "{local}: {got:?}"
        );
    }
    // 64 octets still resolve the ordinary way (here: the catch-all).
    assert!(matches!(
        resolve(s, &format!("{}@example.test", "y".repeat(64))).await,
        Resolution::Deliver(_)
    ));
    // A domain we do not host is still not ours.
    assert_eq!(
        resolve(s, &format!("dev-return-1-{long}@elsewhere.example")).await,
        Resolution::NotLocal
    );
}
