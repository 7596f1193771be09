//! Mail in, end to end: real SMTP clients (Python's smtplib, swaks, lettre) talk to a stack
//! started with `moat up`, and the mail must land in the right Maildirs — or be refused.

use std::process::Command;

use moat_tests::Stack;

fn stack_with_users() -> Stack {
    let s = Stack::start();
    s.add_domain("example.test");
    for u in ["alice", "bob", "carol", "dave"] {
        s.add_user(&format!("{u}@example.test"), &format!("{u}-secret"));
    }
    s.admin(
        &[
            "alias",
            "add",
            "team@example.test",
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
        ],
        "",
    );
    s
}

#[test]
fn smtplib_submission_with_starttls_and_auth() {
    let s = stack_with_users();
    let out = s.python(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.ehlo("client.example")
    assert not c.has_extn("auth"), "AUTH must not be offered before STARTTLS"
    c.starttls(context=ctx)
    c.ehlo("client.example")
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", ["bob@example.test", "team@example.test"],
        b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hello via smtplib\r\n\r\nHi Bob.\r\n")
print("sent")
"#,
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let bob = s.wait_messages("bob@example.test", 1);
    assert!(bob[0].contains("Subject: hello via smtplib"), "{}", bob[0]);
    assert!(
        bob[0].starts_with("Return-Path: <alice@example.test>"),
        "{}",
        bob[0]
    );
    assert!(
        bob[0].contains("Delivered-To: bob@example.test"),
        "{}",
        bob[0]
    );
    assert!(bob[0].contains("Received: "), "{}", bob[0]);
    assert!(
        bob[0].contains("Message-ID:") || bob[0].contains("Message-Id:"),
        "submission adds Message-ID: {}",
        bob[0]
    );
    assert!(
        bob[0].contains("\r\nDate: "),
        "submission adds Date: {}",
        bob[0]
    );
    // The alias reached its three members; bob only once per message it was addressed by.
    s.wait_messages("alice@example.test", 1);
    s.wait_messages("carol@example.test", 1);
    assert_eq!(s.messages("dave@example.test").len(), 0);
}

#[test]
fn mx_port_takes_local_mail_refuses_unknown_and_relaying() {
    let s = stack_with_users();
    s.admin(
        &["catchall", "set", "example.test", "dave@example.test"],
        "",
    );
    s.add_domain("strict.test");
    s.add_user("erin@strict.test", "erin-secret");
    let out = s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
c.ehlo("sender.example")
c.mail("someone@sender.example")
code, msg = c.rcpt("nobody@strict.test"); assert code == 550, (code, msg)
code, msg = c.rcpt("victim@elsewhere.example"); assert code in (550, 554), ("relay must be refused", code, msg)
code, msg = c.rcpt("../../x@example.test"); assert 500 <= code < 600, (code, msg)
code, msg = c.rcpt("alice+news@example.test"); assert code == 250, (code, msg)
code, msg = c.rcpt("whoever@example.test"); assert code == 250, (code, msg)
code, msg = c.rcpt("erin@strict.test"); assert code == 250, (code, msg)
code, msg = c.data(b"From: someone@sender.example\r\nSubject: mx test\r\n\r\nbody\r\n"); assert code == 250, (code, msg)
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
    assert!(
        alice[0].contains("Delivered-To: alice@example.test")
            || alice[0].contains("Delivered-To: alice+news@example.test"),
        "{}",
        alice[0]
    );
    let dave = s.wait_messages("dave@example.test", 1);
    assert!(dave[0].contains("Subject: mx test"));
    s.wait_messages("erin@strict.test", 1);
    // Nothing for the refused relay recipient ever entered the queue.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.queued(), 0, "{}", s.log());
    assert!(
        !s.log().contains("elsewhere.example") || !s.log().contains("queued"),
        "{}",
        s.log()
    );
}

#[test]
fn swaks_over_implicit_tls_and_starttls() {
    if Command::new("swaks").arg("--version").output().is_err() {
        panic!("swaks is not installed (.ci/run installs it: apt-get install swaks)");
    }
    let s = stack_with_users();
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &s.submissions.to_string(),
            "--tlsc",
        ])
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "carol@example.test",
            "--auth-password",
            "carol-secret",
        ])
        .args(["--from", "carol@example.test", "--to", "dave@example.test"])
        .args([
            "--header",
            "Subject: swaks over TLS",
            "--body",
            "from swaks",
        ])
        .output()
        .expect("swaks");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        s.log()
    );
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &s.submission.to_string(),
            "--tls",
        ])
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            "carol@example.test",
            "--auth-password",
            "wrong",
        ])
        .args(["--from", "carol@example.test", "--to", "dave@example.test"])
        .output()
        .expect("swaks");
    assert!(!out.status.success(), "a wrong password must fail");
    let dave = s.wait_messages("dave@example.test", 1);
    assert!(dave[0].contains("Subject: swaks over TLS"));
    assert!(dave[0].contains("from swaks"));
}

#[test]
fn lettre_submission() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{Message, SmtpTransport, Transport};
    let s = stack_with_users();
    let tls = TlsParameters::builder("localhost".to_string())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .expect("tls params");
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(s.submission)
        .tls(Tls::Required(tls))
        .credentials(Credentials::new(
            "dave@example.test".into(),
            "dave-secret".into(),
        ))
        .build();
    let email = Message::builder()
        .from("dave@example.test".parse().expect("from"))
        .to("alice@example.test".parse().expect("to"))
        .subject("via lettre")
        .body("Hello from lettre".to_string())
        .expect("message");
    mailer
        .send(&email)
        .unwrap_or_else(|e| panic!("lettre: {e}\n{}", s.log()));
    let alice = s.wait_messages("alice@example.test", 1);
    assert!(alice[0].contains("Subject: via lettre"));
}
