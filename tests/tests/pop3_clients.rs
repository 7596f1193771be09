//! POP3 with the real clients people fetch mail with: Python's poplib (USER/PASS over STLS,
//! AUTH PLAIN with an initial response over POP3S, TOP, UIDL, DELE + QUIT), fetchmail and
//! getmail6 (Debian packages) retrieving into a local mbox or Maildir, with and without
//! keeping the mail on the server. Everything talks to 127.0.0.1 only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use moat_tests::smtp_client::Client;
use moat_tests::{Stack, getmail};

const USER: &str = "carol@example.test";
const PW: &str = "carol-secret";

fn stack_with_mail(messages: usize) -> Stack {
    let s = Stack::start();
    s.add_domain("example.test");
    s.add_user(USER, PW);
    // One at a time: the tests name messages by number, and two messages in the queue at once
    // may be delivered in either order (the maildrop lists them in delivery order).
    for i in 1..=messages {
        deliver(&s, i, i);
    }
    s
}

/// Delivers messages `from..=to` by SMTP and waits for them.
fn deliver(s: &Stack, from: usize, to: usize) {
    let before = s.messages(USER).len();
    let mut c = Client::connect(s.smtp).expect("smtp");
    c.ehlo("client.example").expect("ehlo");
    for i in from..=to {
        let msg = format!(
            "From: x@remote.example\r\nTo: {USER}\r\nSubject: fetch {i}\r\nMessage-ID: <fetch-{i}@remote.example>\r\n\r\nbody of message {i}\r\n..\r\n.\r\nend\r\n"
        );
        let r = c
            .send_mail("x@remote.example", &[USER], msg.as_bytes())
            .expect("send");
        assert_eq!(r.0, 250, "{r:?}");
    }
    s.wait_messages(USER, before + to + 1 - from);
}

fn check(out: &Output, what: &str, s: &Stack) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    stdout
}

#[test]
fn poplib_user_pass_over_stls_and_auth_plain_over_pop3s() {
    let s = stack_with_mail(3);
    let out = s.python(
        r#"
import base64, os, poplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", int(os.environ["POP3_PORT"]), timeout=30)
caps = p.capa()
assert "STLS" in caps and "UIDL" in caps and "TOP" in caps and "RESP-CODES" in caps, caps
p.stls(context=ctx)
p.user("carol@example.test"); p.pass_("carol-secret")
count, size = p.stat()
assert count == 3, (count, size)
resp, uidls, _ = p.uidl()
uidls = [u.decode().split()[1] for u in uidls]
assert len(set(uidls)) == 3 and all(len(u) == 16 for u in uidls), uidls
resp, lines, _ = p.top(1, 1)
assert b"Subject: fetch 1" in lines and lines[-1] == b"body of message 1", lines
resp, lines, octets = p.retr(2)
assert b"." in lines and b"" in lines and lines[-1] == b"end", lines
p.dele(3)
p.quit()

# AUTH PLAIN with an initial response (RFC 5034) over implicit TLS.
p = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx, timeout=30)
token = base64.b64encode(b"\0carol@example.test\0carol-secret").decode()
assert p._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
count, size = p.stat()
assert count == 2, count
resp, again, _ = p.uidl()
assert [u.decode().split()[1] for u in again] == uidls[:2], (again, uidls)
resp, lines, _ = p.retr(1)
assert b"Subject: fetch 1" in lines
p.quit()
print("ok")
"#,
    );
    assert!(check(&out, "poplib", &s).contains("ok"));
    let left = s.messages(USER);
    assert_eq!(left.len(), 2);
    assert!(!left.iter().any(|m| m.contains("Subject: fetch 3")));
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn fetchmail(s: &Stack, dir: &Path, rc: &Path, extra: &[&str]) -> Output {
    Command::new("fetchmail")
        .args(["-f"])
        .arg(rc)
        .args(["--nosyslog", "-v"])
        .args(extra)
        .env("HOME", dir)
        .env("FETCHMAILHOME", dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "fetchmail not installed ({e}); .ci/run installs it; {}",
                s.pop3
            )
        })
}

#[test]
fn fetchmail_into_an_mbox_with_keep_then_without() {
    let s = stack_with_mail(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mbox = dir.join("mbox");
    let rc = dir.join("fetchmailrc");
    // Run 1: POP3S (certificate not checked: it is self-signed), keep the mail on the server.
    private(
        &rc,
        &format!(
            "set no bouncemail\nset idfile \"{idfile}\"\n\
             poll 127.0.0.1 with proto POP3 port {port} uidl no dns\n  \
             user \"{USER}\" there with password \"{PW}\" is \"root\" here\n  \
             ssl no sslcertck mda \"/bin/sh -c 'cat >> {mbox}'\"\n",
            idfile = dir.join("fetchids").display(),
            port = s.pop3s,
            mbox = mbox.display()
        ),
    );
    check(
        &fetchmail(&s, dir, &rc, &["--keep"]),
        "fetchmail --keep",
        &s,
    );
    let got = std::fs::read_to_string(&mbox).expect("mbox");
    assert_eq!(got.matches("Subject: fetch").count(), 2, "{got}");
    assert_eq!(
        s.messages(USER).len(),
        2,
        "--keep leaves the mail on the server"
    );
    deliver(&s, 3, 3);
    // Run 2: plaintext on loopback, no --keep, flush the old ones: only the new message is
    // fetched (the UIDLs did not change) and the server ends empty.
    private(
        &rc,
        &format!(
            "set no bouncemail\nset idfile \"{idfile}\"\n\
             poll 127.0.0.1 with proto POP3 port {port} uidl no dns\n  \
             user \"{USER}\" there with password \"{PW}\" is \"root\" here\n  \
             sslproto '' mda \"/bin/sh -c 'cat >> {mbox}'\"\n",
            idfile = dir.join("fetchids").display(),
            port = s.pop3,
            mbox = mbox.display()
        ),
    );
    check(&fetchmail(&s, dir, &rc, &["--flush"]), "fetchmail", &s);
    let got = std::fs::read_to_string(&mbox).expect("mbox");
    assert_eq!(got.matches("Subject: fetch").count(), 3, "{got}");
    assert_eq!(got.matches("Subject: fetch 3").count(), 1, "{got}");
    assert!(
        got.contains("\n..\n") || got.contains("\r\n..\r\n"),
        "dots unstuffed: {got}"
    );
    assert_eq!(s.messages(USER).len(), 0, "{}", s.log());
}

#[test]
fn getmail_into_a_maildir_with_keep_then_without() {
    let s = stack_with_mail(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (local, as_user) = getmail::maildir(dir);
    let rc = dir.join("getmailrc");
    let write_rc = |delete: bool| {
        private(
            &rc,
            &format!(
                "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = {port}\n\
                 username = {USER}\npassword = {PW}\n\n\
                 [destination]\ntype = Maildir\npath = {path}/\n{as_user}\n\
                 [options]\nverbose = 1\nread_all = false\ndelete = {delete}\n",
                port = s.pop3,
                path = local.display()
            ),
        )
    };
    let getmail = || getmail::run(dir, &rc);
    let local_count = || getmail::fetched(&local).len();
    write_rc(false);
    check(&getmail(), "getmail (keep)", &s);
    assert_eq!(local_count(), 2);
    assert_eq!(s.messages(USER).len(), 2, "kept on the server");
    deliver(&s, 3, 3);
    write_rc(true);
    check(&getmail(), "getmail (delete)", &s);
    assert_eq!(local_count(), 3, "only the new message is fetched again");
    let left = s.messages(USER);
    assert!(
        !left.iter().any(|m| m.contains("Subject: fetch 3")),
        "deleted after retrieval"
    );
}
