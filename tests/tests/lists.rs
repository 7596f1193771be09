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
