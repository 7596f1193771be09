//! RFC 3461 DSN parameters end to end: smtpd → queue (`D` record, `env/<id>` lines) → bounce.
//! The failing recipient is refused with 550 by an aiosmtpd peer (`tests/peers/smtp_peer.py`,
//! Debian python3-aiosmtpd) reached through a static route.

use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};

/// Submits as alice on port 587 (STARTTLS + AUTH) with these MAIL and RCPT parameters.
fn submit(s: &Stack, to: &str, mail_options: &[&str], rcpt_options: &[&str], message: &[u8]) {
    let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", [{to:?}], bytes.fromhex("{hex}"),
               mail_options={mail_options:?}, rcpt_options={rcpt_options:?})
"#
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

#[test]
fn notify_never_is_silent_and_failure_reports_carry_envid_orcpt_and_the_full_message() {
    let peer = Peer::start(None);
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[queue]\nretry_min = \"1s\"\n[remote]\nnameserver = \"127.0.0.1:9\"\n\
             timeout_connect_secs = 3\ntimeout_command_secs = 3\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");

    // NOTIFY=NEVER: the 550 is final, and no bounce is sent.
    submit(
        &s,
        "perm1@far.example",
        &["ENVID=silent-one"],
        &["NOTIFY=NEVER"],
        b"From: alice@example.test\r\nSubject: quiet\r\n\r\nshh\r\n",
    );
    s.wait_log("to=<perm1@far.example> failed: 5.1.1");
    s.wait_log("1 failed recipient(s) asked for no failure notice (NOTIFY)");

    // NOTIFY=FAILURE, ORCPT, ENVID, RET=FULL: the bounce carries all of them.
    submit(
        &s,
        "perm2@far.example",
        &["RET=FULL", "ENVID=QQ+2B314159"],
        &["NOTIFY=FAILURE", "ORCPT=rfc822;orig+2Bx@example.test"],
        b"From: alice@example.test\r\nSubject: loud\r\n\r\nthe whole body line\r\n",
    );
    let bounces = s.wait_messages("alice@example.test", 1);
    let b = &bounces[0];
    assert!(
        b.contains("\r\nOriginal-Envelope-Id: QQ+2B314159\r\n"),
        "{b}"
    );
    assert!(
        b.contains("\r\nOriginal-Recipient: rfc822; orig+x@example.test\r\nFinal-Recipient: rfc822; perm2@far.example\r\n"),
        "{b}"
    );
    assert!(b.contains("Content-Type: message/rfc822\r\n"), "{b}");
    // The whole message (submission added Date and Message-ID after the Subject).
    assert!(b.contains("\r\nSubject: loud\r\n"), "{b}");
    assert!(b.contains("\r\n\r\nthe whole body line\r\n"), "{b}");
    assert!(!b.contains("silent-one"), "{b}");
    assert_eq!(
        s.messages("alice@example.test").len(),
        1,
        "only the NOTIFY=FAILURE message bounced"
    );
}
