//! moat-auth on a PostgreSQL store named by a host name (`postgres://…@localhost/…`, as the
//! README's `db.internal`), not an IP address: sqlx resolves it with glibc's getaddrinfo
//! inside moat-auth's confinement. That needs the resolver's files (`/etc/hosts`,
//! `/etc/resolv.conf`, `/etc/nsswitch.conf`, `/etc/gai.conf`, `/etc/host.conf`: Landlock);
//! `localhost` is answered from `/etc/hosts` (a name only DNS knows also needs `sendmmsg`, in
//! the seccomp list: glibc sends the A and AAAA queries at once; this machine's tests send no
//! query to a DNS server, so that path was checked by hand with strace). The stack is the
//! installed supervisor (`moat serve`; as root each child runs confined as its own
//! user), its store a fresh database `moat_test_<random>`, created and dropped with `psql`;
//! real clients (Python's imaplib and smtplib) log in, which only moat-auth can approve.

use moat_tests::pg::{Database, admin_url};
use moat_tests::{Mode, Stack};

/// `url` with its host replaced by `localhost` when it names the loopback address: the point
/// is that moat-auth must resolve a name.
fn by_name(url: &str) -> String {
    let named = url
        .replacen("@127.0.0.1:", "@localhost:", 1)
        .replacen("@127.0.0.1/", "@localhost/", 1)
        .replacen("@[::1]", "@localhost", 1);
    let host = named
        .split_once('@')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split([':', '/'])
        .next()
        .unwrap_or_default();
    assert!(
        !host.is_empty() && host.parse::<std::net::Ipv4Addr>().is_err() && !host.starts_with('['),
        "MOAT_TEST_PG={url} must name its host or use 127.0.0.1 (the test needs a host name)"
    );
    named
}

#[test]
fn moat_auth_reaches_postgresql_by_host_name() {
    let admin = admin_url();
    if admin == "skip" {
        println!("MOAT_TEST_PG=skip: this test needs PostgreSQL");
        return;
    }
    let db = Database::create(&admin);
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let store = by_name(&format!("{base}/{}", db.name));

    let mut s = Stack::start_with(Mode::Serve);
    let toml = std::fs::read_to_string(&s.config).expect("config");
    let sqlite = "url = \"sqlite:db/users.db\"";
    assert!(toml.contains(sqlite), "{toml}");
    std::fs::write(&s.config, toml.replace(sqlite, &format!("url = {store:?}"))).expect("config");
    s.restart();
    // Without the resolver's files or calls, moat-auth logs "cannot connect to …: failed to
    // lookup address information" instead, and answers every login with a temporary failure.
    let pid = s.pid_of("moat-auth").expect("moat-auth runs");
    s.wait_log(&format!("moat-auth[{pid}]: user store open (Postgres)"));
    // The CLI (unconfined, in this process's environment) writes the store; moat-auth reads it.
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");

    let out = s.python_ok(
        r#"
import imaplib, os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
M = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=30)
try:
    M.login("alice@example.test", "wrong")
    print("imap wrong password accepted")
except imaplib.IMAP4.error as e:
    print("imap wrong password refused")
M = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=30)
print("imap login", M.login("alice@example.test", "alice-secret")[0])
print("imap select", M.select("INBOX")[0])
M.logout()
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    code, _ = c.login("alice@example.test", "alice-secret")
    print("smtp auth", code)
    c.sendmail("alice@example.test", ["alice@example.test"], b"Subject: self\r\n\r\nhi\r\n")
print("sent")
"#,
    );
    assert!(out.contains("imap wrong password refused"), "{out}");
    assert!(out.contains("imap login OK"), "{out}\n{}", s.log());
    assert!(out.contains("imap select OK"), "{out}");
    assert!(out.contains("smtp auth 235"), "{out}");
    // Submission to a local user: moat-auth resolves the recipient from the store too.
    s.wait_messages("alice@example.test", 1);
    let log = s.log_of("moat-auth").join("\n");
    assert!(!log.contains("cannot connect"), "{log}");
    s.stop();
}
