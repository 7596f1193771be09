//! STARTTLS (RFC 3207) and AUTH (RFC 4954) through a session.

mod proto_harness;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use moat_smtp::proto::{AuthVerdict, Phase, SessionConfig};
use proto_harness::{Harness, ce, config};

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn plain(authz: &str, user: &str, pass: &str) -> String {
    b64(&format!("{authz}\0{user}\0{pass}"))
}

/// A submission session after STARTTLS and a fresh EHLO.
fn submission_tls() -> Harness {
    let mut h = Harness::new(SessionConfig::submission("mx.example.test"), false);
    h.send("EHLO c\r\nSTARTTLS\r\n");
    assert_eq!(h.starttls, 1);
    h.handshake();
    h.send("EHLO c\r\n");
    h.replies.clear();
    h
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let mut h = Harness::ehlo();
    let r = h.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<x@example.test>\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(220, Some((2, 0, 0)))]
    );
    assert_eq!(h.starttls, 1);
    assert_eq!(h.session.phase(), Phase::Tls);
    let injected = "MAIL FROM:<evil@example.org>\r\nRCPT TO:<x@example.test>\r\n".len();
    assert_eq!(h.session.discarded_after_starttls(), injected);
    // Plaintext arriving before the handshake completes is dropped too.
    assert!(h.send("NOOP\r\n").is_empty());
    assert_eq!(h.session.discarded_after_starttls(), injected + 6);
    h.handshake();
    assert!(h.session.tls_active());
    // The injected commands were never executed, and the session starts over.
    assert_eq!(h.rcpt_checks, 0);
    assert_eq!(h.session.helo(), None);
    assert_eq!(
        h.one("MAIL FROM:<a@example.org>\r\n"),
        (503, Some((5, 5, 1)))
    );
    assert_eq!(
        h.codes("EHLO c\r\nMAIL FROM:<a@example.org>\r\n"),
        vec![250, 250]
    );
}

#[test]
fn starttls_resets_the_transaction() {
    let mut h = Harness::ehlo();
    h.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n");
    assert_eq!(h.codes("STARTTLS\r\n"), vec![220]);
    h.handshake();
    h.send("EHLO c\r\n");
    assert!(h.session.sender().is_none());
}

#[test]
fn starttls_refusals() {
    let mut h = Harness::new(config(), false);
    assert_eq!(h.one("STARTTLS\r\n"), (503, Some((5, 5, 1))), "EHLO first");
    let mut h = Harness::new(config(), true);
    h.send("EHLO c\r\n");
    assert_eq!(h.one("STARTTLS\r\n"), (503, Some((5, 5, 1))), "already TLS");
    let mut cfg = config();
    cfg.starttls = false;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\n");
    assert_eq!(h.one("STARTTLS\r\n"), (502, Some((5, 5, 1))));
    let mut h = Harness::ehlo();
    assert_eq!(h.one("STARTTLS now\r\n"), (501, Some((5, 5, 4))));
}

#[test]
fn auth_before_starttls_is_refused() {
    let mut h = Harness::new(SessionConfig::submission("mx"), false);
    h.send("EHLO c\r\n");
    let r = h.send(&format!(
        "AUTH PLAIN {}\r\n",
        plain("", "bob@example.test", "s3cret")
    ));
    assert_eq!(ce(&r[0]), (530, Some((5, 7, 0))));
    assert_eq!(r[0].lines()[0], "Must issue a STARTTLS command first");
    assert!(h.auth_checks.is_empty(), "the password was never passed on");
    // Without a certificate, there is no STARTTLS to ask for.
    let mut cfg = SessionConfig::submission("mx");
    cfg.starttls = false;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\n");
    assert_eq!(h.one("AUTH LOGIN\r\n"), (538, Some((5, 7, 11))));
    // AUTH not configured at all (port 25).
    let mut h = Harness::new(config(), true);
    h.send("EHLO c\r\n");
    assert_eq!(h.one("AUTH PLAIN\r\n"), (502, Some((5, 5, 1))));
}

#[test]
fn auth_plain_with_initial_response() {
    let mut h = submission_tls();
    let r = h.send(&format!(
        "AUTH PLAIN {}\r\n",
        plain("", "bob@example.test", "s3cret")
    ));
    assert_eq!(r[0].to_string(), "235 2.7.0 Authentication successful\r\n");
    assert_eq!(h.session.authenticated(), Some("bob@example.test"));
    assert_eq!(h.auth_checks[0].password.expose(), "s3cret");
    // Now MAIL works, and the envelope carries the user.
    h.send("MAIL FROM:<bob@example.test>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\nhi\r\n.\r\n");
    let e = &h.queued[0].envelope;
    assert_eq!(e.authenticated.as_deref(), Some("bob@example.test"));
    assert!(e.tls);
}

#[test]
fn auth_plain_two_steps_and_authzid() {
    let mut h = submission_tls();
    assert_eq!(h.send("AUTH PLAIN\r\n")[0].to_string(), "334 \r\n");
    assert_eq!(h.session.phase(), Phase::Auth);
    let r = h.send(&format!(
        "{}\r\n",
        plain("bob@example.test", "bob@example.test", "s3cret")
    ));
    assert_eq!(r[0].code(), 235);

    let mut h = submission_tls();
    let r = h.send(&format!(
        "AUTH PLAIN {}\r\n",
        plain("alice@example.test", "bob@example.test", "s3cret")
    ));
    assert_eq!(ce(&r[0]), (535, Some((5, 7, 8))));
    assert!(h.auth_checks.is_empty(), "refused before asking moat-auth");
    assert_eq!(h.session.authenticated(), None);
}

#[test]
fn auth_login_two_steps() {
    let mut h = submission_tls();
    assert_eq!(
        h.send("AUTH LOGIN\r\n")[0].to_string(),
        "334 VXNlcm5hbWU6\r\n"
    );
    assert_eq!(
        h.send(&format!("{}\r\n", b64("bob@example.test")))[0].to_string(),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(
        h.one(&format!("{}\r\n", b64("s3cret"))),
        (235, Some((2, 7, 0)))
    );
    // With the user name as initial response.
    let mut h = submission_tls();
    assert_eq!(
        h.send(&format!("AUTH LOGIN {}\r\n", b64("bob@example.test")))[0].code(),
        334
    );
    assert_eq!(
        h.one(&format!("{}\r\n", b64("wrong"))),
        (535, Some((5, 7, 8)))
    );
    assert_eq!(h.session.errors(), 1);
}

#[test]
fn auth_cancel_and_bad_base64() {
    let mut h = submission_tls();
    h.send("AUTH LOGIN\r\n");
    assert_eq!(h.one("*\r\n"), (501, Some((5, 0, 0))));
    assert_eq!(h.session.phase(), Phase::Command);
    h.send("AUTH PLAIN\r\n");
    assert_eq!(h.one("not base64!\r\n"), (501, Some((5, 5, 2))));
    assert_eq!(
        h.one("AUTH PLAIN =\r\n"),
        (501, Some((5, 5, 2))),
        "empty message is malformed"
    );
    // Still usable.
    assert_eq!(h.one("NOOP\r\n").0, 250);
}

#[test]
fn auth_sequencing() {
    let mut h = Harness::new(SessionConfig::submission("mx"), true);
    assert_eq!(
        h.one("AUTH PLAIN\r\n"),
        (503, Some((5, 5, 1))),
        "before EHLO"
    );
    h.send("HELO c\r\n");
    assert_eq!(
        h.one("AUTH PLAIN\r\n"),
        (503, Some((5, 5, 1))),
        "after HELO"
    );
    h.send("EHLO c\r\n");
    assert_eq!(h.one("AUTH CRAM-MD5\r\n"), (504, Some((5, 5, 4))));
    let login = format!("AUTH PLAIN {}\r\n", plain("", "bob@example.test", "s3cret"));
    assert_eq!(h.one(&login).0, 235);
    assert_eq!(h.one(&login), (503, Some((5, 5, 1))), "twice");
    assert_eq!(h.auth_checks.len(), 1);

    let mut cfg = config();
    cfg.auth = true;
    let mut h = Harness::new(cfg, true);
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(
        h.one(&login),
        (503, Some((5, 5, 1))),
        "inside a transaction"
    );
}

#[test]
fn auth_temporary_failure() {
    let mut h = submission_tls();
    h.auth_policy = Box::new(|_| AuthVerdict::TempFail);
    let r = h.send(&format!(
        "AUTH PLAIN {}\r\n",
        plain("", "bob@example.test", "s3cret")
    ));
    assert_eq!(ce(&r[0]), (454, Some((4, 7, 0))));
    assert_eq!(h.session.errors(), 0);
}

#[test]
fn auth_line_limits() {
    let mut h = submission_tls();
    h.send("AUTH PLAIN\r\n");
    // Continuation lines may be long (12288), longer is refused with 5.5.6.
    let long = "A".repeat(13000);
    assert_eq!(h.one(&format!("{long}\r\n")), (500, Some((5, 5, 6))));
    assert_eq!(h.session.phase(), Phase::Command);
    h.send("AUTH PLAIN\r\n");
    let pass = "p".repeat(3000);
    let r = h.send(&format!("{}\r\n", plain("", "bob@example.test", &pass)));
    assert_eq!(
        r[0].code(),
        535,
        "a 4000-octet response is read and checked"
    );
}

#[test]
fn passwords_do_not_leak_into_debug_output() {
    let mut h = submission_tls();
    h.send(&format!(
        "AUTH PLAIN {}\r\n",
        plain("", "bob@example.test", "s3cret")
    ));
    let dbg = format!("{:?} {:?}", h.auth_checks, h.session);
    assert!(!dbg.contains("s3cret"));
}
