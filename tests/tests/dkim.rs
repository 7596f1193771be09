//! DKIM signing end to end, with real parts: `moat dkim generate` makes the keys, `moat domain
//! dns` prints the records, SIGHUP hands the keys to a new moat-remote, and the messages an
//! aiosmtpd peer (`tests/peers/smtp_peer.py`) receives are checked with dkimpy (Debian
//! python3-dkim, Ed25519 through python3-nacl), resolving the selectors from the printed
//! records only (no DNS server is asked).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use moat_tests::dkim::{parse_zone, verdicts};
use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack, bin_dir};

fn dkim_headers(message: &[u8]) -> usize {
    String::from_utf8_lossy(message)
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .matches("\r\nDKIM-Signature: ")
        .count()
        + usize::from(message.starts_with(b"DKIM-Signature: "))
}

fn python_ok(s: &Stack, script: &str) {
    let out = s.python(script);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

#[test]
fn own_mail_is_signed_with_rsa_and_ed25519_and_forwarded_mail_is_not() {
    let peer = Peer::start(None);
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\ntimeout_connect_secs = 3\n\
             timeout_command_secs = 3\n[remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(
        &["alias", "add", "fwd@example.test", "ok-fwd@far.example"],
        "",
    );

    // Keys: only for a domain we host; never twice without --force.
    let unknown = s.moat(&["dkim", "generate", "nowhere.test"], "");
    assert_eq!(unknown.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("moat domain add nowhere.test"), "{err}");
    let made = s.admin(&["dkim", "generate", "example.test"], "");
    assert!(
        made.contains("._domainkey.example.test.\t3600\tIN\tTXT\t\"v=DKIM1; k=rsa; p="),
        "{made}"
    );
    assert!(made.contains("\"v=DKIM1; k=ed25519; p="), "{made}");
    let again = s.moat(&["dkim", "generate", "example.test"], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let folder = s.data.join("dkim/example.test");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .expect("key folder")
        .flatten()
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let mode = f.metadata().expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", f.path());
    }

    // The records an admin publishes.
    let zone = s.admin(&["domain", "dns", "example.test"], "");
    let (records, lines) = parse_zone(&zone);
    assert!(
        lines.contains(&(
            "example.test".into(),
            "MX".into(),
            "10 mx.example.test.".into()
        )),
        "{zone}"
    );
    assert_eq!(records["example.test"], "v=spf1 mx -all");
    assert_eq!(
        records["_dmarc.example.test"],
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"
    );
    let keys: Vec<&String> = records
        .keys()
        .filter(|k| k.ends_with("._domainkey.example.test"))
        .collect();
    assert_eq!(keys.len(), 2, "{zone}");

    // moat-remote takes the keys at the reload.
    moat_tests::signal(s.moat_pid(), rustix::process::Signal::HUP);
    s.wait_log("DKIM: signing as example.test");
    s.wait_log("the replaced moat-remote finished");

    // 1. An authenticated submission: both signatures verify; one changed body byte breaks both.
    python_ok(
        &s,
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", ["ok@far.example"],
        b"From: Alice <alice@example.test>\r\nTo: ok@far.example\r\nSubject: signed\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        b"Hello,\r\n.a line that starts with a dot\r\n\r\nbye   \r\n")
"#,
    );
    let got = peer.wait(1, &s);
    let signed = &got[0].1;
    assert_eq!(
        dkim_headers(signed),
        2,
        "{}",
        String::from_utf8_lossy(signed)
    );
    assert_eq!(
        verdicts(&records, signed),
        "rsa-sha256=True ed25519-sha256=True"
    );
    let mut tampered = signed.clone();
    let at = tampered
        .windows(5)
        .position(|w| w == b"Hello")
        .expect("body");
    tampered[at] = b'J';
    assert_eq!(
        verdicts(&records, &tampered),
        "rsa-sha256=False ed25519-sha256=False"
    );
    // A changed signed header breaks the signatures themselves (the body hash still matches).
    let mut tampered = signed.clone();
    let at = tampered
        .windows(15)
        .position(|w| w == b"Subject: signed")
        .expect("subject");
    tampered[at + 9] = b'S';
    assert_eq!(
        verdicts(&records, &tampered),
        "rsa-sha256=False ed25519-sha256=False"
    );

    // 2. A local sender (sendmail): signed as well.
    let mut sendmail = Command::new(bin_dir().join("sendmail"))
        .args(["-t", "-f", "alice@example.test"])
        .env("MOAT_QUEUE_SOCKET", s.data.join("run/queue.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sendmail");
    sendmail
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"From: alice@example.test\nTo: ok-cron@far.example\nSubject: cron\n\nall good\n",
        )
        .expect("write");
    let out = sendmail.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = peer.wait(2, &s);
    assert_eq!(
        verdicts(&records, &got[1].1),
        "rsa-sha256=True ed25519-sha256=True"
    );

    // 3. Mail from outside on port 25 with our From:, forwarded by an alias: never signed.
    python_ok(
        &s,
        r#"
import os, smtplib
with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30) as c:
    c.sendmail("spoofer@evil.example", ["fwd@example.test"],
        b"From: alice@example.test\r\nTo: fwd@example.test\r\nSubject: spoofed\r\n\r\nhi\r\n")
"#,
    );
    let got = peer.wait(3, &s);
    let forwarded = &got[2].1;
    assert!(
        String::from_utf8_lossy(forwarded).contains("Subject: spoofed"),
        "{}",
        String::from_utf8_lossy(forwarded)
    );
    assert_eq!(
        dkim_headers(forwarded),
        0,
        "{}",
        String::from_utf8_lossy(forwarded)
    );
    s.wait_log("not DKIM-signed: origin forward");
}
