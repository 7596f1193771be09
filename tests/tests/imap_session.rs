//! moat-imapd end to end (not-authenticated and authenticated states): real clients (Python's
//! imaplib, curl) for capabilities, STARTTLS, logins, mailboxes with non-ASCII names,
//! LIST-EXTENDED, STATUS and quotas; a raw socket where exact bytes matter (hostile input).
//! What a client sends before login is moat-imap-login's: its memory, threads and descriptors
//! are measured there, and moat-imapd must neither hold such a connection nor grow.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use moat_tests::Stack;
use moat_tests::imap_raw::status_kib;
use moat_tests::served::{self, tcp_clients};

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

fn stack(extra: &str) -> Stack {
    Stack::start_with_user(extra, ALICE, PW)
}

/// Delivers message `n` to alice through SMTP and waits for it.
fn deliver(s: &Stack, n: usize) {
    s.deliver(
        "x@remote.example",
        ALICE,
        &format!("From: x@remote.example\r\nTo: {ALICE}\r\nSubject: m{n}\r\n\r\nbody {n}\r\n"),
    );
}

/// Runs a Python script against the stack and returns its output; it must succeed.
fn python(s: &Stack, script: &str) -> String {
    let prelude = r#"
import base64, imaplib, os, socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
PORT = int(os.environ["IMAP_PORT"]); SPORT = int(os.environ["IMAPS_PORT"])
USER = "alice@example.test"; PW = "alice-secret"
for c in ("ID", "ENABLE", "NAMESPACE", "GETQUOTAROOT"):
    imaplib.Commands.setdefault(c, ("NONAUTH", "AUTH", "SELECTED"))
def mutf7(s):
    out, run = [], []
    def flush():
        if run:
            b = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append("&" + b + "-"); run.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush(); out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)
def untagged(M, name):
    return [x.decode() if isinstance(x, bytes) else repr(x) for x in M.untagged_responses.pop(name, [])]
"#;
    s.python_ok(&format!("{prelude}\n{script}"))
}

#[test]
fn starttls_logins_mailboxes_and_extensions() {
    let s = stack("");
    deliver(&s, 1);
    s.admin(&["user", "quota", ALICE, "5M"], "");
    deliver(&s, 2);
    // The admin's new quota reaches GETQUOTAROOT at the next login, with no delivery in between
    // (moat-local's `maildirsize` still says 5M): the login applies moat-auth's answer.
    s.admin(&["user", "quota", ALICE, "10M"], "");
    let text = python(
        &s,
        r#"
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
print("plain caps", sorted(M.capabilities))
M.starttls(ssl_context=ctx)
print("tls caps", sorted(M.capabilities))
try:
    M.login(USER, "wrong")
    print("wrong password accepted")
except imaplib.IMAP4.error as e:
    print("bad login:", e)
print("login", M.login(USER, PW))
uml = "\u00dcbersicht/K\u00fcche & Bad"
typ, _ = M.create('"' + mutf7(uml) + '"'); print("create", typ)
typ, _ = M.create('"' + mutf7("\u65e5\u672c\u8a9e") + '"'); print("create2", typ)
print("create dot", M.create("a.b"))
typ, data = M.list('""', '*')
print("list", typ); [print(" ", d.decode()) for d in data]
typ, _ = M.rename('"' + mutf7("\u00dcbersicht") + '"', '"' + mutf7("Archiv \u00e4lter") + '"'); print("rename", typ)
typ, _ = M.subscribe('"' + mutf7("Archiv \u00e4lter/K\u00fcche & Bad") + '"'); print("subscribe", typ)
typ, data = M.lsub('""', '*')
print("lsub", typ); [print(" ", d.decode()) for d in data]
typ, _ = M.delete('"' + mutf7("\u65e5\u672c\u8a9e") + '"'); print("delete", typ)
print("delete inbox", M.delete("INBOX")[0])
typ, data = M._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"', "RETURN", "(SUBSCRIBED STATUS (MESSAGES UNSEEN))")
print("xlist", typ)
[print("  L", d) for d in untagged(M, "LIST")]
[print("  S", d) for d in untagged(M, "STATUS")]
print("namespace", M.namespace())
typ, data = M._simple_command("ID", '("name" "imaplib")'); print("id", typ, untagged(M, "ID"))
typ, data = M._simple_command("ENABLE", "CONDSTORE"); print("enable", typ, untagged(M, "ENABLED"))
print("status", M.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"))
typ, data = M.getquotaroot("INBOX"); print("quotaroot", typ, data)
print("logout", M.logout())
"#,
    );
    let has = |needle: &str| {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    };
    // Loopback may log in without TLS by default: AUTH=PLAIN before TLS too.
    has(
        "plain caps ['AUTH=PLAIN', 'CHILDREN', 'ENABLE', 'ID', 'IMAP4REV1', 'LIST-EXTENDED', 'LIST-STATUS', 'LITERAL+', 'NAMESPACE', 'QUOTA', 'SASL-IR', 'SPECIAL-USE', 'STARTTLS', 'STATUS=SIZE']",
    );
    has(
        "tls caps ['AUTH=PLAIN', 'CHILDREN', 'ENABLE', 'ID', 'IMAP4REV1', 'LIST-EXTENDED', 'LIST-STATUS', 'LITERAL+', 'NAMESPACE', 'QUOTA', 'SASL-IR', 'SPECIAL-USE', 'STATUS=SIZE']",
    );
    has("bad login: b'[AUTHENTICATIONFAILED] Authentication failed.'");
    has("login ('OK', [b'[CAPABILITY IMAP4rev1 LITERAL+ ");
    has("create OK");
    has("create2 OK");
    has("create dot ('NO', [b\"[CANNOT] '.' is not allowed");
    has("(\\HasChildren) \"/\" &ANw-bersicht");
    has("(\\HasNoChildren) \"/\" \"&ANw-bersicht/K&APw-che &- Bad\"");
    has("(\\HasNoChildren) \"/\" &ZeVnLIqe-");
    has("(\\HasNoChildren \\Sent) \"/\" Sent");
    has("(\\HasNoChildren \\Trash) \"/\" Trash");
    has("rename OK");
    has("subscribe OK");
    has("() \"/\" \"Archiv &AOQ-lter/K&APw-che &- Bad\"");
    has("() \"/\" Drafts");
    has("delete OK");
    has("delete inbox NO");
    has("xlist OK");
    has("L (\\HasNoChildren \\Archive \\Subscribed) \"/\" Archive");
    has("S Archive (MESSAGES 0 UNSEEN 0)");
    has("namespace ('OK', [b'((\"\" \"/\")) NIL NIL'])");
    has("id OK ['(\"name\" \"Moat\")']");
    has("enable OK");
    has("status ('OK', [b'INBOX (MESSAGES 2 UNSEEN 2 UIDNEXT 3 UIDVALIDITY ");
    has("quotaroot OK [[b'INBOX \"\"'], [b'\"\" (STORAGE 1 10240)']]");
    has("logout ('BYE'");
    // Created on disk as Dovecot would name them.
    let md = s.maildir(ALICE);
    assert!(md.join(".Archiv &AOQ-lter.K&APw-che &- Bad").is_dir());
    assert!(md.join(".Drafts").is_dir() && md.join(".Junk").is_dir());
    let subs = std::fs::read_to_string(md.join("subscriptions")).expect("subscriptions");
    assert!(subs.starts_with("V\t2\n\n"), "{subs:?}");
    assert!(
        subs.contains("Archiv &AOQ-lter\tK&APw-che &- Bad\n"),
        "{subs:?}"
    );
}

#[test]
fn logindisabled_without_tls_sasl_ir_imaps_and_curl() {
    let s = stack("[imap]\nplaintext_on_loopback = false\n");
    let text = python(
        &s,
        r#"
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
print("plain caps", sorted(M.capabilities))
typ, data = M._simple_command("LOGIN", USER, PW)
print("plain login", typ, data)
# STARTTLS injection: a command pipelined after STARTTLS must never run.
raw = socket.create_connection(("127.0.0.1", PORT), timeout=30)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"a STARTTLS\r\nb LOGIN " + USER.encode() + b" " + PW.encode() + b"\r\n")
print("starttls", f.readline())
t = ctx.wrap_socket(raw)
tf = t.makefile("rb")
t.sendall(b"c CAPABILITY\r\n")
print("after tls", tf.readline(), tf.readline())
t.sendall(b"d LOGOUT\r\n")
print("logout", tf.readline(), tf.readline())
# IMAPS, AUTHENTICATE PLAIN with an initial response (SASL-IR).
S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=ctx, timeout=30)
print("ssl caps", sorted(S.capabilities))
ir = base64.b64encode(b"\0" + USER.encode() + b"\0" + PW.encode()).decode()
typ, data = S._simple_command("AUTHENTICATE", "PLAIN", ir)
print("sasl-ir", typ, data)
S.state = "AUTH"
print("list", S.list('""', "%")[0])
S.logout()
# AUTHENTICATE PLAIN with a continuation (imaplib's own way).
S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=ctx, timeout=30)
print("continuation", S.authenticate("PLAIN", lambda _: b"\0" + USER.encode() + b"\0" + PW.encode()))
S.logout()
"#,
    );
    let has = |needle: &str| {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    };
    has(
        "plain caps ['CHILDREN', 'ENABLE', 'ID', 'IMAP4REV1', 'LIST-EXTENDED', 'LIST-STATUS', 'LITERAL+', 'LOGINDISABLED', 'NAMESPACE', 'QUOTA', 'SASL-IR', 'SPECIAL-USE', 'STARTTLS', 'STATUS=SIZE']",
    );
    has("plain login NO [b'[PRIVACYREQUIRED]");
    has("starttls b'a OK Begin TLS negotiation now.\\r\\n'");
    has("after tls b'* CAPABILITY IMAP4rev1");
    has("AUTH=PLAIN\\r\\n' b'c OK CAPABILITY completed.\\r\\n'");
    has("logout b'* BYE Logging out.\\r\\n' b'd OK LOGOUT completed.\\r\\n'");
    has("ssl caps ['AUTH=PLAIN',");
    has("sasl-ir OK [b'[CAPABILITY IMAP4rev1 ");
    has("list OK");
    has("continuation ('OK', [b'[CAPABILITY IMAP4rev1 ");
    assert!(
        s.log().contains("dropped") && s.log().contains("bytes sent after STARTTLS"),
        "{}",
        s.log()
    );

    // curl, a client nobody here wrote, lists the mailboxes over IMAPS.
    let out = std::process::Command::new("curl")
        .args(["-k", "-s", "--max-time", "30", "-u"])
        .arg(format!("{ALICE}:{PW}"))
        .arg(format!("imaps://127.0.0.1:{}/", s.imaps))
        .output()
        .expect("run curl");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl: {listing} {:?}", out);
    for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("* LIST (") && l.ends_with(&format!("\"/\" {name}"))),
            "{name} in {listing}"
        );
    }

    // Wrong passwords until moat-auth throttles (last: it throttles this client IP too).
    let text = python(
        &s,
        r#"
for i in range(8):
    S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=ctx, timeout=30)
    try:
        S.login(USER, "wrong-%d" % i)
        print("accepted")
    except imaplib.IMAP4.error as e:
        print(e)
    S.logout()
"#,
    );
    assert!(text.contains("[AUTHENTICATIONFAILED]"), "{text}");
    assert!(
        text.contains("[UNAVAILABLE] Too many failed logins"),
        "{text}"
    );
    assert!(!text.contains("accepted"), "{text}");
}

/// A raw IMAP connection that shows the server's exact lines.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut r = Raw {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = r.line();
        assert!(greeting.starts_with("* OK [CAPABILITY"), "{greeting}");
        r
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line.trim_end().to_string()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends a command; returns every line up to and including the tagged one (or the end).
    fn cmd(&mut self, tag: &str, line: &str) -> Vec<String> {
        self.send(format!("{tag} {line}\r\n").as_bytes());
        self.until(tag)
    }

    fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return lines;
            }
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    fn login(port: u16) -> Raw {
        let mut r = Raw::connect(port);
        let got = r.cmd("l", &format!("LOGIN {ALICE} {PW}"));
        assert!(got.last().is_some_and(|l| l.starts_with("l OK")), "{got:?}");
        r
    }

    /// The client's port, to find which process holds the server's end.
    fn port(&self) -> u16 {
        self.writer.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// True once the server closed the connection.
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// Bytes a flooding client offers in one line without an end: far past any budget.
const FLOOD: usize = 64 << 20;

/// Sends up to `FLOOD` bytes of one endless line from a thread; the thread returns how many
/// were taken before the server closed the connection.
fn flood(mut w: TcpStream) -> std::thread::JoinHandle<usize> {
    w.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("write timeout");
    std::thread::spawn(move || {
        let chunk = [b'y'; 64 * 1024];
        let mut sent = 0;
        while sent < FLOOD && w.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    })
}

/// The pid of one of the stack's programs.
fn pid(s: &Stack, program: &str) -> u32 {
    s.pid_of(program)
        .unwrap_or_else(|| panic!("{program} running"))
}

/// Asserts that the server end of the connection from `client` is held by `program` and not
/// by the other IMAP process (as root; see `served::served_by`).
fn served_by(s: &Stack, client: u16, program: &str) {
    let other = if program == "moat-imapd" {
        "moat-imap-login"
    } else {
        "moat-imapd"
    };
    served::served_by(s, s.imap, client, program, other);
}

/// Asserts that moat-imapd serves no TCP connection at all (as root; see `tcp_clients`).
fn imapd_serves_nobody(s: &Stack) {
    if let Some(held) = tcp_clients(pid(s, "moat-imapd")) {
        assert!(held.is_empty(), "moat-imapd serves client ports {held:?}");
    }
}

#[test]
fn hostile_input_is_bounded_and_others_are_served() {
    let s = stack("");
    let (login, imapd) = (pid(&s, "moat-imap-login"), pid(&s, "moat-imapd"));
    let imapd_idle = status_kib(imapd, "VmRSS");
    let login_before = status_kib(login, "VmRSS");

    // Before login every byte is moat-imap-login's: moat-imapd never sees these clients.
    // A 4 GiB synchronising literal: refused, never requested, the session goes on.
    let mut a = Raw::connect(s.imap);
    a.send(b"a LOGIN {4294967295}\r\n");
    let l = a.line();
    assert!(l.starts_with("a BAD [TOOBIG]"), "{l}");
    assert_eq!(a.cmd("b", "NOOP"), vec!["b OK NOOP completed."]);
    served_by(&s, a.port(), "moat-imap-login");
    // The same as a non-synchronising literal (LITERAL+): it would come anyway, so BYE.
    a.send(b"c LOGIN {4294967295+}\r\n");
    let got = a.until("never");
    assert!(
        got.first().is_some_and(|l| l.starts_with("c BAD [TOOBIG]"))
            && got.iter().any(|l| l.starts_with("* BYE")),
        "{got:?}"
    );
    assert!(a.closed());

    // Before login the budget is 8 KiB: an endless line is cut there, not read to its end
    // nor kept in memory.
    let mut d = Raw::connect(s.imap);
    served_by(&s, d.port(), "moat-imap-login");
    let sender = flood(d.writer.try_clone().expect("clone"));
    let got = d.until("never");
    assert_eq!(
        got.last().map(String::as_str),
        Some("* BYE too much input before login"),
        "{got:?}"
    );
    assert!(d.closed());
    let sent = sender.join().expect("flood");
    assert!(sent < FLOOD / 2, "moat-imap-login read {sent} bytes of it");
    let login_after = status_kib(login, "VmRSS");
    assert!(
        login_before > 0 && login_after < login_before + 8 * 1024,
        "moat-imap-login grew from {login_before} KiB to {login_after} KiB"
    );
    imapd_serves_nobody(&s);
    let imapd_after = status_kib(imapd, "VmRSS");
    assert!(
        imapd_idle > 0 && imapd_after <= imapd_idle + 1024,
        "moat-imapd, which nobody reached, grew from {imapd_idle} KiB to {imapd_after} KiB"
    );

    // After login it is moat-imapd's. NUL, then 31 BAD commands: BYE.
    let mut b = Raw::login(s.imap);
    served_by(&s, b.port(), "moat-imapd");
    let got = b.cmd("n", "NO\0OP");
    assert_eq!(got, vec!["n BAD NUL is not allowed in commands"]);
    // The NUL was the first BAD; the 31st is followed by BYE.
    for i in 2..=31 {
        let got = b.cmd(&format!("x{i}"), "BOGUS");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(&format!("x{i} BAD")), "{got:?}");
    }
    let bye = b.line();
    assert_eq!(bye, "* BYE Too many invalid commands.");
    assert!(b.closed());

    // An endless line after login: while it is being sent, another client is served; past
    // 64 KiB the line is refused and the connection ends, the rest neither read nor kept.
    let imapd_before = status_kib(imapd, "VmRSS");
    let mut c = Raw::login(s.imap);
    served_by(&s, c.port(), "moat-imapd");
    c.send(b"t LIST \"\" \"");
    c.send(&[b'x'; 60 * 1024]);
    let other = python(
        &s,
        r#"
M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
M.login(USER, PW)
print("other", M.list('""', "INBOX"))
M.logout()
"#,
    );
    assert!(
        other.contains("other ('OK', [b'(\\\\HasNoChildren) \"/\" INBOX'])"),
        "{other}"
    );
    let sender = flood(c.writer.try_clone().expect("clone"));
    let got = c.until("never");
    assert_eq!(
        got,
        [
            "t BAD [TOOBIG] command line too long",
            "* BYE [TOOBIG] command line too long"
        ]
    );
    assert!(c.closed());
    let sent = sender.join().expect("flood");
    assert!(sent < FLOOD / 2, "moat-imapd read {sent} bytes of it");
    let imapd_after = status_kib(imapd, "VmRSS");
    assert!(
        imapd_after < imapd_before + 8 * 1024,
        "moat-imapd grew from {imapd_before} KiB to {imapd_after} KiB"
    );
}

#[test]
fn idle_clients_before_login_cost_moat_imap_login_only() {
    const IDLE: usize = 150;
    let s = stack("[limits]\nmax_connections_per_ip = 200\n");
    let (login, imapd) = (pid(&s, "moat-imap-login"), pid(&s, "moat-imapd"));
    let status = |pid: u32, field: &str| status_kib(pid, field);
    let login_before = (status(login, "VmRSS"), status(login, "Threads"));
    let imapd_before = (status(imapd, "VmRSS"), status(imapd, "Threads"));

    // Clients that connect, read the greeting and say nothing.
    let idle: Vec<Raw> = (0..IDLE).map(|_| Raw::connect(s.imap)).collect();
    if let Some(held) = tcp_clients(login) {
        assert!(
            idle.iter().all(|r| held.contains(&r.port())),
            "moat-imap-login holds {} of the {IDLE} idle clients",
            held.len()
        );
    }
    imapd_serves_nobody(&s);
    let login_after = (status(login, "VmRSS"), status(login, "Threads"));
    let imapd_after = (status(imapd, "VmRSS"), status(imapd, "Threads"));
    // Tasks, not threads, and a few KiB each (the buffers grow with what a client sends).
    assert!(
        login_after.1 <= login_before.1 + 4,
        "moat-imap-login's threads: {} then {}",
        login_before.1,
        login_after.1
    );
    let per_client = login_after.0.saturating_sub(login_before.0) / IDLE as u64;
    assert!(
        login_before.0 > 0 && per_client < 64,
        "moat-imap-login: {} KiB, then {} KiB with {IDLE} idle clients ({per_client} KiB each)",
        login_before.0,
        login_after.0
    );
    // moat-imapd heard of none of them.
    assert!(
        imapd_after.1 <= imapd_before.1,
        "moat-imapd's threads: {} then {}",
        imapd_before.1,
        imapd_after.1
    );
    assert!(
        imapd_before.0 > 0 && imapd_after.0 <= imapd_before.0 + 1024,
        "moat-imapd, which nobody reached, grew from {} KiB to {} KiB",
        imapd_before.0,
        imapd_after.0
    );

    // Meanwhile a client logs in and is served by moat-imapd, the idle ones still waiting.
    let mut c = Raw::login(s.imap);
    served_by(&s, c.port(), "moat-imapd");
    let got = c.cmd("s", "SELECT INBOX");
    assert!(
        got.last()
            .is_some_and(|l| l.starts_with("s OK [READ-WRITE]")),
        "{got:?}"
    );
    let mut first = idle.into_iter().next().expect("an idle client");
    assert_eq!(first.cmd("n", "NOOP"), vec!["n OK NOOP completed."]);
}
