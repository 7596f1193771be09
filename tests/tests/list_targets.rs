//! Mailing-list addresses end to end: a list made with `moat list create` owns its address and
//! its command addresses, which the MX now accepts and moat-local hands to moat-lists; commands
//! moat-lists does not handle yet (bounces to `list-return-…`) stay in the queue (nothing is
//! lost), other addresses of the domain are unaffected, and a non-command `list-xyz` still
//! reaches the catch-all. (What moat-lists does with the rest: tests/tests/lists.rs.)

use moat_tests::Stack;

#[test]
fn list_mail_reaches_the_list_manager_and_unhandled_commands_wait() {
    let s = Stack::start();
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(
        &["catchall", "set", "example.test", "alice@example.test"],
        "",
    );
    let out = s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
c.ehlo("sender.example")
c.mail("someone@sender.example")
for rcpt in ("dev@example.test", "dev-subscribe@example.test", "dev-return-3-bob=x.example@example.test"):
    code, msg = c.rcpt(rcpt); assert code == 250, (rcpt, code, msg)
code, msg = c.rcpt("dev-bogus@example.test"); assert code == 250, (code, msg)
code, msg = c.data(b"From: someone@sender.example\r\nSubject: list test\r\n\r\nbody\r\n"); assert code == 250, (code, msg)
c.quit()
print("ok")
"#,
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let alice = s.wait_messages("alice@example.test", 1);
    assert!(alice[0].contains("Subject: list test"), "{}", alice[0]);
    s.wait_log("(return-3-bob=x.example): 4.3.0 list command not handled yet");
    s.wait_log("list=<dev@example.test> (subscribe): subscribe confirmation request sent");
    s.wait_log("list=<dev@example.test> (post): no members");
    // The bounce address is deferred, not dropped: the message is still queued, beside the
    // confirmation request waiting for sender.example (no DNS in tests).
    assert_eq!(s.queued(), 2, "{}", s.log());
}
