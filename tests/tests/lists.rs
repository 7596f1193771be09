//! moat-lists end to end, by mail only, on a real stack: `list-help` answers the sender with
//! the help text (List-Id, Auto-Submitted), and machine-sent requests (Auto-Submitted,
//! Precedence: bulk, the null sender) are accepted and not answered. Subscribing and
//! unsubscribing by mail with confirmation; a post reaches local members and a remote one (the
//! aiosmtpd loopback peer) with the list's headers and each its VERP sender; forged and expired
//! cookies and a flood of requests; posts from the list itself, machine-sent and oversized posts
//! are not distributed.

use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};

fn setup(s: &Stack) {
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("bob@example.test", "bob-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
}

fn stack() -> Stack {
    let s = Stack::start();
    setup(&s);
    s
}

/// A stack whose mail for `far.example` goes to a loopback aiosmtpd peer.
fn stack_with_peer() -> (Peer, Stack) {
    let peer = Peer::start(None);
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    setup(&s);
    (peer, s)
}

/// Sends one message to `rcpt` from `sender` with `headers` over SMTP (port 25).
fn send(s: &Stack, sender: &str, rcpt: &str, headers: &str) {
    s.send_smtp(sender, rcpt, &format!("{headers}\r\nplease\r\n"));
}

#[test]
fn help_is_answered_to_the_sender() {
    let s = stack();
    send(
        &s,
        "alice@example.test",
        "dev-help@example.test",
        "From: alice@example.test\r\nSubject: help\r\n",
    );
    let got = s.wait_messages("alice@example.test", 1);
    let m = &got[0];
    assert!(m.contains("From: dev-help@example.test"), "{m}");
    assert!(m.contains("Subject: Help for dev@example.test"), "{m}");
    assert!(m.contains("List-Id: <dev.example.test>"), "{m}");
    assert!(m.contains("Auto-Submitted: auto-replied"), "{m}");
    assert!(m.contains("<dev-subscribe@example.test>"), "{m}");
    assert!(
        m.starts_with("Return-Path: <dev-return@example.test>"),
        "{m}"
    );
}

#[test]
fn machine_mail_to_help_is_not_answered() {
    let s = stack();
    send(
        &s,
        "bob@example.test",
        "dev-help@example.test",
        "From: bob@example.test\r\nAuto-Submitted: auto-replied\r\nSubject: re\r\n",
    );
    send(
        &s,
        "bob@example.test",
        "dev-help@example.test",
        "From: bob@example.test\r\nPrecedence: bulk\r\nSubject: re\r\n",
    );
    send(
        &s,
        "",
        "dev-help@example.test",
        "From: MAILER-DAEMON@far.example\r\nSubject: bounce\r\n",
    );
    s.wait_log("not answered (Auto-Submitted: auto-replied)");
    s.wait_log("not answered (Precedence: bulk)");
    s.wait_log("help from <>: not answered");
    // A later human request is answered, so the ones above had their chance first.
    send(
        &s,
        "bob@example.test",
        "dev-help@example.test",
        "From: bob@example.test\r\nSubject: help\r\n",
    );
    s.wait_messages("bob@example.test", 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.messages("bob@example.test").len(), 1, "{}", s.log());
    s.wait_queued(0);
}

/// The Reply-To of the newest message in `address`'s Maildir that has one.
fn reply_to(s: &Stack, address: &str) -> String {
    s.messages(address)
        .iter()
        .rev()
        .find_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Reply-To: ").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| panic!("no Reply-To in {address}'s mail:\n{}", s.log()))
}

fn members(s: &Stack) -> String {
    s.admin(&["list", "members", "dev@example.test"], "")
}

/// The header of a message (up to the empty line), unfolded.
fn head(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    let end = message.find("\n\n").unwrap_or(message.len());
    message[..end].replace("\n ", " ").replace("\n\t", " ")
}

/// The list's RFC 2369/2919 fields every post carries (no `web_url`: mailto only).
const LIST_FIELDS: [&str; 7] = [
    "List-Id: <dev.example.test>",
    "List-Help: <mailto:dev-help@example.test>",
    "List-Subscribe: <mailto:dev-subscribe@example.test>",
    "List-Unsubscribe: <mailto:dev-unsubscribe@example.test>",
    "List-Post: <mailto:dev@example.test>",
    "List-Owner: <mailto:dev-owner@example.test>",
    "Precedence: list",
];

#[test]
fn subscribe_by_mail_then_a_post_reaches_every_member() {
    let (peer, s) = stack_with_peer();
    s.add_user("carol@example.test", "carol-secret");
    s.add_user("dave@example.test", "dave-secret");
    s.admin(&["list", "add", "dev@example.test", "bob@example.test"], "");
    s.admin(
        &["list", "add", "dev@example.test", "carol@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", "erin@far.example"], "");
    s.admin(
        &[
            "list",
            "set",
            "dev@example.test",
            "--subject-prefix",
            "[dev]",
            "--members-only",
            "true",
        ],
        "",
    );

    // alice asks, gets the confirmation request, replies to its Reply-To, gets the welcome.
    send(
        &s,
        "alice@example.test",
        "dev-subscribe@example.test",
        "From: alice@example.test\r\nSubject: subscribe\r\n",
    );
    let got = s.wait_messages("alice@example.test", 1);
    assert!(
        got[0].contains("Subject: confirm subscribe to dev@example.test"),
        "{}",
        got[0]
    );
    let confirm = reply_to(&s, "alice@example.test");
    assert!(
        confirm.starts_with("dev-sc.") && confirm.ends_with("-alice=example.test@example.test"),
        "{confirm}"
    );
    assert!(!members(&s).contains("alice@example.test"));
    send(
        &s,
        "alice@example.test",
        &confirm,
        "From: alice@example.test\r\nSubject: Re: confirm\r\n",
    );
    let got = s.wait_messages("alice@example.test", 2);
    assert!(
        got.iter()
            .any(|m| m.contains("Subject: welcome to dev@example.test"))
    );
    assert!(
        members(&s).contains("alice@example.test"),
        "{}",
        members(&s)
    );

    // A post from a member: every member, three local and one remote, gets one copy, with the
    // list's headers, the prefix, and its own VERP Return-Path naming post 1.
    send(
        &s,
        "bob@example.test",
        "dev@example.test",
        "From: bob@example.test\r\nSubject: hello list\r\nPrecedence: first-class\r\n",
    );
    for member in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ] {
        let n = if member.starts_with("alice") { 3 } else { 1 };
        let got = s.wait_messages(member, n);
        let post = got
            .iter()
            .find(|m| m.contains("hello list"))
            .unwrap_or_else(|| panic!("{member} has no post:\n{}", s.log()));
        let verp = member.replace('@', "=");
        assert!(
            post.starts_with(&format!("Return-Path: <dev-return-1-{verp}@example.test>")),
            "{post}"
        );
        let fields = head(post);
        for header in LIST_FIELDS.iter().chain(&["Subject: [dev] hello list"]) {
            assert!(
                fields.lines().any(|l| l == *header),
                "{member}: no {header:?} in\n{post}"
            );
        }
        assert!(!post.contains("first-class"), "{post}");
    }
    // The remote member's copy, as the peer saw it: the VERP sender in MAIL FROM, erin alone
    // as the recipient, the same list fields, and no one-click field without a web_url.
    let got = peer.wait(1, &s);
    let (envelope, bytes) = &got[0];
    assert_eq!(
        envelope,
        &[
            "dev-return-1-erin=far.example@example.test".to_string(),
            "erin@far.example".to_string()
        ],
        "{}",
        s.log()
    );
    let remote = String::from_utf8_lossy(bytes).into_owned();
    let fields = head(&remote);
    for header in LIST_FIELDS.iter().chain(&["Subject: [dev] hello list"]) {
        assert!(
            fields.lines().any(|l| l == *header),
            "erin: no {header:?} in\n{remote}"
        );
    }
    for name in ["List-Unsubscribe:", "List-Id:", "Precedence:"] {
        assert_eq!(fields.matches(name).count(), 1, "{remote}");
    }
    assert!(!fields.contains("List-Unsubscribe-Post"), "{remote}");
    assert!(!remote.contains("first-class"), "{remote}");
    assert!(remote.contains("please"), "{remote}");
    // RFC 1870: the SIZE announced in MAIL FROM covers the copy.
    let options = peer.mail_options(1);
    let size: usize = options
        .split_whitespace()
        .find_map(|o| o.strip_prefix("SIZE="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no SIZE in MAIL FROM: {options:?}"));
    assert!(size >= bytes.len(), "{options} for {} bytes", bytes.len());

    // A reply keeps one prefix; an auto-reply and a non-member's post are not distributed.
    send(
        &s,
        "carol@example.test",
        "dev@example.test",
        "From: carol@example.test\r\nSubject: Re: [dev] hello list\r\n",
    );
    send(
        &s,
        "carol@example.test",
        "dev@example.test",
        "From: carol@example.test\r\nAuto-Submitted: auto-replied\r\nSubject: away\r\n",
    );
    send(
        &s,
        "dave@example.test",
        "dev@example.test",
        "From: dave@example.test\r\nSubject: spam from outside\r\n",
    );
    s.wait_log("post from=<carol@example.test>: dropped (Auto-Submitted: auto-replied)");
    s.wait_log("post from=<dave@example.test>: refused: not a member");
    let got = s.wait_messages("bob@example.test", 2);
    assert!(
        got.iter()
            .any(|m| m.contains("Subject: Re: [dev] hello list\r\n")
                || m.contains("Subject: Re: [dev] hello list\n")),
        "{got:?}"
    );
    let got = peer.wait(2, &s);
    assert_eq!(got[1].0[0], "dev-return-2-erin=far.example@example.test");
    assert!(
        head(&String::from_utf8_lossy(&got[1].1))
            .lines()
            .any(|l| l == "Subject: Re: [dev] hello list"),
        "{}",
        String::from_utf8_lossy(&got[1].1)
    );
    // dave gets the bounce, nobody gets his post or the auto-reply.
    let bounce = s.wait_messages("dave@example.test", 1);
    assert!(bounce[0].contains("only members may post"), "{}", bounce[0]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    for member in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ] {
        for m in s.messages(member) {
            assert!(
                !m.contains("spam from outside") && !m.contains("Subject: away"),
                "{m}"
            );
        }
    }
    assert_eq!(peer.received().len(), 2, "{}", s.log());
}

#[test]
fn forged_and_expired_cookies_subscribe_nobody() {
    let s = stack();
    let db = s.data.join("db/users.db");
    // A forged cookie, and one with a correct MAC whose expiry has passed (made with the
    // list's secret, read from the store as only this test may).
    let out = s.python(&format!(
        r#"
import hmac, hashlib, os, smtplib, sqlite3, time
secret = sqlite3.connect({db:?}).execute("SELECT cookie_secret FROM lists").fetchone()[0]
key = bytes.fromhex(secret if isinstance(secret, str) else secret.decode())
addr = "bob@example.test"
expiry = "%08x" % (int(time.time()) - 60)
mac = hmac.new(key, b"sc\0" + addr.encode() + b"\0" + expiry.encode(), hashlib.sha256).digest()[:10].hex()
forged = "0" * 28
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
for cookie in (forged, expiry + mac):
    c.sendmail("bob@example.test", ["dev-sc.%s-bob=example.test@example.test" % cookie],
               b"From: bob@example.test\r\nSubject: confirm\r\n\r\nyes\r\n")
c.quit()
"#,
        db = db.display().to_string()
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    s.wait_log("refused: cookie does not match");
    s.wait_log("refused: cookie expired");
    assert!(!members(&s).contains("bob@example.test"), "{}", members(&s));
    assert!(s.messages("bob@example.test").is_empty());
}

/// The issue's figure: a hundred requests in a minute in bob's name make one confirmation mail.
#[test]
fn a_hundred_subscribe_requests_get_one_confirmation() {
    let s = stack();
    let elapsed = s.python_ok(
        r#"
import os, smtplib, time
start = time.monotonic()
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
for i in range(100):
    c.sendmail("bob@example.test", ["dev-subscribe@example.test"],
               b"From: bob@example.test\r\nSubject: sub %d\r\n\r\nplease\r\n" % i)
c.quit()
print(time.monotonic() - start)
"#,
    );
    let elapsed: f64 = elapsed.trim().parse().expect("seconds");
    assert!(elapsed < 60.0, "the requests took {elapsed} s");
    s.wait_messages("bob@example.test", 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.log().matches("confirmation not sent (one per").count() < 99 {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.messages("bob@example.test").len(), 1, "{}", s.log());
    assert_eq!(
        s.log()
            .matches("subscribe confirmation request sent to=<bob@example.test>")
            .count(),
        1,
        "{}",
        s.log()
    );
    assert!(!members(&s).contains("bob@example.test"));
}

#[test]
fn unsubscribe_by_mail_then_posts_stop() {
    let s = stack();
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", "bob@example.test"], "");

    // bob asks to leave, gets the confirmation request; until he confirms he stays.
    send(
        &s,
        "bob@example.test",
        "dev-unsubscribe@example.test",
        "From: bob@example.test\r\nSubject: unsubscribe\r\n",
    );
    let got = s.wait_messages("bob@example.test", 1);
    let request = head(&got[0]);
    assert!(
        request
            .lines()
            .any(|l| l == "Subject: confirm unsubscribe from dev@example.test"),
        "{}",
        got[0]
    );
    assert!(
        request.lines().any(|l| l == "From: dev-help@example.test"),
        "{}",
        got[0]
    );
    let confirm = reply_to(&s, "bob@example.test");
    assert!(
        confirm.starts_with("dev-uc.") && confirm.ends_with("-bob=example.test@example.test"),
        "{confirm}"
    );
    assert!(got[0].contains(&format!("<{confirm}>")), "{}", got[0]);
    assert!(members(&s).contains("bob@example.test"));

    // The reply to the Reply-To removes him, and he gets the goodbye.
    send(
        &s,
        "bob@example.test",
        &confirm,
        "From: bob@example.test\r\nSubject: Re: confirm\r\n",
    );
    let got = s.wait_messages("bob@example.test", 2);
    assert!(
        got.iter().any(|m| head(m)
            .lines()
            .any(|l| l == "Subject: goodbye from dev@example.test")),
        "{got:?}"
    );
    s.wait_log(
        "list=<dev@example.test> <bob@example.test> unsubscribed (confirmed by <bob@example.test>)",
    );
    let list = members(&s);
    assert!(!list.contains("bob@example.test"), "{list}");
    assert!(list.contains("alice@example.test"), "{list}");

    // A later post reaches alice and not bob.
    send(
        &s,
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nSubject: after bob left\r\n",
    );
    let got = s.wait_messages("alice@example.test", 1);
    assert!(got[0].contains("after bob left"), "{}", got[0]);
    s.wait_log("post 1 from=<alice@example.test> to 1 member(s)");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let bob = s.messages("bob@example.test");
    assert_eq!(bob.len(), 2, "{bob:?}");
    assert!(bob.iter().all(|m| !m.contains("after bob left")), "{bob:?}");
}

/// Mail from the list's own addresses (a loop), machine-sent mail and a post over the list's
/// size limit reach no member; only the oversized one is bounced, naming the limit.
#[test]
fn loops_machine_mail_and_oversized_posts_are_not_distributed() {
    let s = stack();
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", "bob@example.test"], "");
    s.admin(
        &["list", "set", "dev@example.test", "--max-size", "2000"],
        "",
    );
    assert!(
        s.admin(&["list", "show", "dev@example.test"], "")
            .contains("2000"),
        "the limit is shown"
    );

    send(
        &s,
        "dev@example.test",
        "dev@example.test",
        "From: dev@example.test\r\nSubject: loop one\r\n",
    );
    send(
        &s,
        "dev-help@example.test",
        "dev@example.test",
        "From: dev-help@example.test\r\nSubject: loop two\r\n",
    );
    send(
        &s,
        "bob@example.test",
        "dev@example.test",
        "From: bob@example.test\r\nAuto-Submitted: auto-generated\r\nSubject: machine\r\n",
    );
    let line = format!("{}\r\n", "x".repeat(70));
    s.send_smtp(
        "bob@example.test",
        "dev@example.test",
        &format!(
            "From: bob@example.test\r\nSubject: big one\r\n\r\n{}",
            line.repeat(50)
        ),
    );
    s.wait_log("post from=<dev@example.test>: dropped (from the list's own address: a loop)");
    s.wait_log("post from=<dev-help@example.test>: dropped (from the list's own address: a loop)");
    s.wait_log("post from=<bob@example.test>: dropped (Auto-Submitted: auto-generated)");
    s.wait_log("the list takes 2000");

    // bob is told why his big post went nowhere.
    let got = s.wait_messages("bob@example.test", 1);
    let dsn = &got[0];
    assert!(dsn.starts_with("Return-Path: <>"), "{dsn}");
    assert!(
        dsn.contains("message too big for the list (at most 2000 bytes)"),
        "{dsn}"
    );

    // A small post afterwards reaches both: the ones above had their turn and went nowhere.
    send(
        &s,
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nSubject: small one\r\n",
    );
    s.wait_messages("alice@example.test", 1);
    s.wait_messages("bob@example.test", 2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let alice = s.messages("alice@example.test");
    assert_eq!(alice.len(), 1, "{alice:?}\n{}", s.log());
    assert!(alice[0].contains("Subject: small one"), "{}", alice[0]);
    let bob = s.messages("bob@example.test");
    assert_eq!(bob.len(), 2, "{bob:?}\n{}", s.log());
    assert_eq!(
        bob.iter()
            .filter(|m| m.contains("List-Id: <dev.example.test>"))
            .count(),
        1,
        "{bob:?}"
    );
    for m in alice.iter().chain(&bob) {
        assert!(
            !m.contains("loop one") && !m.contains("loop two") && !m.contains("Subject: machine"),
            "{m}"
        );
    }
    // The post number was not spent on anything refused or dropped.
    s.wait_log("post 1 from=<alice@example.test> to 2 member(s)");
    s.wait_queued(0);
}
