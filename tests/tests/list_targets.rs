//! Mailing-list addresses end to end: a list made with `moat list create` owns its address and
//! its command addresses, which the MX now accepts and moat-local hands to moat-lists (a
//! message to a bounce address `list-return-…` that is no bounce is taken and ignored), other
//! addresses of the domain are unaffected, and a non-command `list-xyz` still reaches the
//! catch-all. (What moat-lists does with the rest: tests/tests/lists.rs.)

use moat_tests::Stack;

#[test]
fn list_mail_reaches_the_list_manager() {
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
    s.wait_log("(return-3-bob=x.example): not a bounce");
    s.wait_log("list=<dev@example.test> (subscribe): subscribe confirmation request sent");
    s.wait_log("list=<dev@example.test> (post): no members");
    // Only the confirmation request waits for sender.example (no DNS in tests).
    s.wait_queued(1);
}
