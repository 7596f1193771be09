//! After AUTH, MAIL FROM must be owned by the login (`[submission] sender_login_match`, on by
//! default): real clients (Python's smtplib with STARTTLS and AUTH) on the submission port.
//! The login, its sub-addresses and aliases that deliver to it are accepted; someone else's
//! address, an external one, the null sender and a catch-all's addresses get 553 5.7.1.

use moat_tests::{Mode, Stack};

/// example.test: alice, bob, and info@ (an alias of alice); other.test: a catch-all to alice.
fn stack(extra: &str) -> Stack {
    let s = Stack::start_configured(Mode::Up, extra);
    s.add_domain("example.test");
    s.add_domain("other.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("bob@example.test", "bob-secret");
    s.admin(
        &["alias", "add", "info@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["catchall", "set", "other.test", "alice@example.test"], "");
    s
}

/// Logs in as alice on the submission port and tries each sender in one session, sending to
/// bob@example.test with the sender in the Subject: each output line is `sender code text`.
fn try_senders(s: &Stack, senders: &[&str]) -> Vec<(String, u16, String)> {
    let script = format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    for sender in {senders:?}:
        try:
            c.sendmail(sender, ["bob@example.test"],
                ("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: as [%s]\r\n\r\nhi\r\n" % sender).encode())
            print("%s|250|sent" % sender)
        except smtplib.SMTPSenderRefused as e:
            print("%s|%d|%s" % (sender, e.smtp_code, e.smtp_error.decode()))
            c.rset()
"#
    );
    s.python_ok(&script)
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let sender = parts.next().unwrap_or("").to_string();
            let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            (sender, code, parts.next().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn a_user_sends_only_as_addresses_it_owns() {
    let s = stack("");
    let senders = [
        "alice@example.test",
        "Alice+Lists@example.test",
        "info@example.test",
        "bob@example.test",
        "someone@far.example",
        "",
        "whoever@other.test",
    ];
    let got = try_senders(&s, &senders);
    assert_eq!(got.len(), senders.len(), "{got:?}\n{}", s.log());
    for (sender, code, text) in &got[..3] {
        assert_eq!(*code, 250, "{sender} is alice's: {text}\n{}", s.log());
    }
    for (sender, code, text) in &got[3..] {
        assert_eq!(*code, 553, "{sender} is not alice's: {text}\n{}", s.log());
        assert_eq!(
            *text,
            format!("5.7.1 <{sender}>: sender address not owned by user alice@example.test"),
        );
    }
    // The three accepted ones arrive, with their envelope senders.
    let bob = s.wait_messages("bob@example.test", 3);
    for sender in [
        "alice@example.test",
        "Alice+Lists@example.test",
        "info@example.test",
    ] {
        assert!(
            bob.iter()
                .any(|m| m.contains(&format!("Subject: as [{sender}]"))
                    && m.contains(&format!("Return-Path: <{sender}>"))),
            "{sender}: {bob:?}"
        );
    }
    s.wait_log(
        "reject MAIL FROM <bob@example.test> from [127.0.0.1] user=alice@example.test session=",
    );
    s.wait_log("reject MAIL FROM <> from [127.0.0.1] user=alice@example.test session=");

    // Port 25 (no login) is unchanged: any sender, local recipients.
    s.python_ok(
        r#"
import os, smtplib
with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30) as c:
    c.sendmail("bob@example.test", ["alice@example.test"],
        b"From: bob@example.test\r\nSubject: port 25\r\n\r\nhi\r\n")
"#,
    );
    let alice = s.wait_messages("alice@example.test", 1);
    assert!(alice[0].contains("Subject: port 25"), "{alice:?}");
    // Nothing refused was queued.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.messages("bob@example.test").len(), 3);
}

#[test]
fn the_check_can_be_turned_off_for_a_migration() {
    let s = stack("[submission]\nsender_login_match = false\n");
    let got = try_senders(&s, &["bob@example.test"]);
    assert_eq!(
        got,
        vec![("bob@example.test".to_string(), 250, "sent".to_string())],
        "{}",
        s.log()
    );
    let bob = s.wait_messages("bob@example.test", 1);
    assert!(
        bob[0].contains("Return-Path: <bob@example.test>"),
        "{bob:?}"
    );
}
