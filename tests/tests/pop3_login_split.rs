//! The POP3 login split (issue #9, docs/ARCHITECTURE.md "POP3") end to end with the real
//! supervisor: moat-pop3-login greets, does TLS (995 and STLS) and checks logins with moat-auth;
//! a logged-in client is handed to moat-pop3d, which locks the maildrop, answers the login and
//! serves the session. Clients: Python's poplib and ssl, and a raw socket where the exact bytes
//! of one write matter. Who served a connection is read from the log (each line names its
//! program and pid) and, as root, from the processes' descriptors (the children are not
//! dumpable, so only root can read another one's /proc/PID/fd).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moat_tests::pop3_raw::Pop;
use moat_tests::served::served_by;
use moat_tests::{Stack, getmail, signal};
use rustix::process::Signal;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

/// CAPA before a login on loopback in plaintext (USER and SASL allowed there, STLS offered),
/// and after one: the same as from one process.
const BEFORE_LOGIN: [&str; 9] = [
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "PIPELINING",
    "USER",
    "SASL PLAIN",
    "STLS",
    "IMPLEMENTATION Moat",
];
const AFTER_LOGIN: [&str; 6] = [
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "PIPELINING",
    "IMPLEMENTATION Moat",
];

fn stack_with_mail(messages: usize) -> Stack {
    let s = Stack::start_with_user("", ALICE, PW);
    for i in 1..=messages {
        s.deliver(
            "x@remote.example",
            ALICE,
            &format!(
                "From: x@remote.example\r\nTo: {ALICE}\r\nSubject: message {i}\r\n\r\nbody {i}\r\n"
            ),
        );
    }
    s
}

/// The octets of the maildrop as POP3 counts them (CRLF), from `STAT` on a fresh session.
fn stat(s: &Stack) -> String {
    let mut p = Pop::connect(s.pop3);
    assert!(p.login(ALICE, PW).starts_with("+OK logged in"));
    let stat = p.cmd("STAT");
    assert!(p.cmd("QUIT").starts_with("+OK"));
    stat
}

/// Runs a Python script with poplib, ssl and the credentials at hand; it must succeed.
fn python(s: &Stack, script: &str) -> String {
    let prelude = r#"
import base64, os, poplib, socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
PORT = int(os.environ["POP3_PORT"]); SPORT = int(os.environ["POP3S_PORT"])
USER = "alice@example.test"; PW = "alice-secret"
IR = base64.b64encode(b"\0" + USER.encode() + b"\0" + PW.encode()).decode()
def caps(p):
    return sorted((k + " " + " ".join(v)).strip() for k, v in p.capa().items())
def answers(sock):
    """Everything the server sends until it closes, as lines."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode().split("\r\n")[:-1]
        data += chunk
"#;
    s.python_ok(&format!("{prelude}\n{script}"))
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// How many of `lines` contain `needle`.
fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn plain_stls_and_pop3s_logins_are_served_by_moat_pop3d() {
    let s = stack_with_mail(4);
    let login_pid = s
        .pid_of("moat-pop3-login")
        .expect("moat-pop3-login running");
    // Port 110's equivalent in plaintext on loopback: CAPA before and after the login as from
    // one process, and the client's socket itself is moat-pop3d's after the login.
    let mut p = Pop::connect(s.pop3);
    assert_eq!(p.capa(), BEFORE_LOGIN);
    let r = p.login(ALICE, PW);
    assert!(
        r.starts_with("+OK logged in, maildrop has 4 messages ("),
        "{r}"
    );
    assert_eq!(p.capa(), AFTER_LOGIN);
    served_by(&s, s.pop3, p.port(), "moat-pop3d", "moat-pop3-login");
    assert!(p.cmd("RETR 1").starts_with("+OK"));
    assert!(p.rest().iter().any(|l| l == "Subject: message 1"));
    assert_eq!(p.cmd("DELE 1"), "+OK message 1 deleted");
    assert_eq!(p.cmd("QUIT"), "+OK mx.example.test signing off");
    assert!(p.closed());
    assert_eq!(s.messages(ALICE).len(), 3, "the deletion is committed");

    // STLS, then implicit TLS with AUTH PLAIN with and without an initial response.
    let text = python(
        &s,
        r#"
p = poplib.POP3("127.0.0.1", PORT, timeout=30)
print("stls caps", caps(p))
p.stls(context=ctx)
print("tls caps", caps(p))
p.user(USER); print("pass", p.pass_(PW).decode())
print("after caps", caps(p))
print("stat", p.stat())
print("retr", b"Subject: message 2" in p.retr(1)[1])
print("dele", p.dele(1).decode()); print("quit", p.quit().decode())

p = poplib.POP3_SSL("127.0.0.1", SPORT, context=ctx, timeout=30)
print("ssl caps", caps(p))
print("auth ir", p._shortcmd("AUTH PLAIN " + IR).decode())
print("stat", p.stat())
print("retr", b"Subject: message 3" in p.retr(1)[1])
print("dele", p.dele(1).decode()); print("quit", p.quit().decode())

p = poplib.POP3_SSL("127.0.0.1", SPORT, context=ctx, timeout=30)
print("auth", p._shortcmd("AUTH PLAIN").decode().strip())
print("auth continued", p._shortcmd(IR).decode())
print("stat", p.stat())
print("retr", b"Subject: message 4" in p.retr(1)[1])
print("dele", p.dele(1).decode()); print("quit", p.quit().decode())
"#,
    );
    let before = "['AUTH-RESP-CODE', 'IMPLEMENTATION Moat', 'PIPELINING', 'RESP-CODES', \
                  'SASL PLAIN', 'STLS', 'TOP', 'UIDL', 'USER']";
    let tls = "['AUTH-RESP-CODE', 'IMPLEMENTATION Moat', 'PIPELINING', 'RESP-CODES', \
               'SASL PLAIN', 'TOP', 'UIDL', 'USER']";
    let after = "['AUTH-RESP-CODE', 'IMPLEMENTATION Moat', 'PIPELINING', 'RESP-CODES', 'TOP', \
                 'UIDL']";
    for want in [
        format!("stls caps {before}"),
        format!("tls caps {tls}"),
        "pass +OK logged in, maildrop has 3 messages (".into(),
        format!("after caps {after}"),
        "stat (3, ".into(),
        format!("ssl caps {tls}"),
        "auth ir +OK logged in, maildrop has 2 messages (".into(),
        "stat (2, ".into(),
        "auth +".into(),
        "auth continued +OK logged in, maildrop has 1 messages (".into(),
        "stat (1, ".into(),
    ] {
        assert!(text.contains(&want), "no {want:?} in:\n{text}");
    }
    assert_eq!(text.matches("retr True").count(), 3, "{text}");
    assert_eq!(
        text.matches("dele +OK message 1 deleted").count(),
        3,
        "{text}"
    );
    assert_eq!(
        text.matches("quit +OK mx.example.test signing off").count(),
        3,
        "{text}"
    );
    assert!(
        s.messages(ALICE).is_empty(),
        "deletions committed:\n{}",
        s.log()
    );

    // The login process handed every session over (the TLS ones through its relay, logged
    // when the relay ends) and moat-pop3d opened the maildrops; the login process never did.
    let relayed = |s: &Stack| {
        count(
            &s.log_of("moat-pop3-login"),
            "handed to the mail process, TLS relayed",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while relayed(&s) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let login = s.log_of("moat-pop3-login");
    let pop3d = s.log_of("moat-pop3d");
    assert_eq!(relayed(&s), 3, "{login:#?}");
    assert!(has(&login, "handed to the mail process"), "{login:#?}");
    assert!(!has(&login, "logged in ("), "{login:#?}");
    assert_eq!(
        count(&pop3d, &format!("{ALICE} logged in (TLS)")),
        3,
        "{pop3d:#?}"
    );
    assert!(
        has(&pop3d, &format!("{ALICE} logged in (plaintext)")),
        "{pop3d:#?}"
    );
    assert_eq!(
        s.pid_of("moat-pop3-login"),
        Some(login_pid),
        "one login process served everything"
    );
}

#[test]
fn commands_pipelined_with_the_login_are_all_answered() {
    let s = stack_with_mail(3);
    let stat = stat(&s);
    let octets = stat.rsplit(' ').next().unwrap_or_default().to_string();
    assert!(stat.starts_with("+OK 3 "), "{stat}");

    // Plaintext: the whole conversation in one write. moat-pop3d gets the socket and the bytes
    // moat-pop3-login had read past PASS, and answers them in order.
    let mut p = Pop::connect(s.pop3);
    assert!(p.capa().contains(&"PIPELINING".to_string()));
    p.send(
        format!("USER {ALICE}\r\nPASS {PW}\r\nSTAT\r\nLIST\r\nUIDL 2\r\nNOOP\r\nRSET\r\nQUIT\r\n")
            .as_bytes(),
    );
    assert_eq!(p.line(), "+OK send PASS");
    assert_eq!(
        p.line(),
        format!("+OK logged in, maildrop has 3 messages ({octets} octets)")
    );
    assert_eq!(p.line(), stat);
    assert_eq!(p.line(), format!("+OK 3 messages ({octets} octets)"));
    assert_eq!(p.rest().len(), 3);
    assert!(p.line().starts_with("+OK 2 "));
    assert_eq!(p.line(), "+OK");
    assert_eq!(
        p.line(),
        format!("+OK maildrop has 3 messages ({octets} octets)")
    );
    assert_eq!(p.line(), "+OK mx.example.test signing off");
    assert!(p.closed());

    // AUTH PLAIN without an initial response, the response and 800 NOOPs (more than one read
    // of the login process: part travels as pending bytes, the rest stays in the socket),
    // then a deletion.
    let ir = "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1zZWNyZXQ=";
    let mut p = Pop::connect(s.pop3);
    p.send(
        format!(
            "AUTH PLAIN\r\n{ir}\r\n{}DELE 3\r\nQUIT\r\n",
            "NOOP\r\n".repeat(800)
        )
        .as_bytes(),
    );
    assert_eq!(p.line(), "+");
    assert!(
        p.line()
            .starts_with("+OK logged in, maildrop has 3 messages")
    );
    for i in 0..800 {
        assert_eq!(p.line(), "+OK", "NOOP {i}");
    }
    assert_eq!(p.line(), "+OK message 3 deleted");
    assert_eq!(p.line(), "+OK mx.example.test signing off");
    assert!(p.closed());
    assert_eq!(s.messages(ALICE).len(), 2);

    // Over TLS (995 and STLS): the same through the login process's relay.
    let text = python(
        &s,
        r#"
def conversation(sock, data):
    sock.sendall(data)
    return answers(sock)
S = ctx.wrap_socket(socket.create_connection(("127.0.0.1", SPORT), timeout=30))
print(conversation(S, ("USER %s\r\nPASS %s\r\nSTAT\r\nUIDL\r\nQUIT\r\n" % (USER, PW)).encode()))
S = ctx.wrap_socket(socket.create_connection(("127.0.0.1", SPORT), timeout=30))
r = conversation(S, ("AUTH PLAIN %s\r\n" % IR + "NOOP\r\n" * 800 + "DELE 1\r\nQUIT\r\n").encode())
print(len(r), r.count("+OK "), r[-2:])
c = socket.create_connection(("127.0.0.1", PORT), timeout=30)
f = c.makefile("rb")
f.readline(); c.sendall(b"STLS\r\n"); print(f.readline())
S = ctx.wrap_socket(c)
print(conversation(S, ("USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" % (USER, PW)).encode()))
"#,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() == 4, "{text}");
    assert!(
        lines[0].starts_with(
            "['+OK mx.example.test Moat POP3 server ready', '+OK send PASS', '+OK logged in, \
             maildrop has 2 messages ("
        ) && lines[0].contains("', '+OK 2 ")
            && lines[0].contains("', '+OK 2 messages (")
            && lines[0].ends_with("', '.', '+OK mx.example.test signing off']"),
        "{text}"
    );
    // The greeting, the login, 800 NOOPs, DELE, QUIT.
    assert_eq!(
        lines[1], "804 800 ['+OK message 1 deleted', '+OK mx.example.test signing off']",
        "{text}"
    );
    assert_eq!(lines[2], "b'+OK begin TLS negotiation\\r\\n'", "{text}");
    assert!(
        lines[3].starts_with("['+OK send PASS', '+OK logged in, maildrop has 1 messages (")
            && lines[3].ends_with("', '+OK mx.example.test signing off']"),
        "{text}"
    );
    assert_eq!(s.messages(ALICE).len(), 1);
}

#[test]
fn failed_logins_stay_in_moat_pop3_login() {
    let s = stack_with_mail(1);
    // A wrong password, then a wrong AUTH PLAIN: refused by the login process, and the session
    // goes on there (the CAPA is still the one before a login).
    let mut p = Pop::connect(s.pop3);
    let port = p.port();
    assert_eq!(p.login(ALICE, "wrong"), "-ERR [AUTH] authentication failed");
    let bad = "AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==";
    assert_eq!(
        p.cmd(&format!("AUTH PLAIN {bad}")),
        "-ERR [AUTH] authentication failed"
    );
    assert_eq!(p.capa(), BEFORE_LOGIN);
    assert_eq!(p.cmd("STAT"), "-ERR log in first");
    served_by(&s, s.pop3, port, "moat-pop3-login", "moat-pop3d");
    assert_eq!(p.cmd("QUIT"), "+OK mx.example.test signing off");
    assert!(p.closed());
    let who = format!("127.0.0.1:{port}:");
    let login = s.log_of("moat-pop3-login");
    assert_eq!(
        count(
            &login,
            &format!("{who} authentication failed for \"{ALICE}\"")
        ),
        2,
        "{login:#?}"
    );
    assert!(
        !has(&s.log_of("moat-pop3d"), &who),
        "moat-pop3d never saw the client:\n{}",
        s.log()
    );

    // A wrong password, then the right one on the same connection: handed over then.
    let mut p = Pop::connect(s.pop3);
    assert_eq!(p.login(ALICE, "wrong"), "-ERR [AUTH] authentication failed");
    assert!(
        p.login(ALICE, PW)
            .starts_with("+OK logged in, maildrop has 1 messages")
    );
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
    // A second POP3 session for the maildrop: the same [IN-USE] as from one process, then
    // moat-pop3d ends the connection (it serves only logged-in sessions).
    let mut q = Pop::connect(s.pop3);
    assert_eq!(
        q.login(ALICE, PW),
        "-ERR [IN-USE] the maildrop is in use by another POP3 session"
    );
    assert!(q.closed());
    assert_eq!(p.cmd("QUIT"), "+OK mx.example.test signing off");
    // And moat-auth's throttling still reaches the client through the login process.
    let mut r = Pop::connect(s.pop3);
    let mut answers = Vec::new();
    for i in 0..8 {
        answers.push(r.login(ALICE, &format!("wrong-{i}")));
    }
    assert!(
        answers.iter().any(|a| a.starts_with("-ERR [LOGIN-DELAY]")),
        "{answers:?}"
    );
    assert!(!answers.iter().any(|a| a.starts_with("+OK")), "{answers:?}");
}

/// The wait the supervisor announced at moat-pop3d's last exit, in seconds.
fn last_backoff(s: &Stack) -> Option<u64> {
    s.log()
        .lines()
        .rev()
        .find(|l| l.contains("moat-pop3d exited"))?
        .rsplit_once("restarting in ")?
        .1
        .trim_end_matches(" s")
        .parse()
        .ok()
}

#[test]
fn a_killed_moat_pop3d_never_leaves_a_login_hanging() {
    let s = stack_with_mail(2);
    s.add_user("bob@example.test", "bob-secret");
    let pop3d = s.pid_of("moat-pop3d").expect("moat-pop3d running");

    // Open sessions: alice's in plaintext with a deletion pending (its socket is moat-pop3d's)
    // and bob's over TLS (moat-pop3-login's relay).
    let mut plain = Pop::connect(s.pop3);
    assert!(plain.login(ALICE, PW).starts_with("+OK logged in"));
    assert_eq!(plain.cmd("DELE 1"), "+OK message 1 deleted");
    let mut tls = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import os, poplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx, timeout=30)
print(p.sock.getsockname()[1])
p.user("bob@example.test"); p.pass_("bob-secret")
print(p.noop().decode()); sys.stdout.flush()
sys.stdin.readline()
try:
    print("after kill", p.noop())
except (poplib.error_proto, OSError) as e:
    print("after kill: ended", type(e).__name__)
"#,
        )
        .env("POP3S_PORT", s.pop3s.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut tls_out = BufReader::new(tls.stdout.take().expect("stdout"));
    let mut line = String::new();
    tls_out.read_line(&mut line).expect("read");
    let tls_port: u16 = line.trim().parse().expect("port");
    line.clear();
    tls_out.read_line(&mut line).expect("read");
    assert_eq!(line, "+OK \n");
    served_by(&s, s.pop3s, tls_port, "moat-pop3-login", "moat-pop3d");
    served_by(&s, s.pop3, plain.port(), "moat-pop3d", "moat-pop3-login");

    signal(pop3d, Signal::KILL);
    // Both sessions end at once, and nothing is deleted.
    assert!(plain.closed());
    if let Some(mut input) = tls.stdin.take() {
        input.write_all(b"go\n").expect("write");
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut tls_out, &mut rest).expect("read");
    assert!(tls.wait().expect("python3").success(), "{rest}");
    assert!(rest.contains("after kill: ended"), "{rest}");
    assert_eq!(s.messages(ALICE).len(), 2);

    // A login right after the kill waits in the handoff socket, which the supervisor keeps
    // bound, and is served by the restarted moat-pop3d.
    let start = Instant::now();
    let mut p = Pop::connect(s.pop3);
    let r = p.login(ALICE, PW);
    assert!(
        r.starts_with("+OK logged in, maildrop has 2 messages"),
        "{r}\n{}",
        s.log()
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(p.cmd("QUIT"), "+OK mx.example.test signing off");

    // Killed again and again, moat-pop3d stays away longer than a hand-off may wait: a login
    // then gets -ERR [SYS/TEMP] from moat-pop3-login in bounded time, not a hang.
    let mut old = s.wait_restarted("moat-pop3d", pop3d, Duration::from_secs(30));
    loop {
        signal(old, Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.pid_of("moat-pop3d") == Some(old) {
            assert!(Instant::now() < deadline, "moat-pop3d survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        if last_backoff(&s).is_some_and(|secs| secs >= 16) {
            break;
        }
        old = s.wait_restarted("moat-pop3d", old, Duration::from_secs(30));
    }
    let mut p = Pop::connect(s.pop3);
    let start = Instant::now();
    assert_eq!(p.cmd(&format!("USER {ALICE}")), "+OK send PASS");
    assert_eq!(
        p.cmd(&format!("PASS {PW}")),
        "-ERR [SYS/TEMP] temporary failure, try again later"
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        has(
            &s.log_of("moat-pop3-login"),
            &format!("{ALICE}: cannot hand the session over")
        ),
        "{}",
        s.log()
    );
    // The supervisor's restart brings the service back, on the same connection too.
    s.wait_restarted("moat-pop3d", old, Duration::from_secs(30));
    assert!(
        p.login(ALICE, PW)
            .starts_with("+OK logged in, maildrop has 2 messages"),
        "{}",
        s.log()
    );
    assert_eq!(p.cmd("DELE 2"), "+OK message 2 deleted");
    assert_eq!(p.cmd("QUIT"), "+OK mx.example.test signing off");
    assert_eq!(s.messages(ALICE).len(), 1);
    assert!(stat(&s).starts_with("+OK 1 "));
}

#[test]
fn getmail_over_pop3s_fetches_and_deletes_through_the_relay() {
    let s = stack_with_mail(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (local, as_user) = getmail::maildir(dir);
    // The certificate is checked: getmail talks to moat-pop3-login's TLS, then the relay.
    let rc = dir.join("getmailrc");
    std::fs::write(
        &rc,
        format!(
            "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = {port}\n\
             username = {ALICE}\npassword = {PW}\nca_certs = {ca}\nssl_cert_hostname = localhost\n\n\
             [destination]\ntype = Maildir\npath = {path}/\n{as_user}\n\
             [options]\nverbose = 1\nread_all = false\ndelete = true\n",
            port = s.pop3s,
            ca = s.cert_path().display(),
            path = local.display()
        ),
    )
    .expect("write getmailrc");
    let out = getmail::run(dir, &rc);
    assert!(
        out.status.success(),
        "getmail: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let fetched = getmail::fetched(&local);
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    for i in 1..=2 {
        assert!(
            fetched
                .iter()
                .any(|m| m.contains(&format!("Subject: message {i}"))),
            "{fetched:?}"
        );
    }
    assert!(s.messages(ALICE).is_empty(), "deleted on the server");
    assert!(
        has(
            &s.log_of("moat-pop3d"),
            &format!("{ALICE} logged in (TLS), 2 messages")
        ),
        "{}",
        s.log()
    );
}
