//! moat-lists' bounce handling end to end (docs/LISTS.md, "Bounces"): list `dev@example.test`
//! with `[lists] bounce_threshold = 2`, a local member alice and a remote member
//! `bob@far.example` whose server (an aiosmtpd peer on loopback, routed through `[remote]
//! routes`) answers RCPT with 550. moat-remote's own DSNs travel to
//! `dev-return-N-bob=far.example@example.test`, moat-local hands them to moat-lists: the first
//! is counted, the second sends bob a probe from `dev-return-probe-COOKIE-bob=far.example@…`,
//! and the probe's bounce removes him. A vacation reply and a delay notice to the bounce address
//! change nothing, and nothing sent to a bounce address reaches the list's members. Forged
//! null-sender mail (bounces of posts never sent, auto-replies, probe bounces without the
//! probe's cookie) removes nobody.

use std::time::{Duration, Instant};

use moat_tests::peer::{Options, Peer};
use moat_tests::{Mode, Stack};

const BOB: &str = "bob@far.example";

/// The addresses on dev's member roster (`moat list members`, its table's first column).
fn members(s: &Stack) -> Vec<String> {
    s.admin(
        &["list", "members", "dev@example.test", "--kind", "member"],
        "",
    )
    .lines()
    .filter_map(|l| l.split_whitespace().next())
    .filter(|a| *a != "ADDRESS")
    .map(str::to_string)
    .collect()
}

fn post(s: &Stack, subject: &str) {
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        &format!("From: alice@example.test\r\nSubject: {subject}\r\n\r\nhello list\r\n"),
    );
}

/// Waits until the queue holds nothing (every bounce handed over was taken: `K`).
fn wait_queue_empty(s: &Stack) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.queued() > 0 {
        assert!(Instant::now() < deadline, "still queued:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where `needle` is in the log (it must be there).
fn at(s: &Stack, needle: &str) -> usize {
    s.wait_log(needle);
    s.log()
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} vanished"))
}

/// The envelope sender of the probe to `member` (from the log), checked for its form:
/// `dev-return-probe-COOKIE-user=host@example.test`, COOKIE 28 lower-case hex digits.
fn probe_sender(s: &Stack, member: &str) -> String {
    let needle = format!("probe sent to=<{member}> from=<");
    s.wait_log(&needle);
    let log = s.log();
    let start = log.find(&needle).expect("probe logged") + needle.len();
    let sender = log[start..].split('>').next().expect("sender").to_string();
    let cookie = sender
        .strip_prefix("dev-return-probe-")
        .and_then(|r| r.strip_suffix(&format!("-{}@example.test", member.replace('@', "="))))
        .unwrap_or_else(|| panic!("probe sender {sender:?}"));
    assert_eq!(cookie.len(), 28, "{sender}");
    assert!(
        cookie
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{sender}"
    );
    sender
}

#[test]
fn two_bounces_send_a_probe_whose_bounce_removes_the_member() {
    let peer = Peer::start_with(
        None,
        &Options {
            refuse: vec![BOB.into()],
            // Room to look at the roster while the probe's RCPT waits for its 550.
            refuse_delay: Some(3.0),
            ..Options::default()
        },
    );
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[lists]\nbounce_threshold = 2\n\
             [remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", BOB], "");

    // Post 1: alice gets it; bob's server refuses it, moat-remote's DSN is counted.
    post(&s, "first");
    s.wait_messages("alice@example.test", 1);
    let first = at(
        &s,
        "bounce of post 1 for <bob@far.example> (member): 1 of 2",
    );
    assert_eq!(
        peer.refused(),
        vec![(
            "dev-return-1-bob=far.example@example.test".to_string(),
            BOB.to_string()
        )]
    );
    assert!(members(&s).contains(&BOB.to_string()), "{}", s.log());

    // A vacation reply from a real sender, and a delay notice from the null sender, to the
    // same bounce address: accepted, not counted.
    s.send_smtp(
        "alice@example.test",
        "dev-return-1-bob=far.example@example.test",
        "From: alice@example.test\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n",
    );
    s.wait_log("not a bounce (not a delivery report, and not from the null sender): ignored");
    s.send_smtp("",
        "dev-return-1-bob=far.example@example.test",
        "From: MAILER-DAEMON@far.example\r\nSubject: Delayed Mail\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nstill trying\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; far.example\r\n\r\n\
         Final-Recipient: rfc822; bob@far.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n\
         --b--\r\n",
    );
    s.wait_log("not a bounce (a delivery report that fails nobody): ignored");
    assert!(!s.log().contains("2 of 2"), "{}", s.log());
    assert!(!s.log().contains("probe sent"), "{}", s.log());
    assert!(members(&s).contains(&BOB.to_string()));

    // Post 2: the second bounce reaches the threshold; a probe goes to bob, from its own
    // return address, and bob is still a member while it is on its way (its RCPT is logged by
    // the peer 3 s before the 550).
    post(&s, "second");
    s.wait_messages("alice@example.test", 2);
    let second = at(
        &s,
        "bounce of post 2 for <bob@far.example> (member): 2 of 2",
    );
    let probe = at(&s, "probe sent to=<bob@far.example> from=<");
    let probe_sender = probe_sender(&s, BOB);
    assert!(first < second && second < probe);
    let deadline = Instant::now() + Duration::from_secs(30);
    while peer.refused().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no probe at the peer:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(members(&s).contains(&BOB.to_string()), "{}", s.log());
    assert!(!s.log().contains("removed after"), "{}", s.log());
    // The probe's bounce (its RCPT refused too) removes him.
    let removed = at(
        &s,
        "<bob@far.example> (member) removed after the probe bounced",
    );
    assert!(probe < removed, "{}", s.log());
    assert_eq!(
        peer.refused(),
        vec![
            (
                "dev-return-1-bob=far.example@example.test".to_string(),
                BOB.to_string()
            ),
            (
                "dev-return-2-bob=far.example@example.test".to_string(),
                BOB.to_string()
            ),
            (probe_sender, BOB.to_string()),
        ]
    );
    assert_eq!(members(&s), vec!["alice@example.test".to_string()]);

    // Nothing returned to the bounce addresses went to the list: alice has the two posts only.
    std::thread::sleep(Duration::from_secs(1));
    let got = s.messages("alice@example.test");
    assert_eq!(got.len(), 2, "{}", s.log());
    assert!(got.iter().all(|m| m.contains("hello list")), "{got:?}");
    assert!(peer.received().is_empty());
    wait_queue_empty(&s);

    // A later post goes to alice alone: bob's server sees nothing more.
    post(&s, "third");
    s.wait_messages("alice@example.test", 3);
    s.wait_log("post 3 from=<alice@example.test> to 1 member(s)");
    assert_eq!(peer.refused().len(), 3);
}

/// A member address long enough that its VERP bounce address has a local part over 64 octets:
/// smtpd takes the RCPT, the store resolves it to the list (list command addresses may have up
/// to 255), and moat-lists counts the old-style bounce (null sender, no DSN). Digest bounces
/// count against the digest roster, bounces for strangers are ignored, and a long local part
/// that is no list command address is still refused.
#[test]
fn long_bounce_addresses_reach_the_list() {
    let s = Stack::start_configured(
        Mode::Up,
        "[lists]\nbounce_threshold = 5\ndigest_posts = 1\n",
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(
        &[
            "list",
            "create",
            "dev@example.test",
            "--archive",
            "--digest",
        ],
        "",
    );
    // Post 1 and digest 1 go out (to alice alone), so bounces of them are of mail we sent.
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(
        &[
            "list",
            "add",
            "dev@example.test",
            "alice@example.test",
            "--digest",
        ],
        "",
    );
    post(&s, "first");
    s.wait_messages("alice@example.test", 2);
    let member = format!("{}@far.example", "first.middle.last".repeat(3));
    s.admin(&["list", "add", "dev@example.test", &member], "");
    let verp = format!(
        "dev-return-1-{}@example.test",
        member.replace('@', "=").to_uppercase()
    );
    assert!(verp.split('@').next().is_some_and(|l| l.len() > 64));
    s.send_smtp(
        "",
        &verp,
        "From: MAILER-DAEMON@far.example\r\nSubject: failure notice\r\n\r\n\
         Sorry, I couldn't deliver your message.\r\n",
    );
    s.wait_log(&format!("bounce of post 1 for <{member}> (member): 1 of 5"));
    assert!(members(&s).contains(&member));

    // A digest's bounce (`return-dN-…`) counts against the digest roster; a bounce for an
    // address on no roster is taken and ignored.
    s.admin(
        &[
            "list",
            "add",
            "dev@example.test",
            "carol@far.example",
            "--digest",
        ],
        "",
    );
    let plain_bounce = "From: MAILER-DAEMON@far.example\r\nSubject: failure notice\r\n\r\nno.\r\n";
    s.send_smtp(
        "",
        "dev-return-d1-carol=far.example@example.test",
        plain_bounce,
    );
    s.wait_log("bounce of digest 1 for <carol@far.example> (digest): 1 of 5");
    s.send_smtp(
        "",
        "dev-return-1-nobody=far.example@example.test",
        plain_bounce,
    );
    s.wait_log("bounce of post 1 for <nobody@far.example>: not on the member roster: ignored");
    // Bounces of a post or digest never sent (numbers past the newest) are refused.
    s.send_smtp(
        "",
        &verp.replace("dev-return-1-", "dev-return-2-"),
        plain_bounce,
    );
    s.wait_log("refused: no post 2 was sent (newest 1)");
    s.send_smtp(
        "",
        "dev-return-d2-carol=far.example@example.test",
        plain_bounce,
    );
    s.wait_log("refused: no digest 2 was sent (newest 1)");
    assert!(!s.log().contains("2 of 5"), "{}", s.log());
    wait_queue_empty(&s);

    let script = format!(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
c.ehlo("client.example")
c.mail("")
print(c.rcpt({:?})[0])
print(c.rcpt({:?})[0])
c.quit()
"#,
        format!("{}@example.test", "x".repeat(70)),
        format!("dev-accept-{}@example.test", "x".repeat(70)),
    );
    let codes = s.python_ok(&script);
    let codes: Vec<&str> = codes.split_whitespace().collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(codes.iter().all(|c| c.starts_with('5')), "{codes:?}");
}

/// The attack of issue #7: forged null-sender mail to a member's bounce addresses. Bounces of
/// posts never sent are refused, RFC 3834 auto-replies are no bounces, and the probe's return
/// address cannot be guessed: neither its old form nor a made-up cookie removes the member, even
/// with a probe outstanding. The real probe's bounce, once older than the bounce window, is
/// ignored too, and the next bounce starts the count over.
#[test]
fn forged_bounces_remove_nobody() {
    let peer = Peer::start(None);
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[lists]\nbounce_threshold = 2\nbounce_window = \"10s\"\n\
             [remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", BOB], "");
    post(&s, "first");
    s.wait_messages("alice@example.test", 1);
    peer.wait(1, &s);

    let forged = "From: MAILER-DAEMON@far.example\r\nSubject: failure notice\r\n\r\nno.\r\n";
    let bob = "bob=far.example@example.test";
    // Post 5 and digest 1 were never sent.
    s.send_smtp("", &format!("dev-return-5-{bob}"), forged);
    s.wait_log("return-5-bob=far.example: refused: no post 5 was sent (newest 1)");
    s.send_smtp("", &format!("dev-return-d1-{bob}"), forged);
    s.wait_log("return-d1-bob=far.example: refused: no digest 1 was sent (newest 0)");
    // An auto-reply from the null sender (obsolete field syntax included) is no bounce.
    s.send_smtp(
        "",
        &format!("dev-return-1-{bob}"),
        "From: bob@far.example\r\nAuto-Submitted : auto-replied\r\nSubject: Away\r\n\r\n\
         Back on Monday.\r\n",
    );
    s.wait_log("not a bounce (an automatic message (Auto-Submitted: auto-replied), no delivery");
    assert!(!s.log().contains("bounce of post"), "{}", s.log());

    // Two forged bounces of post 1 reach the threshold: a probe goes (the peer takes it).
    for _ in 0..2 {
        s.send_smtp("", &format!("dev-return-1-{bob}"), forged);
    }
    s.wait_log("bounce of post 1 for <bob@far.example> (member): 2 of 2");
    let sender = probe_sender(&s, BOB);
    let received = peer.wait(2, &s);
    assert!(
        String::from_utf8_lossy(&received[1].1).contains("Subject: Mail from dev@example.test"),
        "{received:?}"
    );

    // The probe address without its cookie, or with a made-up one: bob stays.
    s.send_smtp("", &format!("dev-return-probe-{bob}"), forged);
    s.wait_log("return-probe-bob=far.example from=<>: not a bounce address of ours: ignored");
    let fake = format!("dev-return-probe-{}-{bob}", "0".repeat(28));
    assert_ne!(fake, sender);
    s.send_smtp("", &fake, forged);
    s.wait_log("probe bounce for <bob@far.example>: refused: cookie does not match");
    wait_queue_empty(&s);
    assert!(members(&s).contains(&BOB.to_string()), "{}", s.log());
    assert!(!s.log().contains("removed after"), "{}", s.log());

    // The real probe's bounce, after the window: ignored (bob read the probe meanwhile).
    std::thread::sleep(Duration::from_secs(11));
    s.send_smtp("", &sender, forged);
    s.wait_log("probe bounce for <bob@far.example>: the probe is older than the bounce window");
    wait_queue_empty(&s);
    assert!(members(&s).contains(&BOB.to_string()), "{}", s.log());
    // The next bounce starts over.
    s.send_smtp("", &format!("dev-return-1-{bob}"), forged);
    s.wait_log("<bob@far.example>: earlier bounces (2) forgotten");
    let once = "bounce of post 1 for <bob@far.example> (member): 1 of 2";
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.log().matches(once).count() < 2 {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!s.log().contains("removed after"), "{}", s.log());
}
