//! The IMAP login split (issue #9, docs/IMAP.md "Processes") end to end with the real
//! supervisor: moat-imap-login greets, does TLS and checks logins with moat-auth; a logged-in
//! client is handed to moat-imapd, which answers the login and serves the session. Clients:
//! Python's imaplib and ssl, curl, and a raw socket where the exact bytes of one write matter.
//! Who serves a connection is read from the log (each line names its program and pid) and, as
//! root, from the processes' descriptors (the children are not dumpable, so only root can
//! read another one's /proc/PID/fd).

use std::time::{Duration, Instant};

use moat_tests::Stack;
use moat_tests::imap_raw::Raw;
use moat_tests::served::served_by;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

/// The capabilities after a login, on every port: the same as from one process.
const AFTER_LOGIN: &str = "[CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID ENABLE NAMESPACE CHILDREN \
     SPECIAL-USE LIST-EXTENDED LIST-STATUS STATUS=SIZE QUOTA IDLE UNSELECT UIDPLUS MOVE CONDSTORE \
     ESEARCH BINARY APPENDLIMIT=36700160] Logged in.";

/// The stack with alice and one message in her INBOX.
fn stack() -> Stack {
    let s = Stack::start_with_user("", ALICE, PW);
    s.deliver(
        "x@remote.example",
        ALICE,
        &format!("From: x@remote.example\r\nTo: {ALICE}\r\nSubject: m1\r\n\r\nbody 1\r\n"),
    );
    s
}

/// Runs a Python script against the stack and returns its output; it must succeed.
fn python(s: &Stack, script: &str) -> String {
    let prelude = r#"
import base64, imaplib, os, smtplib, socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
PORT = int(os.environ["IMAP_PORT"]); SPORT = int(os.environ["IMAPS_PORT"])
USER = "alice@example.test"; PW = "alice-secret"
IR = base64.b64encode(b"\0" + USER.encode() + b"\0" + PW.encode()).decode()
def caps(M):
    return " ".join(sorted(M.capabilities))
def until(f, tag):
    """The lines up to the one tagged `tag` (or the end of the stream)."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line.decode().rstrip("\r\n"))
        if line.startswith(tag.encode() + b" "):
            return lines
def idle(M, tag, label):
    """IDLE on M while a message comes in over SMTP: what M saw of it, and the end of IDLE."""
    M.send(tag.encode() + b" IDLE\r\n"); print(label + "idle", M.readline())
    c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
    c.sendmail("x@remote.example", [USER], ("Subject: during %sidle\r\n\r\nnew\r\n" % label).encode()); c.quit()
    while True:
        line = M.readline()
        if b"EXISTS" in line or not line:
            print(label + "idle saw", line); break
    M.send(b"DONE\r\n"); print(label + "done", until(M.file, tag)[-1])
"#;
    s.python_ok(&format!("{prelude}\n{script}"))
}

fn has(text: &str, needle: &str) {
    assert!(text.contains(needle), "no {needle:?} in:\n{text}");
}

#[test]
fn plain_starttls_and_tls_logins_are_served_by_moat_imapd() {
    let s = stack();
    let text = python(
        &s,
        r#"
# Port 143 in plaintext (loopback), LOGIN; SELECT, FETCH, APPEND and IDLE through the hand-off.
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
print("plain caps", caps(M))
typ, data = M.login(USER, PW); print("plain login", typ, data[0].decode())
print("plain port", M.sock.getsockname()[1])
print("select", M.select("INBOX"))
typ, data = M.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); print("fetch", typ, data[0][1])
typ, data = M.append("INBOX", "(\\Seen)", None, b"Subject: appended\r\n\r\nhi\r\n"); print("append", typ, data)
idle(M, "i", "")
print("logout", M.logout()[0])

# STARTTLS, then AUTHENTICATE PLAIN with a continuation (imaplib's own way).
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
M.starttls(ssl_context=ctx)
print("starttls caps", caps(M))
typ, data = M.authenticate("PLAIN", lambda _: b"\0" + USER.encode() + b"\0" + PW.encode())
print("starttls login", typ, data[0].decode())
print("starttls select", M.select("INBOX")[0])
typ, data = M.fetch("2", "(FLAGS BODY.PEEK[TEXT])"); print("starttls fetch", typ, data[0])
print("logout", M.logout()[0])

# Port 993, AUTHENTICATE PLAIN with an initial response (SASL-IR); IDLE through the relay.
S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=ctx, timeout=30)
print("tls caps", caps(S))
typ, data = S._simple_command("AUTHENTICATE", "PLAIN", IR); S.state = "AUTH"
print("tls login", typ, data[0].decode())
print("tls select", S.select("INBOX"))
typ, data = S.append("INBOX", None, None, b"Subject: over tls\r\n\r\n" + b"x" * 100000 + b"\r\n"); print("tls append", typ, data)
typ, data = S.fetch("4", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); print("tls fetch", typ, data[0])
idle(S, "j", "tls ")
print("logout", S.logout()[0])
"#,
    );
    let before = "AUTH=PLAIN CHILDREN ENABLE ID IMAP4REV1 LIST-EXTENDED LIST-STATUS LITERAL+ \
                  NAMESPACE QUOTA SASL-IR SPECIAL-USE";
    has(
        &text,
        &format!("plain caps {before} STARTTLS STATUS=SIZE\n"),
    );
    has(&text, &format!("starttls caps {before} STATUS=SIZE\n"));
    has(&text, &format!("tls caps {before} STATUS=SIZE\n"));
    for how in ["plain login", "starttls login", "tls login"] {
        has(&text, &format!("{how} OK {AFTER_LOGIN}\n"));
    }
    has(&text, "select ('OK', [b'1'])");
    has(&text, "fetch OK b'Subject: m1\\r\\n\\r\\n'");
    has(&text, "append OK [b'[APPENDUID ");
    has(&text, "idle b'+ idling\\r\\n'");
    has(&text, "idle saw b'* 3 EXISTS\\r\\n'");
    has(&text, "done i OK IDLE terminated.");
    has(&text, "starttls select OK");
    has(
        &text,
        "starttls fetch OK (b'2 (FLAGS (\\\\Seen) BODY[TEXT] {4}', b'hi\\r\\n')",
    );
    has(&text, "tls select ('OK', [b'3'])");
    has(&text, "tls append OK [b'[APPENDUID ");
    has(
        &text,
        "tls fetch OK (b'4 (RFC822.SIZE 100023 BODY[HEADER.FIELDS (SUBJECT)] {21}', b'Subject: over tls\\r\\n\\r\\n')",
    );
    has(&text, "tls idle saw b'* 5 EXISTS\\r\\n'");
    has(&text, "tls done j OK IDLE terminated.");
    assert_eq!(text.matches("logout BYE").count(), 3, "{text}");

    // moat-imapd logged each user in (with the client's address); moat-imap-login handed them
    // over and logged nobody in itself.
    let port: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("plain port "))
        .and_then(|p| p.parse().ok())
        .expect("the plain client's port");
    let imapd = s.log_of("moat-imapd").join("\n");
    has(
        &imapd,
        &format!("127.0.0.1:{port}: {ALICE} logged in (plaintext)"),
    );
    assert_eq!(
        imapd.matches(&format!("{ALICE} logged in (TLS)")).count(),
        2,
        "{imapd}"
    );
    let login = s.log_of("moat-imap-login").join("\n");
    has(
        &login,
        &format!("127.0.0.1:{port}: {ALICE}: handed to the mail process"),
    );
    assert_eq!(login.matches("TLS relayed").count(), 2, "{login}");
    assert!(!login.contains("logged in ("), "{login}");

    // curl, a client nobody here wrote, over 993: LIST through the relay.
    let out = std::process::Command::new("curl")
        .args(["-k", "-s", "--max-time", "30", "-u"])
        .arg(format!("{ALICE}:{PW}"))
        .arg(format!("imaps://127.0.0.1:{}/", s.imaps))
        .output()
        .expect("run curl");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl: {listing} {out:?}");
    assert!(listing.contains("\"/\" INBOX"), "{listing}");
}

#[test]
fn pipelined_commands_follow_the_login_and_failures_stay_in_moat_imap_login() {
    let s = stack();

    // A wrong password: refused by moat-imap-login, which still serves the connection;
    // moat-imapd never hears of it.
    let mut r = Raw::connect(s.imap);
    let port = r.port();
    let got = r.cmd("a", &format!("LOGIN {ALICE} wrong"));
    assert_eq!(got, ["a NO [AUTHENTICATIONFAILED] Authentication failed."]);
    // Refused: still moat-imap-login's.
    served_by(&s, s.imap, port, "moat-imap-login", "moat-imapd");
    let got = r.cmd("b", "CAPABILITY");
    assert!(got[0].ends_with(" AUTH=PLAIN"), "{got:?}");
    let client = format!("127.0.0.1:{port}:");
    assert!(
        s.log_of("moat-imapd").iter().all(|l| !l.contains(&client)),
        "{}",
        s.log()
    );
    has(
        &s.log_of("moat-imap-login").join("\n"),
        &format!("{client} authentication failed for \"{ALICE}\""),
    );

    // Then, in one write: a failed login, a command it leaves not logged in, a good login and
    // a SELECT. The bytes after the good login travel with the connection to moat-imapd.
    r.send(
        format!(
            "c LOGIN {ALICE} wrong\r\nd SELECT INBOX\r\ne LOGIN {ALICE} {PW}\r\n\
             f SELECT INBOX\r\ng FETCH 1 (FLAGS)\r\n"
        )
        .as_bytes(),
    );
    let got = r.until("g");
    assert_eq!(got[0], "c NO [AUTHENTICATIONFAILED] Authentication failed.");
    assert_eq!(got[1], "d BAD Log in first.");
    assert_eq!(got[2], format!("e OK {AFTER_LOGIN}"));
    assert!(
        got.iter()
            .any(|l| l.starts_with("f OK [READ-WRITE] SELECT completed")),
        "{got:?}"
    );
    assert_eq!(
        got.last().map(String::as_str),
        Some("g OK FETCH completed.")
    );
    // The connection is moat-imapd's now (the socket itself was passed).
    served_by(&s, s.imap, port, "moat-imapd", "moat-imap-login");
    has(
        &s.log_of("moat-imapd").join("\n"),
        &format!("{client} {ALICE} logged in (plaintext)"),
    );
    assert_eq!(
        r.cmd("h", "LOGOUT").last().map(String::as_str),
        Some("h OK LOGOUT completed.")
    );

    // Pipelined after LOGIN with LITERAL+ literals, after AUTHENTICATE with SASL-IR and after
    // a continuation; over plaintext and TLS.
    let text = python(
        &s,
        r#"
def session(tls, first, rest):
    raw = socket.create_connection(("127.0.0.1", SPORT if tls else PORT), timeout=30)
    c = ctx.wrap_socket(raw) if tls else raw
    f = c.makefile("rb")
    f.readline()
    c.sendall(first)
    if rest is not None:
        print("continuation", f.readline())
        c.sendall(rest)
    lines = until(f, "z")
    c.sendall(b"q LOGOUT\r\n")
    return lines + until(f, "q")
lit = "a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(USER), USER, len(PW), PW)
for tls in (False, True):
    for name, first, rest in (
        ("literal", (lit + "z SELECT INBOX\r\n").encode(), None),
        ("sasl-ir", ("a AUTHENTICATE PLAIN " + IR + "\r\nb SELECT INBOX\r\nz FETCH 1 (UID)\r\n").encode(), None),
        ("continued", b"a AUTHENTICATE PLAIN\r\n", (IR + "\r\nz STATUS INBOX (MESSAGES)\r\n").encode()),
    ):
        for line in session(tls, first, rest):
            print("tls" if tls else "plain", name, line)
"#,
    );
    for tls in ["plain", "tls"] {
        has(&text, &format!("{tls} literal a OK {AFTER_LOGIN}\n"));
        has(
            &text,
            &format!("{tls} literal z OK [READ-WRITE] SELECT completed"),
        );
        has(&text, &format!("{tls} sasl-ir a OK {AFTER_LOGIN}\n"));
        has(
            &text,
            &format!("{tls} sasl-ir b OK [READ-WRITE] SELECT completed"),
        );
        has(&text, &format!("{tls} sasl-ir * 1 FETCH (UID 1)\n"));
        has(&text, &format!("{tls} sasl-ir z OK FETCH completed."));
        has(&text, &format!("{tls} continued a OK {AFTER_LOGIN}\n"));
        has(
            &text,
            &format!("{tls} continued * STATUS INBOX (MESSAGES 1)\n"),
        );
        has(&text, &format!("{tls} continued z OK STATUS completed."));
        has(&text, &format!("{tls} continued q OK LOGOUT completed."));
    }
    assert_eq!(
        text.matches("continuation b'+ \\r\\n'").count(),
        2,
        "{text}"
    );
}

/// One login with imaplib on the plain port, then SELECT when it succeeded: the lines printed
/// and how long the login took.
fn try_login(s: &Stack) -> (String, Duration) {
    let start = Instant::now();
    let text = python(
        s,
        r#"
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=60)
typ, data = M._simple_command("LOGIN", USER, PW)
print("login", typ, data)
if typ == "OK":
    M.state = "AUTH"
    print("select", M.select("INBOX")[0])
else:
    print("still served", M.capability()[0])
M.logout()
"#,
    );
    (text, start.elapsed())
}

#[test]
fn a_dead_or_stuck_moat_imapd_never_leaves_a_login_hanging() {
    let s = stack();
    let imapd = s.pid_of("moat-imapd").expect("moat-imapd running");

    // A plain session's socket is moat-imapd's: it ends with the process. A TLS session's
    // relay ends too, with moat-imap-login's close_notify.
    let mut plain = Raw::login(s.imap, ALICE, PW);
    assert_eq!(plain.cmd("n", "NOOP"), ["n OK NOOP completed."]);
    let script = r#"
import signal, sys
S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=ctx, timeout=60)
S.login(USER, PW)
print("tls select", S.select("INBOX")[0]); sys.stdout.flush()
sys.stdin.readline()
try:
    print("after kill", S.noop())
except (imaplib.IMAP4.abort, OSError) as e:
    print("after kill: ended")
"#;
    let mut tls = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import imaplib, os, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; \
             ctx.verify_mode = ssl.CERT_NONE
SPORT = int(os.environ['IMAPS_PORT'])
\
             USER = {ALICE:?}; PW = {PW:?}
{script}"
        ))
        .env("IMAPS_PORT", s.imaps.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut tls_out = std::io::BufReader::new(tls.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut tls_out, &mut line).expect("read");
    assert_eq!(line, "tls select OK\n");

    moat_tests::signal(imapd, rustix::process::Signal::KILL);
    assert!(plain.closed());
    drop(
        tls.stdin
            .take()
            .map(|mut i| std::io::Write::write_all(&mut i, b"go\n")),
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut tls_out, &mut rest).expect("read");
    assert!(tls.wait().is_ok_and(|st| st.success()), "{rest}");
    assert!(rest.contains("after kill: ended"), "{rest}");

    // A login right after the kill waits for the supervisor's restart (the handoff socket
    // stays bound) and is served, or is refused in words: never a hang.
    let (text, took) = try_login(&s);
    assert!(
        text.contains("select OK") || text.contains("[UNAVAILABLE] Temporary failure"),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}: {text}");
    let again = s.wait_restarted("moat-imapd", imapd, Duration::from_secs(60));
    let (text, _) = try_login(&s);
    has(&text, "select OK");

    // A moat-imapd that takes no client (stopped): the login is refused with
    // `NO [UNAVAILABLE]` once the hand-off times out, the client stays with moat-imap-login,
    // and service is back as soon as moat-imapd is.
    moat_tests::signal(again, rustix::process::Signal::STOP);
    let (text, took) = try_login(&s);
    moat_tests::signal(again, rustix::process::Signal::CONT);
    has(
        &text,
        "login NO [b'[UNAVAILABLE] Temporary failure, try again later.']",
    );
    has(&text, "still served OK");
    assert!(took < Duration::from_secs(20), "{took:?}: {text}");
    has(
        &s.log_of("moat-imap-login").join("\n"),
        "cannot hand the session over",
    );
    let (text, _) = try_login(&s);
    has(&text, "select OK");
}
