//! Routes with credentials (`[remote.routes] … auth = { user, password_file }`) against an
//! aiosmtpd peer that requires AUTH (`tests/peers/smtp_peer.py`, `PEER_AUTH`): the right login
//! delivers and the peer sees the user; a wrong one defers without the password ever reaching
//! the log; a peer without STARTTLS never gets an AUTH; a loopback relay without TLS is allowed
//! when the route says `tls = "none"` (AUTH LOGIN when PLAIN is not offered); and a password file
//! others can read stops `moat serve` before anything starts.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use moat_tests::peer::{Options, Peer, certificate};
use moat_tests::{Mode, Stack, bin_dir, free_ports};

const USER: &str = "relay@example.test";
const PASSWORD: &str = "Relay-pw 7f3a";
/// A password the peer refuses.
const WRONG: &str = "wrong-pw 91c2";

/// A password file, mode 0600, in `dir`.
fn password_file(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("relay.secret");
    std::fs::write(&path, format!("{password}\n")).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn peer_options(tls: bool) -> Options {
    Options {
        auth: Some((USER.into(), PASSWORD.into())),
        auth_plaintext: !tls,
        ..Options::default()
    }
}

/// A stack routing far.example to `peer` with these credentials and TLS policy.
fn stack(peer: &Peer, tls: &str, secret: &Path) -> Stack {
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\ntimeout_connect_secs = 3\n\
             timeout_command_secs = 5\n[remote.routes]\n\"far.example\" = {{ host = \
             \"127.0.0.1\", port = {}, tls = \"{tls}\", auth = {{ user = \"{USER}\", \
             password_file = \"{}\" }} }}\n",
            peer.port,
            secret.display()
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s
}

/// Submits a small message from alice to `to` on port 587 (STARTTLS + AUTH).
fn submit(s: &Stack, to: &str, subject: &str) {
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", ["{to}"],
        b"From: alice@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhi\r\n")
"#
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

/// The password must not be in the log in any form AUTH would carry it.
fn assert_no_password(log: &str, password: &str) {
    let plain = format!("\0{USER}\0{password}");
    for form in [
        password.to_string(),
        STANDARD.encode(plain.as_bytes()),
        STANDARD.encode(password.as_bytes()),
    ] {
        assert!(!log.contains(&form), "{form:?} is in the log:\n{log}");
    }
}

#[test]
fn the_right_login_delivers_and_the_session_is_reused_for_the_route() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(tmp.path());
    let peer = Peer::start_with(Some((&cert, &key)), &peer_options(true));
    let s = stack(&peer, "encrypt", &password_file(tmp.path(), PASSWORD));
    s.wait_log(&format!("AUTH: route far.example as {USER}"));
    submit(&s, "ok1@far.example", "first");
    peer.wait(1, &s);
    submit(&s, "ok2@far.example", "second");
    let got = peer.wait(2, &s);
    assert_eq!(got[1].0[1], "ok2@far.example");
    assert_eq!((peer.login(1), peer.login(2)), (USER.into(), USER.into()));
    // One session, one login, after STARTTLS: the second message reused it.
    assert_eq!(
        peer.auth_log(),
        ["AUTH PLAIN".to_string(), format!("{USER} ok")]
    );
    assert_eq!(peer.sessions().0, 1, "{}", s.log());
    s.wait_log(&format!("127.0.0.1]: authenticated as {USER}"));
    s.wait_log("reusing an idle connection");
    assert_no_password(&s.log(), PASSWORD);
}

#[test]
fn a_wrong_password_defers_with_a_reason_and_never_reaches_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(tmp.path());
    let peer = Peer::start_with(Some((&cert, &key)), &peer_options(true));
    let s = stack(&peer, "encrypt", &password_file(tmp.path(), WRONG));
    submit(&s, "ok@far.example", "refused login");
    s.wait_log("to=<ok@far.example> deferred (attempt 1)");
    let log = s.log();
    assert!(
        log.contains("4.7.0 127.0.0.1[127.0.0.1] said: 535")
            && log.contains("(SASL authentication failed)"),
        "{log}"
    );
    assert_no_password(&log, WRONG);
    assert_eq!(s.queued(), 1, "the message waits in the queue");
    assert!(peer.received().is_empty());
    assert_eq!(
        peer.auth_log(),
        ["AUTH PLAIN".to_string(), format!("{USER} refused")]
    );
    assert!(
        s.messages("alice@example.test").is_empty(),
        "no bounce: temporary"
    );
}

#[test]
fn a_peer_without_starttls_never_gets_the_credentials() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // AUTH offered in plaintext: the bait a downgrading attacker would offer.
    let peer = Peer::start_with(None, &peer_options(false));
    let s = stack(&peer, "encrypt", &password_file(tmp.path(), PASSWORD));
    submit(&s, "ok@far.example", "no tls");
    s.wait_log("to=<ok@far.example> deferred (attempt 1)");
    assert!(s.log().contains("does not offer STARTTLS"), "{}", s.log());
    std::thread::sleep(Duration::from_millis(300));
    assert!(peer.auth_log().is_empty(), "{:?}", peer.auth_log());
    assert_eq!(s.queued(), 1);
    assert!(peer.received().is_empty());
}

#[test]
fn a_loopback_relay_without_tls_gets_auth_login_when_the_route_says_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let peer = Peer::start_with(
        None,
        &Options {
            auth_mechanisms: Some("LOGIN".into()),
            ..peer_options(false)
        },
    );
    let s = stack(&peer, "none", &password_file(tmp.path(), PASSWORD));
    submit(&s, "ok@far.example", "loopback");
    peer.wait(1, &s);
    assert_eq!(peer.login(1), USER);
    assert_eq!(
        peer.auth_log(),
        ["AUTH LOGIN".to_string(), format!("{USER} ok")]
    );
    assert_no_password(&s.log(), PASSWORD);
}

#[test]
fn a_password_file_others_can_read_stops_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = password_file(tmp.path(), PASSWORD);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let [smtp] = free_ports::<1>();
    let config = tmp.path().join("moat.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx.example.test\"\n[store]\nurl = \"sqlite:users.db\"\n\
             [listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nsubmission = []\nsubmissions = []\n\
             pop3 = []\npop3s = []\nimap = []\nimaps = []\n\
             [remote.routes]\n\"*\" = {{ host = \"127.0.0.1\", port = 9, tls = \"encrypt\", \
             auth = {{ user = \"{USER}\", password_file = \"relay.secret\" }} }}\n"
        ),
    )
    .expect("config");
    let out = Command::new(bin_dir().join("moat"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("MOAT_CONFIG")
        .output()
        .expect("run moat serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("remote.routes.\"*\"") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(
        !tmp.path().join("queue").exists(),
        "nothing was prepared before the check"
    );
}
