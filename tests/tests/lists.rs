//! moat-lists end to end, by mail only, on a real stack: `list-help` answers the sender with
//! the help text (List-Id, Auto-Submitted), and machine-sent requests (Auto-Submitted,
//! Precedence: bulk, the null sender) are accepted and not answered.

use moat_tests::Stack;

fn stack() -> Stack {
    let s = Stack::start();
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("bob@example.test", "bob-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s
}

/// Sends one message to `rcpt` from `sender` with `headers` over SMTP (port 25).
fn send(s: &Stack, sender: &str, rcpt: &str, headers: &str) {
    let script = format!(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
c.sendmail({sender:?}, [{rcpt:?}], {headers:?}.encode() + b"\r\nplease\r\n")
c.quit()
"#
    );
    let out = s.python(&script);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
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
    assert_eq!(s.queued(), 0, "{}", s.log());
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

#[test]
fn subscribe_by_mail_then_a_post_reaches_every_member() {
    let s = stack();
    s.add_user("carol@example.test", "carol-secret");
    s.add_user("dave@example.test", "dave-secret");
    s.admin(&["list", "add", "dev@example.test", "bob@example.test"], "");
    s.admin(
        &["list", "add", "dev@example.test", "carol@example.test"],
        "",
    );
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

    // A post from a member: every member gets one copy, with the list's headers, the prefix,
    // and its own VERP Return-Path naming post 1.
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
        for header in [
            "Subject: [dev] hello list",
            "List-Id: <dev.example.test>",
            "List-Help: <mailto:dev-help@example.test>",
            "List-Subscribe: <mailto:dev-subscribe@example.test>",
            "List-Unsubscribe: <mailto:dev-unsubscribe@example.test>",
            "List-Post: <mailto:dev@example.test>",
            "List-Owner: <mailto:dev-owner@example.test>",
            "Precedence: list",
        ] {
            assert!(post.contains(header), "{member}: no {header:?} in\n{post}");
        }
        assert!(!post.contains("first-class"), "{post}");
    }

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

#[test]
fn twenty_subscribe_requests_get_one_confirmation() {
    let s = stack();
    let out = s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
for i in range(20):
    c.sendmail("bob@example.test", ["dev-subscribe@example.test"],
               b"From: bob@example.test\r\nSubject: sub %d\r\n\r\nplease\r\n" % i)
c.quit()
"#,
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    s.wait_messages("bob@example.test", 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.log().matches("confirmation not sent (one per").count() < 19 {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.messages("bob@example.test").len(), 1, "{}", s.log());
}
