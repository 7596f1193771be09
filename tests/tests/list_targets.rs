//! Mailing-list addresses end to end, before the list manager exists: a list made with
//! `moat list create` owns its address and its command addresses, which the MX answers with a
//! temporary failure (the sender keeps the mail) and moat-local logs; other addresses of the
//! domain are unaffected, and a non-command `list-xyz` still reaches the catch-all.

use moat_tests::Stack;

#[test]
fn list_mail_is_deferred_until_the_list_manager_runs() {
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
    code, msg = c.rcpt(rcpt); assert code == 451 and b"4.3.0" in msg, (rcpt, code, msg)
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
    s.wait_log("list manager not running");
    assert!(
        s.log()
            .contains("mailing list <dev@example.test> (subscribe)"),
        "{}",
        s.log()
    );
}
