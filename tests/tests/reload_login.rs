//! SIGHUP replaces the IMAP and POP3 login processes (they hold the TLS files since the login
//! split), the way it replaces moat-smtpd: a new connection gets the renewed certificate at
//! once, a plaintext session (served by moat-imapd alone) is untouched, and a logged-in TLS
//! session the old login process relays (an IMAP IDLE client may stay for hours) is not cut
//! after the 30 s drain: the retired process relays it until it ends, then exits. A stop
//! still ends a retired login process within the usual bound.
//! Clients: Python's imaplib, poplib and ssl.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use moat_tests::Stack;
use rustix::process::Signal;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

/// A certificate in one line (PEM without its line breaks), as the Python side prints it.
fn one_line(pem: &str) -> String {
    pem.replace(['\r', '\n'], "")
}

/// Waits until `program` runs as a pid other than `old` (the reload's new one) and returns it.
fn wait_new(s: &Stack, program: &str, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = s.pids_of(program).into_iter().find(|p| *p != old) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no new {program}:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until pid `pid` of `program` has exited.
fn wait_gone(s: &Stack, program: &str, pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while s.pids_of(program).contains(&pid) {
        assert!(
            Instant::now() < deadline,
            "{program} {pid} still runs:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Python client kept open across the reload, driven one line at a time: a logged-in
/// IMAPS session (relayed by the login process that accepted it) and a logged-in plaintext
/// IMAP session (handed to moat-imapd, nothing of it in the login process).
struct Sessions {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

const SESSIONS: &str = r#"
import imaplib, os, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
USER = "alice@example.test"; PW = "alice-secret"
T = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx, timeout=120)
T.login(USER, PW)
P = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=120)
P.login(USER, PW)
print("cert", ssl.DER_cert_to_PEM_cert(T.sock.getpeercert(True)).replace("\n", ""), flush=True)
for line in sys.stdin:
    if line.strip() == "noop":
        print("tls", T.noop()[0], T.select("INBOX")[1][0].decode(), "plain", P.noop()[0], flush=True)
    elif line.strip() == "logout":
        print("logout", T.logout()[0], P.logout()[0], flush=True)
        break
"#;

impl Sessions {
    fn open(s: &Stack) -> (Sessions, String) {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SESSIONS)
            .env("IMAP_PORT", s.imap.to_string())
            .env("IMAPS_PORT", s.imaps.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut sessions = Sessions {
            child,
            input,
            output,
        };
        let cert = sessions.line();
        let cert = cert
            .strip_prefix("cert ")
            .unwrap_or_else(|| panic!("no logged-in sessions: {cert:?}\n{}", s.log()));
        (sessions, cert.to_string())
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).expect("python output");
        line.trim_end().to_string()
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").expect("python input");
        self.line()
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The certificate a new IMAPS and a new POP3S connection get, and the POP3S login's answer.
fn served_certificates(s: &Stack) -> String {
    s.python_ok(
        r#"
import imaplib, os, poplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
pem = lambda sock: ssl.DER_cert_to_PEM_cert(sock.getpeercert(True)).replace("\n", "")
M = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx, timeout=30)
print("imaps", pem(M.sock)); print("imaps login", M.login("alice@example.test", "alice-secret")[0]); M.logout()
P = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx, timeout=30)
print("pop3s", pem(P.sock)); P.user("alice@example.test"); print("pop3s login", P.pass_("alice-secret").decode()); P.quit()
"#,
    )
}

/// Writes a new self-signed pair where the stack's TLS files are; returns the certificate.
fn renew(s: &Stack, name: &str) -> String {
    let fresh = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("cert");
    std::fs::write(s.data.join("tls/cert.pem"), fresh.cert.pem()).expect("cert");
    std::fs::write(
        s.data.join("tls/key.pem"),
        fresh.signing_key.serialize_pem(),
    )
    .expect("key");
    one_line(&fresh.cert.pem())
}

#[test]
fn sighup_renews_login_certificates_and_keeps_relayed_sessions() {
    let mut s = Stack::start_with_user("", ALICE, PW);
    let old_cert = one_line(&moat_tests::read(&s.cert_path()));
    let imap_login = s.pid_of("moat-imap-login").expect("moat-imap-login");
    let pop3_login = s.pid_of("moat-pop3-login").expect("moat-pop3-login");
    let imapd = s.pid_of("moat-imapd").expect("moat-imapd");

    let (mut sessions, cert) = Sessions::open(&s);
    assert_eq!(cert, old_cert, "the session began with the old certificate");

    let new_cert = renew(&s, "renewed.example.test");
    let reloaded = Instant::now();
    moat_tests::signal(s.moat_pid(), Signal::HUP);
    let new_imap_login = wait_new(&s, "moat-imap-login", imap_login);
    wait_new(&s, "moat-pop3-login", pop3_login);
    s.wait_log(&format!("moat-imap-login[{imap_login}]: SIGUSR1: retiring"));

    // New connections: the new certificate at once, on both protocols, and logins work.
    let served = served_certificates(&s);
    assert!(
        served.contains(&format!("imaps {new_cert}\n")),
        "IMAPS serves the new certificate:\n{served}\nlog:\n{}",
        s.log()
    );
    assert!(
        served.contains(&format!("pop3s {new_cert}\n")),
        "POP3S serves the new certificate:\n{served}"
    );
    assert!(served.contains("imaps login OK\n"), "{served}");
    assert!(served.contains("pop3s login +OK"), "{served}");

    // The old POP3 login process had no session: it is done at once.
    wait_gone(&s, "moat-pop3-login", pop3_login, Duration::from_secs(10));
    // The old IMAP login process still relays the TLS session past the 30 s drain it used to
    // cut it off at; the plaintext session never was in it.
    assert_eq!(sessions.ask("noop"), "tls OK 0 plain OK");
    let past_drain = reloaded + Duration::from_secs(36);
    std::thread::sleep(past_drain.saturating_duration_since(Instant::now()));
    assert!(
        s.pids_of("moat-imap-login").contains(&imap_login),
        "the retired moat-imap-login is gone while relaying:\n{}",
        s.log()
    );
    assert_eq!(sessions.ask("noop"), "tls OK 0 plain OK", "{}", s.log());
    assert_eq!(
        s.pid_of("moat-imapd"),
        Some(imapd),
        "moat-imapd was left alone"
    );

    // Its last session ends: so does it.
    assert_eq!(sessions.ask("logout"), "logout BYE BYE");
    wait_gone(&s, "moat-imap-login", imap_login, Duration::from_secs(10));
    s.wait_log("the replaced moat-imap-login finished");

    // A stop still ends a retired login process that relays a session, within the bound.
    let (mut open, cert) = Sessions::open(&s);
    assert_eq!(cert, new_cert);
    renew(&s, "renewed-again.example.test");
    moat_tests::signal(s.moat_pid(), Signal::HUP);
    wait_new(&s, "moat-imap-login", new_imap_login);
    s.wait_log(&format!(
        "moat-imap-login[{new_imap_login}]: SIGUSR1: retiring"
    ));
    assert_eq!(open.ask("noop"), "tls OK 0 plain OK");
    let stopping = Instant::now();
    let status = s.stop().expect("stopped");
    assert!(status.success(), "{status}:\n{}", s.log());
    assert!(
        stopping.elapsed() < Duration::from_secs(60),
        "the stop took {:?}",
        stopping.elapsed()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{new_imap_login}")).exists(),
        "the retired moat-imap-login outlived the stop"
    );
    drop(open);
}
