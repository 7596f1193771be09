//! Moderated lists and `list-owner`, by mail only, on a real stack: a post from a non-moderator
//! is held and the moderators asked; a moderator's reply to the request's Reply-To sends it to
//! the members, mail to the reject address drops it and tells the poster; a non-moderator's
//! accept does nothing; held posts expire; `list-owner` mail reaches the owner (or, without
//! one, the moderators).

use std::time::Duration;

use moat_tests::Stack;

fn add_users(s: &Stack, users: &[&str]) {
    for u in users {
        s.add_user(&format!("{u}@example.test"), &format!("{u}-secret"));
    }
}

/// A moderated `dev@example.test`: alice moderates, bob and carol are members.
fn moderated(extra: &str) -> Stack {
    let s = Stack::start_configured(moat_tests::Mode::Up, extra);
    s.add_domain("example.test");
    add_users(&s, &["alice", "bob", "carol", "owner"]);
    s.admin(&["list", "create", "dev@example.test", "--moderated"], "");
    s.admin(
        &[
            "list",
            "add",
            "dev@example.test",
            "alice@example.test",
            "--moderator",
        ],
        "",
    );
    for m in ["bob@example.test", "carol@example.test"] {
        s.admin(&["list", "add", "dev@example.test", m], "");
    }
    s
}

/// Sends `headers`, the empty line and `body` over SMTP (port 25).
fn send(s: &Stack, sender: &str, rcpt: &str, headers: &str, body: &str) {
    s.send_smtp(sender, rcpt, &format!("{headers}\r\n{body}"));
}

/// The message in `address`'s Maildir whose text holds `needle` (waits 30 s at most).
fn find(s: &Stack, address: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = s.messages(address).into_iter().find(|m| m.contains(needle)) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{address} has no message with {needle:?}:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A header field's value in `message` (first occurrence).
fn field(message: &str, name: &str) -> String {
    message
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{message}"))
}

/// The first `<…>` in the text that starts with `prefix`.
fn address_in(text: &str, prefix: &str) -> String {
    text.split('<')
        .filter_map(|p| p.split_once('>').map(|(a, _)| a))
        .find(|a| a.starts_with(prefix))
        .unwrap_or_else(|| panic!("no <{prefix}…> in\n{text}"))
        .to_string()
}

/// Nobody but the listed addresses got a message with `needle` (after a short wait, so a
/// wrongly sent copy had time to arrive).
fn nobody_has(s: &Stack, needle: &str, users: &[&str]) {
    std::thread::sleep(Duration::from_millis(700));
    for u in users {
        for m in s.messages(&format!("{u}@example.test")) {
            assert!(!m.contains(needle), "{u} got {needle:?}:\n{m}");
        }
    }
}

#[test]
fn held_post_is_sent_on_accept_and_dropped_on_reject() {
    let s = moderated("");

    // carol's post is held: alice is asked, carol told, nobody gets the post.
    send(
        &s,
        "carol@example.test",
        "dev@example.test",
        "From: carol@example.test\r\nSubject: first post\r\n",
        "the first body\r\n",
    );
    let request = find(&s, "alice@example.test", "Subject: moderate: first post");
    s.wait_log("held as ");
    let accept = field(&request, "Reply-To");
    let id = accept
        .strip_prefix("dev-accept-")
        .and_then(|r| r.strip_suffix("@example.test"))
        .unwrap_or_else(|| panic!("accept address {accept:?}"));
    assert!(
        id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert!(
        request.contains(&format!("<dev-reject-{id}@example.test>")),
        "{request}"
    );
    assert!(
        request.contains("Content-Type: message/rfc822"),
        "{request}"
    );
    assert!(request.contains("the first body"), "{request}");
    assert!(
        request.starts_with("Return-Path: <dev-return@example.test>"),
        "{request}"
    );
    let note = find(&s, "carol@example.test", "awaits moderation");
    assert!(note.contains("Auto-Submitted: auto-replied"), "{note}");
    nobody_has(&s, "the first body", &["bob", "carol"]);

    // bob is no moderator: his accept changes nothing.
    send(
        &s,
        "bob@example.test",
        &accept,
        "From: bob@example.test\r\nSubject: Re: moderate\r\n",
        "ok\r\n",
    );
    s.wait_log("from=<bob@example.test>: ignored: not a moderator");
    nobody_has(&s, "the first body", &["bob", "carol"]);

    // alice replies to the request: bob and carol get the post, with the list's headers.
    send(
        &s,
        "alice@example.test",
        &accept,
        &format!(
            "From: alice@example.test\r\nSubject: Re: moderate: first post\r\nIn-Reply-To: {}\r\n",
            field(&request, "Message-ID")
        ),
        "> A post to the moderated list\r\n",
    );
    for member in ["bob@example.test", "carol@example.test"] {
        let post = find(&s, member, "the first body");
        assert!(post.contains("List-Id: <dev.example.test>"), "{post}");
        assert!(post.contains("Subject: first post"), "{post}");
        let verp = member.replace('@', "=");
        assert!(
            post.starts_with(&format!("Return-Path: <dev-return-1-{verp}@example.test>")),
            "{post}"
        );
    }
    s.wait_log("accepted by <alice@example.test>");
    // Accepted once: a second accept finds nothing.
    send(
        &s,
        "alice@example.test",
        &accept,
        "From: alice@example.test\r\nSubject: Re: again\r\n",
        "ok\r\n",
    );
    s.wait_log("no such held post");
    std::thread::sleep(Duration::from_millis(700));
    for member in ["bob@example.test", "carol@example.test"] {
        let copies = s
            .messages(member)
            .iter()
            .filter(|m| m.contains("the first body"))
            .count();
        assert_eq!(copies, 1, "{member}:\n{}", s.log());
    }

    // A second post, rejected: nobody gets it, carol is told.
    send(
        &s,
        "carol@example.test",
        "dev@example.test",
        "From: carol@example.test\r\nSubject: second post\r\n",
        "the second body\r\n",
    );
    let request = find(&s, "alice@example.test", "Subject: moderate: second post");
    let reject = address_in(&request, "dev-reject-");
    send(
        &s,
        "alice@example.test",
        &reject,
        "From: alice@example.test\r\nSubject: no\r\n",
        "off topic\r\n",
    );
    let rejection = find(&s, "carol@example.test", "was not accepted");
    assert!(rejection.contains("second post"), "{rejection}");
    assert!(
        rejection.contains("Auto-Submitted: auto-replied"),
        "{rejection}"
    );
    s.wait_log("rejected by <alice@example.test>");
    // carol's second "awaits" note is throttled (one per hour).
    s.wait_log("moderation note to=<carol@example.test> not sent");
    // Accepting it now is too late.
    let accept2 = field(&request, "Reply-To");
    send(
        &s,
        "alice@example.test",
        &accept2,
        "From: alice@example.test\r\nSubject: oops\r\n",
        "ok\r\n",
    );
    nobody_has(&s, "the second body", &["bob", "carol"]);
    let held = s.data.join("lists/dev@example.test/held");
    let left: Vec<_> = std::fs::read_dir(&held)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "still held: {left:?}");
    // A moderator's own post is not held.
    send(
        &s,
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nSubject: from the moderator\r\n",
        "the third body\r\n",
    );
    find(&s, "bob@example.test", "the third body");
    s.wait_queued(0);
}

#[test]
fn owner_mail_reaches_the_owner_or_the_moderators() {
    let s = moderated("");
    // No owner: the moderators get it.
    send(
        &s,
        "bob@example.test",
        "dev-owner@example.test",
        "From: bob@example.test\r\nSubject: question one\r\n",
        "who runs this?\r\n",
    );
    let m = find(&s, "alice@example.test", "question one");
    assert!(m.contains("Delivered-To: dev-owner@example.test"), "{m}");
    assert!(m.starts_with("Return-Path: <bob@example.test>"), "{m}");

    s.admin(
        &[
            "list",
            "set",
            "dev@example.test",
            "--owner",
            "owner@example.test",
        ],
        "",
    );
    send(
        &s,
        "bob@example.test",
        "dev-owner@example.test",
        "From: bob@example.test\r\nSubject: question two\r\n",
        "hello owner\r\n",
    );
    find(&s, "owner@example.test", "question two");
    // Machine mail and the null sender are not forwarded.
    send(
        &s,
        "bob@example.test",
        "dev-owner@example.test",
        "From: bob@example.test\r\nAuto-Submitted: auto-replied\r\nSubject: away\r\n",
        "on holiday\r\n",
    );
    send(
        &s,
        "",
        "dev-owner@example.test",
        "From: MAILER-DAEMON@far.example\r\nSubject: bounce\r\n",
        "failed\r\n",
    );
    s.wait_log("owner from <>: not answered");
    s.wait_log("owner from=<bob@example.test>: not answered (Auto-Submitted");
    nobody_has(&s, "on holiday", &["owner", "alice"]);
    nobody_has(&s, "MAILER-DAEMON", &["owner", "alice"]);
    assert!(
        !s.messages("alice@example.test")
            .iter()
            .any(|m| m.contains("question two")),
        "the owner set, the moderators are not asked"
    );
}

#[test]
fn held_posts_expire() {
    let mut s = moderated("[lists]\nheld_expiry = \"2s\"\n");
    send(
        &s,
        "carol@example.test",
        "dev@example.test",
        "From: carol@example.test\r\nSubject: slow post\r\n",
        "nobody decides\r\n",
    );
    let request = find(&s, "alice@example.test", "Subject: moderate: slow post");
    let accept = field(&request, "Reply-To");
    let id = accept
        .strip_prefix("dev-accept-")
        .and_then(|r| r.strip_suffix("@example.test"))
        .expect("id")
        .to_string();
    std::thread::sleep(Duration::from_secs(3));
    // The sweep runs at start.
    s.restart();
    s.wait_log(&format!(
        "held post {id} from=<carol@example.test>: expired"
    ));
    // One line, one space apart: "expired unmoderated (held Ns ago): removed".
    let log = s.log();
    let line = log
        .lines()
        .find(|l| {
            l.contains(&format!(
                "held post {id} from=<carol@example.test>: expired"
            ))
        })
        .expect("expiry line");
    let tail = line
        .split_once(": expired unmoderated (held ")
        .map(|(_, t)| t)
        .expect("expiry words");
    let (secs, rest) = tail.split_once("s ago): removed").expect("held time");
    assert!(secs.parse::<u64>().is_ok_and(|n| n >= 2), "{line}");
    assert!(rest.trim().is_empty(), "{line}");
    send(
        &s,
        "alice@example.test",
        &accept,
        "From: alice@example.test\r\nSubject: Re: late\r\n",
        "ok\r\n",
    );
    s.wait_log("no such held post");
    nobody_has(&s, "nobody decides", &["bob", "carol"]);
}
