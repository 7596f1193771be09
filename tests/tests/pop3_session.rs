//! POP3 end to end with a raw socket client, where exact answers matter: Maildir semantics
//! (a dropped connection deletes nothing, a message expunged elsewhere mid-session, the Seen
//! flag, UIDL against the UID list, one session per maildrop) and hostile input (10 KB
//! command, bad message numbers, plaintext before TLS, wrong passwords until throttled).

use std::time::Duration;

use moat_tests::Stack;
use moat_tests::pop3_raw::Pop;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

fn stack_with_mail(extra: &str, messages: usize) -> Stack {
    let s = Stack::start_with_user(extra, ALICE, PW);
    for i in 1..=messages {
        s.deliver(
            "x@remote.example",
            ALICE,
            &format!(
                "From: x@remote.example\r\nTo: {ALICE}\r\nSubject: message {i}\r\n\r\nbody {i}\r\n.starts with a dot\r\n"
            ),
        );
    }
    s
}

/// UIDs from the Maildir's dovecot-uidlist: (uidvalidity, [(uid, base)]).
fn uidlist(s: &Stack) -> (u32, Vec<(u32, String)>) {
    let text = std::fs::read_to_string(s.maildir(ALICE).join("dovecot-uidlist")).expect("uidlist");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let validity = header
        .split(' ')
        .find_map(|f| f.strip_prefix('V'))
        .and_then(|v| v.parse().ok())
        .expect("V");
    let records = lines
        .filter_map(|l| {
            let (uid, rest) = l.split_once(' ')?;
            let base = rest.rsplit_once(':').map(|(_, b)| b).unwrap_or(rest);
            Some((uid.parse().ok()?, base.to_string()))
        })
        .collect();
    (validity, records)
}

#[test]
fn retr_top_uidl_dele_quit_and_the_seen_flag() {
    let s = stack_with_mail("", 3);
    let mut p = Pop::connect(s.pop3);
    let r = p.login(ALICE, PW);
    assert!(r.starts_with("+OK"), "{r}");
    assert!(p.cmd("STAT").starts_with("+OK 3 "));
    let (_, uidls) = p.multi("UIDL");
    let (validity, records) = uidlist(&s);
    let expected: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, (uid, _))| format!("{} {uid:08X}{validity:08X}", i + 1))
        .collect();
    assert_eq!(
        uidls, expected,
        "UIDL is Dovecot's %08Xu%08Xv of the UID list"
    );
    let (first, top) = p.multi("TOP 1 0");
    assert!(first.starts_with("+OK"), "{first}");
    assert!(top.iter().any(|l| l == "Subject: message 1"), "{top:?}");
    assert_eq!(
        top.last().map(String::as_str),
        Some(""),
        "header and blank line only"
    );
    let (first, body) = p.multi("RETR 2");
    assert!(first.starts_with("+OK"), "{first}");
    assert!(body.iter().any(|l| l == ".starts with a dot"), "{body:?}");
    assert_eq!(p.cmd("DELE 1"), "+OK message 1 deleted");
    // Not deleted before QUIT.
    assert_eq!(s.messages(ALICE).len(), 3);
    assert!(p.cmd("QUIT").starts_with("+OK"));
    let left = s.messages(ALICE);
    assert_eq!(left.len(), 2);
    assert!(!left.iter().any(|m| m.contains("Subject: message 1")));
    // RETR gave message 2 the Seen flag (in cur/); TOP did not touch message 3.
    let cur: Vec<String> = std::fs::read_dir(s.maildir(ALICE).join("cur"))
        .expect("cur")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cur.len(), 1, "{cur:?}");
    assert!(
        cur[0].ends_with(":2,S") && cur[0].starts_with(&records[1].1),
        "{cur:?}"
    );
    // The next session numbers from 1 again but the UIDLs stay.
    let mut p = Pop::connect(s.pop3);
    assert!(p.login(ALICE, PW).starts_with("+OK"));
    let (_, again) = p.multi("UIDL");
    assert_eq!(
        again,
        vec![
            format!("1 {:08X}{validity:08X}", records[1].0),
            format!("2 {:08X}{validity:08X}", records[2].0)
        ]
    );
    assert!(p.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn a_dropped_connection_deletes_nothing_and_in_use_is_refused() {
    let s = stack_with_mail("", 2);
    let mut a = Pop::connect(s.pop3);
    assert!(a.login(ALICE, PW).starts_with("+OK"));
    assert_eq!(a.cmd("DELE 1"), "+OK message 1 deleted");
    assert_eq!(a.cmd("DELE 2"), "+OK message 2 deleted");
    // A second POP3 session for the same maildrop.
    let mut b = Pop::connect(s.pop3);
    let r = b.login(ALICE, PW);
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
    // The first connection drops without QUIT.
    drop(a);
    let mut tries = 0;
    let mut c = loop {
        let mut c = Pop::connect(s.pop3);
        let r = c.login(ALICE, PW);
        if r.starts_with("+OK") {
            break c;
        }
        assert!(r.starts_with("-ERR [IN-USE]") && tries < 50, "{r}");
        tries += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(c.cmd("STAT").starts_with("+OK 2 "));
    assert!(c.cmd("QUIT").starts_with("+OK"));
    assert_eq!(s.messages(ALICE).len(), 2);
}

#[test]
fn a_message_expunged_by_another_process_mid_session() {
    let s = stack_with_mail("", 3);
    let mut p = Pop::connect(s.pop3);
    assert!(p.login(ALICE, PW).starts_with("+OK"));
    // What an IMAP EXPUNGE does: the file goes away.
    let (_, records) = uidlist(&s);
    let md = s.maildir(ALICE);
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(md.join(sub)).expect("dir").flatten() {
            if e.file_name().to_string_lossy().starts_with(&records[0].1) {
                std::fs::remove_file(e.path()).expect("expunge");
            }
        }
    }
    let r = p.cmd("RETR 1");
    assert!(r.starts_with("-ERR"), "{r}");
    let (first, _) = p.multi("RETR 2");
    assert!(first.starts_with("+OK"), "{first}");
    assert_eq!(p.cmd("DELE 1"), "+OK message 1 deleted");
    assert_eq!(p.cmd("DELE 3"), "+OK message 3 deleted");
    assert!(p.cmd("QUIT").starts_with("+OK"));
    let left = s.messages(ALICE);
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("Subject: message 2"));
}

#[test]
fn bad_input_gets_rfc_answers() {
    let s = stack_with_mail("", 1);
    let mut p = Pop::connect(s.pop3);
    // A 10 KB command: one -ERR, and the session goes on (the documented choice).
    p.send(&vec![b'A'; 10 * 1024]);
    assert_eq!(p.cmd(""), "-ERR line too long");
    assert!(p.cmd("CAPA").starts_with("+OK"));
    loop {
        if p.line() == "." {
            break;
        }
    }
    assert!(p.cmd("RETR 1").starts_with("-ERR"), "not before login");
    assert!(p.cmd("APOP alice 0123456789abcdef").starts_with("-ERR"));
    assert!(p.login(ALICE, PW).starts_with("+OK"));
    for bad in [
        "DELE 0",
        "DELE 2",
        "DELE -1",
        "DELE abc",
        "DELE 99999999999",
        "DELE",
    ] {
        let r = p.cmd(bad);
        assert!(r.starts_with("-ERR"), "{bad}: {r}");
    }
    assert!(p.cmd("XYZZY").starts_with("-ERR"));
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
    assert!(p.cmd("QUIT").starts_with("+OK"));
    assert_eq!(s.messages(ALICE).len(), 1);

    // Too many commands before logging in: the session is closed.
    let mut q = Pop::connect(s.pop3);
    let mut last = String::new();
    for _ in 0..25 {
        last = q.multi("CAPA").0;
        if !last.starts_with("+OK") {
            break;
        }
    }
    assert_eq!(last, "-ERR too many commands without logging in");
}

#[test]
fn plaintext_refused_before_tls_and_wrong_passwords_get_throttled() {
    let s = stack_with_mail("[pop3]\nplaintext_on_loopback = false\n", 1);
    let mut p = Pop::connect(s.pop3);
    let r = p.cmd(&format!("USER {ALICE}"));
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    let r = p.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1zZWNyZXQ=");
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    let (_, caps) = p.multi("CAPA");
    assert!(caps.contains(&"STLS".to_string()), "{caps:?}");
    assert!(
        !caps.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{caps:?}"
    );
    // Over TLS (Python's poplib): the right password works; then wrong ones until moat-auth
    // throttles, which the client sees as [LOGIN-DELAY].
    let out = s.python(
        r#"
import os, poplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", int(os.environ["POP3_PORT"]), timeout=30)
p.stls(context=ctx)
p.user("alice@example.test"); p.pass_("alice-secret")
print("stat", p.stat()); p.quit()
answers = []
for i in range(8):
    p = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx, timeout=30)
    p.user("alice@example.test")
    try:
        p.pass_("wrong-%d" % i)
        answers.append("accepted")
    except poplib.error_proto as e:
        answers.append(e.args[0].decode())
    p.quit()
print("\n".join(answers))
"#,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("stat (1, "), "{text}");
    assert!(text.contains("-ERR [AUTH] authentication failed"), "{text}");
    assert!(text.contains("-ERR [LOGIN-DELAY]"), "{text}");
    assert!(!text.contains("accepted"), "{text}");
}
