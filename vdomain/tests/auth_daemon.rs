//! The real `moat-auth` binary, started the way the supervisor starts it (setup channel on fd 0,
//! the listening `auth` socket passed as a descriptor), against a real store, spoken to with the
//! real client (`moat_common::client::auth::AuthClient`) and raw records where the client cannot
//! say what a test needs.
//!
//! As root (CI) the daemon drops to `nobody` like it would to `moat-auth`, so each test's
//! directory is handed to `nobody`; the peer check is exercised from threads that switched to
//! other uids (Linux credentials are per thread) before connecting. As non-root the daemon runs
//! under our own uid, which it must always allow, so only that half of the peer check can run.
//! Each daemon's log is printed when a test fails (always with `MOAT_TEST_SHOW_LOG=1`).
//! Login tickets (`L`/`T`) are tested here too, with the real clients (`login_ticket`, `redeem`).

#[allow(dead_code)]
#[path = "store/harness.rs"]
mod harness;

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use moat_common::child::{Item, spawn};
use moat_common::client::auth::{
    AuthAnswer, AuthClient, Login, LoginQuota, Resolved, Target, TargetKind,
};
use moat_common::conn::Conn;
use moat_common::wire::{Record, Status};
use moat_vdomain::daemon::{
    AUTH_FAILED, MAX_CONNECTIONS, NO_SUCH_USER, PERMISSION_DENIED, THROTTLED, UNAVAILABLE,
    UNKNOWN_TICKET,
};
use moat_vdomain::{Address, Store};
use tempfile::TempDir;

/// Every password a test uses: none of them may ever appear in a log.
const PASSWORDS: &[(&str, &str)] = &[
    ("alice", "alice-Secret-1"),
    ("bob", "bob-Secret-2"),
    ("carol", "carol-Secret-3"),
    ("dave", "dave-Secret-4"),
    ("erin", "erin-Secret-5"),
];
const WRONG: &str = "Wrong-Password-9";

fn pw(user: &str) -> &'static str {
    PASSWORDS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no test password for {user}"))
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("test address {s:?}: {e}"))
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// example.test with alice (1 MiB quota), bob, carol, dave (disabled) and erin; the alias
/// team@ → alice, bob and a remote address.
async fn populate(store: &Store) {
    store.add_domain("example.test").await.expect("domain");
    for (user, password) in PASSWORDS {
        let quota = (*user == "alice").then_some(1 << 20);
        store
            .add_user(&addr(&format!("{user}@example.test")), password, quota)
            .await
            .expect("user");
    }
    store
        .set_enabled(&addr("dave@example.test"), false)
        .await
        .expect("disable");
    store
        .add_alias(
            &addr("team@example.test"),
            &[
                "alice@example.test".to_owned(),
                "bob@example.test".to_owned(),
                "friend@remote.example".to_owned(),
            ],
        )
        .await
        .expect("alias");
}

/// A fresh SQLite store in `dir`, populated and closed; returns its URL.
async fn sqlite_store(dir: &Path) -> String {
    let url = format!("sqlite:{}", dir.join("users.db").display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    populate(&store).await;
    store.close().await;
    url
}

/// As root, hands `path` (and what is directly inside it) to `nobody`, the daemon's user.
fn give_to_daemon_user(path: &Path) {
    if !is_root() {
        return;
    }
    let nobody = moat_common::privilege::lookup("nobody").expect("user nobody");
    let own = |p: &Path| {
        std::os::unix::fs::chown(p, Some(nobody.uid), Some(nobody.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()))
    };
    own(path);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            own(&entry.expect("entry").path());
        }
    }
}

/// A running moat-auth.
struct Daemon {
    child: Child,
    /// The supervisor's end of the setup channel; dropping it tells the daemon to stop.
    control: Option<UnixStream>,
    socket: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Daemon {
    /// Starts moat-auth on a socket in `dir` with `store_url` and extra settings.
    fn start(dir: TempDir, store_url: &str, settings: &[(&str, &str)]) -> Daemon {
        let socket = dir.path().join("auth.sock");
        let log = dir.path().join("moat-auth.log");
        let listener = UnixListener::bind(&socket).expect("bind auth.sock");
        // As the supervisor does: access control is the peer check, not the file mode.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .expect("chmod socket");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dir");
        let log_file = File::create(&log).expect("log file");
        give_to_daemon_user(dir.path());

        let run_dir = dir.path().display().to_string();
        let mut items = vec![
            Item::Setting("user", "nobody".into()),
            Item::Setting("run_dir", run_dir),
            Item::Setting("hostname", "mx.example.test".into()),
            Item::Setting("store_url", store_url.into()),
            Item::Fd("auth", listener.as_fd()),
        ];
        for (key, value) in settings {
            items.push(Item::Setting(key, (*value).into()));
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat-auth"));
        cmd.stdout(Stdio::null()).stderr(Stdio::from(log_file));
        let (child, control) = spawn(&mut cmd, &items).expect("spawn moat-auth");
        Daemon {
            child,
            control: Some(control),
            socket,
            log,
            _dir: dir,
        }
    }

    fn client(&self) -> AuthClient {
        AuthClient::new(&self.socket)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for the daemon to exit.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Checks that no password ever reached the log.
    fn assert_no_password_logged(&self) {
        let log = self.log();
        for (_, password) in PASSWORDS {
            assert!(!log.contains(password), "password in the log:\n{log}");
        }
        assert!(!log.contains(WRONG), "password in the log:\n{log}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() || std::env::var_os("MOAT_TEST_SHOW_LOG").is_some() {
            eprintln!("--- moat-auth log ---\n{}---", self.log());
        }
    }
}

/// A raw connection, for what `AuthClient` does not do (several requests, bad ones).
async fn raw(socket: &Path) -> Conn {
    Conn::connect(socket).await.expect("connect")
}

/// Sends `request` and returns the reply record.
async fn ask(conn: &mut Conn, request: Record) -> Record {
    conn.send(&request).await.expect("send");
    conn.expect().await.expect("reply")
}

fn status(reply: &Record) -> Status {
    Status::from_record(reply).expect("a status reply")
}

fn auth_request(login: &str, password: &str, ip: &str) -> Record {
    Record::new(b'A')
        .field(login)
        .field(password)
        .field(ip)
        .field("imap")
}

fn mailbox(address: &str, quota: Option<i64>, detail: Option<&str>) -> Target {
    let (local, domain) = address.split_once('@').expect("address");
    Target {
        kind: TargetKind::Mailbox,
        address: address.into(),
        maildir: format!("{domain}/{local}"),
        quota,
        detail: detail.map(str::to_owned),
    }
}

fn forward(address: &str) -> Target {
    Target {
        kind: TargetKind::Forward,
        address: address.into(),
        maildir: String::new(),
        quota: None,
        detail: None,
    }
}

/// Resolved targets in a stable order (alias expansion order is not part of the contract).
fn sorted(resolved: Resolved) -> Vec<Target> {
    let Resolved::Targets(mut targets) = resolved else {
        panic!("expected targets, got {resolved:?}");
    };
    targets.sort_by_key(|t| (t.kind == TargetKind::Forward, t.address.clone()));
    targets
}

#[tokio::test]
async fn authenticate_and_resolve_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let daemon = Daemon::start(dir, &url, &[]);
    let client = daemon.client();
    let ip = "192.0.2.10";

    // Authentication.
    let ok = client
        .authenticate("alice@example.test", pw("alice"), ip, "smtp")
        .await
        .expect("ask");
    assert_eq!(ok, AuthAnswer::Ok("alice@example.test".into()));
    let ok = client
        .authenticate(" Alice@EXAMPLE.test", pw("alice"), ip, "imap")
        .await
        .expect("ask");
    assert_eq!(ok, AuthAnswer::Ok("alice@example.test".into()));
    for (login, password) in [
        ("alice@example.test", WRONG),
        ("nobody@example.test", pw("alice")),
        ("dave@example.test", pw("dave")),
        ("alice@other.test", pw("alice")),
        ("not an address", pw("alice")),
        ("alice@example.test", ""),
    ] {
        let answer = client
            .authenticate(login, password, "", "pop3")
            .await
            .expect("ask");
        assert_eq!(answer, AuthAnswer::Failed, "{login}");
    }

    // Resolution: a user, a sub-address, an alias with a forward, unknown addresses.
    let alice = client.resolve("alice@example.test").await.expect("ask");
    assert_eq!(
        alice,
        Resolved::Targets(vec![mailbox("alice@example.test", Some(1 << 20), None)])
    );
    let tagged = client
        .resolve("alice+news@example.test")
        .await
        .expect("ask");
    assert_eq!(
        tagged,
        Resolved::Targets(vec![mailbox(
            "alice@example.test",
            Some(1 << 20),
            Some("news")
        )])
    );
    let team = client.resolve("Team@Example.Test").await.expect("ask");
    let want = sorted(Resolved::Targets(vec![
        mailbox("alice@example.test", Some(1 << 20), None),
        mailbox("bob@example.test", None, None),
        forward("friend@remote.example"),
    ]));
    assert_eq!(sorted(team), want);
    // A disabled user still receives mail.
    assert!(matches!(
        client.resolve("dave@example.test").await.expect("ask"),
        Resolved::Targets(_)
    ));
    assert_eq!(
        client
            .resolve("someone@not-hosted.test")
            .await
            .expect("ask"),
        Resolved::NotLocal
    );
    for unknown in [
        "nobody@example.test",
        "not an address",
        "../../x@example.test",
        "",
    ] {
        assert_eq!(
            client.resolve(unknown).await.expect("ask"),
            Resolved::Unknown,
            "{unknown:?}"
        );
    }

    // Raw records: several requests on one connection, the reply shape, bad requests.
    let mut conn = raw(&daemon.socket).await;
    let reply = ask(&mut conn, Record::new(b'R').field("team@example.test")).await;
    assert_eq!(status(&reply), Status::Ok("3 targets".into()));
    assert_eq!(reply.fields.len(), 1 + 3 * 5);
    let reply = ask(&mut conn, Record::new(b'R').field("bob@example.test")).await;
    assert_eq!(status(&reply), Status::Ok("1 target".into()));
    let reply = ask(&mut conn, auth_request("bob@example.test", pw("bob"), ip)).await;
    assert_eq!(status(&reply), Status::Ok("bob@example.test".into()));
    let reply = ask(&mut conn, Record::new(b'R').field("nobody@example.test")).await;
    assert_eq!(status(&reply), Status::Permanent(NO_SUCH_USER.into()));
    let reply = ask(&mut conn, auth_request("bob@example.test", WRONG, ip)).await;
    assert_eq!(status(&reply), Status::Permanent(AUTH_FAILED.into()));
    let long_login = format!("{}@example.test", "a".repeat(320));
    let long_password = "p".repeat(1025);
    let long_address = format!("{}@example.test", "b".repeat(320));
    for bad in [
        auth_request(&long_login, pw("bob"), ip),
        auth_request("bob@example.test", &long_password, ip),
        Record::new(b'R').field(&long_address),
        Record::new(b'A').field("bob@example.test").field(pw("bob")),
        Record::new(b'A')
            .field("bob@example.test")
            .field(pw("bob"))
            .field(ip)
            .field("ftp"),
        Record::new(b'A')
            .field("bob@example.test")
            .field([0xff, 0xfe])
            .field(ip)
            .field("smtp"),
        Record::new(b'R'),
        Record::new(b'Q').field("x"),
    ] {
        let reply = ask(&mut conn, bad.clone()).await;
        assert!(
            matches!(status(&reply), Status::Permanent(_)),
            "{:?} → {reply:?}",
            char::from(bad.kind)
        );
    }
    // Still served after all that.
    let reply = ask(&mut conn, Record::new(b'R').field("bob@example.test")).await;
    assert!(matches!(status(&reply), Status::Ok(_)));

    let log = daemon.log();
    assert!(
        log.contains("authentication failed for \"alice@example.test\" from -"),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for \"bob@example.test\" from 192.0.2.10"),
        "{log}"
    );
    assert!(
        log.contains("imap login alice@example.test from 192.0.2.10"),
        "{log}"
    );
    daemon.assert_no_password_logged();
}

#[tokio::test]
async fn subaddress_delimiter_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let daemon = Daemon::start(dir, &url, &[("subaddress_delimiter", "")]);
    let client = daemon.client();
    assert_eq!(
        client
            .resolve("alice+news@example.test")
            .await
            .expect("ask"),
        Resolved::Unknown
    );
    assert!(matches!(
        client.resolve("alice@example.test").await.expect("ask"),
        Resolved::Targets(_)
    ));
    drop(daemon);

    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let daemon = Daemon::start(dir, &url, &[("subaddress_delimiter", "-")]);
    assert_eq!(
        daemon
            .client()
            .resolve("alice-news@example.test")
            .await
            .expect("ask"),
        Resolved::Targets(vec![mailbox(
            "alice@example.test",
            Some(1 << 20),
            Some("news")
        )])
    );
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let daemon = Daemon::start(dir, &url, &[]);
    let client = daemon.client();
    let attacker = "203.0.113.5";

    for i in 0..5 {
        let answer = client
            .authenticate("alice@example.test", WRONG, attacker, "smtp")
            .await
            .expect("ask");
        assert_eq!(answer, AuthAnswer::Failed, "failure {i}");
    }
    // Locked: even the right password is refused, without being checked.
    let throttled = AuthAnswer::Temporary(THROTTLED.into());
    let answer = client
        .authenticate("alice@example.test", pw("alice"), attacker, "smtp")
        .await
        .expect("ask");
    assert_eq!(answer, throttled);
    // The login is locked from any IP...
    let answer = client
        .authenticate("alice@example.test", pw("alice"), "198.51.100.1", "imap")
        .await
        .expect("ask");
    assert_eq!(answer, throttled);
    // ...and the IP is locked for any login.
    let answer = client
        .authenticate("carol@example.test", pw("carol"), attacker, "smtp")
        .await
        .expect("ask");
    assert_eq!(answer, throttled);
    // Others are not affected.
    let answer = client
        .authenticate("carol@example.test", pw("carol"), "198.51.100.2", "smtp")
        .await
        .expect("ask");
    assert_eq!(answer, AuthAnswer::Ok("carol@example.test".into()));

    // A success resets the login's count: 4 failures, a success, 4 failures (each batch from
    // its own IP, so no IP reaches 5) leave erin able to log in.
    for (n, ip) in [(4, "192.0.2.21"), (4, "192.0.2.22")] {
        for _ in 0..n {
            let answer = client
                .authenticate("erin@example.test", WRONG, ip, "imap")
                .await
                .expect("ask");
            assert_eq!(answer, AuthAnswer::Failed);
        }
        let answer = client
            .authenticate("erin@example.test", pw("erin"), "192.0.2.23", "imap")
            .await
            .expect("ask");
        assert_eq!(answer, AuthAnswer::Ok("erin@example.test".into()), "{ip}");
    }

    let log = daemon.log();
    assert!(
        log.contains("login \"alice@example.test\" locked for 60 s"),
        "{log}"
    );
    assert!(log.contains("client 203.0.113.5 locked for 60 s"), "{log}");
    assert!(log.contains("refused without checking"), "{log}");
    daemon.assert_no_password_logged();
}

/// Connects to `socket` from a thread that has switched to `uid` (Linux credentials are per
/// thread, and the server sees the connecting thread's). Root only.
fn connect_as(uid: u32, socket: &Path) -> UnixStream {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let id = rustix::process::Uid::from_raw(uid);
        rustix::thread::set_thread_res_uid(id, id, id).expect("switch uid");
        UnixStream::connect(&socket).expect("connect as another uid")
    })
    .join()
    .expect("connecting thread")
}

/// `n` connections from `uid` that never send anything.
fn connect_many_as(uid: u32, socket: &Path, n: usize) -> Vec<UnixStream> {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let id = rustix::process::Uid::from_raw(uid);
        rustix::thread::set_thread_res_uid(id, id, id).expect("switch uid");
        (0..n)
            .map(|_| UnixStream::connect(&socket).expect("connect as another uid"))
            .collect()
    })
    .join()
    .expect("connecting thread")
}

async fn conn_as(uid: u32, socket: &Path) -> Conn {
    let stream = connect_as(uid, socket);
    stream.set_nonblocking(true).expect("nonblocking");
    Conn::new(tokio::net::UnixStream::from_std(stream).expect("tokio stream"))
}

#[tokio::test]
async fn peers_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    // None of these is our uid, and as root the daemon runs as nobody, not root.
    let daemon = Daemon::start(
        dir,
        &url,
        &[
            ("peers_smtpd", "4243"),
            ("peers_local", "4244"),
            ("peers_imapd", "4245,4246"),
        ],
    );
    let resolve = || Record::new(b'R').field("alice@example.test");
    let login = || auth_request("alice@example.test", pw("alice"), "192.0.2.30");
    let denied = Status::Permanent(PERMISSION_DENIED.into());

    // Our own uid: root, or (not root) the daemon's own uid. Both are always allowed.
    let mut conn = raw(&daemon.socket).await;
    assert!(matches!(
        status(&ask(&mut conn, resolve()).await),
        Status::Ok(_)
    ));
    assert!(matches!(
        status(&ask(&mut conn, login()).await),
        Status::Ok(_)
    ));

    if !is_root() {
        eprintln!(
            "peers_are_checked: not root, so no other uid can connect; refusals are checked \
             as root (CI) and by the unit test server::tests::peer_policy"
        );
        return;
    }

    // Started as root, it runs as its `user` (nobody here), every id of it.
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))
        .expect("/proc status");
    let nobody = moat_common::privilege::lookup("nobody").expect("nobody");
    for (key, id) in [("Uid:", nobody.uid), ("Gid:", nobody.gid)] {
        let line = proc_status
            .lines()
            .find(|l| l.starts_with(key))
            .expect("id line");
        let ids: Vec<u32> = line
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().expect("id"))
            .collect();
        assert_eq!(ids, vec![id; 4], "{line}");
    }

    // A stranger: refused, logged, and the connection closed.
    let mut conn = conn_as(4242, &daemon.socket).await;
    assert_eq!(status(&ask(&mut conn, login()).await), denied);
    assert!(conn.recv().await.map_or(true, |r| r.is_none()), "closed");
    let mut conn = conn_as(4242, &daemon.socket).await;
    assert_eq!(status(&ask(&mut conn, resolve()).await), denied);
    // Descriptors attached by a stranger are not kept.
    let mut conn = conn_as(4242, &daemon.socket).await;
    let file = tempfile::tempfile().expect("tempfile");
    conn.send_with_fds(&resolve(), &[file.as_fd(), file.as_fd()])
        .await
        .expect("send");
    assert_eq!(status(&conn.expect().await.expect("reply")), denied);

    // A local user holding more idle connections than moat-auth serves at once cannot starve
    // the real peers: strangers never take a connection slot.
    let hog = connect_many_as(4242, &daemon.socket, MAX_CONNECTIONS + 50);
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        daemon.client().resolve("alice@example.test"),
    )
    .await
    .expect("served while a stranger holds many connections")
    .expect("ask");
    assert!(matches!(answer, Resolved::Targets(_)), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(hog);

    // Per request kind: smtpd both, local only R, imapd only A.
    for (uid, may_auth, may_resolve) in [
        (4243, true, true),
        (4244, false, true),
        (4245, true, false),
        (4246, true, false),
    ] {
        let mut conn = conn_as(uid, &daemon.socket).await;
        let reply = status(&ask(&mut conn, resolve()).await);
        assert_eq!(reply == denied, !may_resolve, "uid {uid} R: {reply:?}");
        let mut conn = conn_as(uid, &daemon.socket).await;
        let reply = status(&ask(&mut conn, login()).await);
        assert_eq!(reply == denied, !may_auth, "uid {uid} A: {reply:?}");
        if may_auth {
            assert_eq!(reply, Status::Ok("alice@example.test".into()));
        }
    }

    let log = daemon.log();
    assert!(
        log.contains("permission denied: 'A' request from uid 4242"),
        "{log}"
    );
    assert!(
        log.contains("permission denied: 'R' request from uid 4245"),
        "{log}"
    );
    assert!(
        log.contains("connections from uids that may ask nothing (latest uid 4242"),
        "{log}"
    );
    daemon.assert_no_password_logged();
}

#[tokio::test]
async fn stops_when_the_supervisor_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let mut daemon = Daemon::start(dir, &url, &[]);
    assert!(matches!(
        daemon
            .client()
            .resolve("alice@example.test")
            .await
            .expect("ask"),
        Resolved::Targets(_)
    ));
    drop(daemon.control.take());
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("moat-auth exits when its setup channel closes");
    assert!(status.success(), "{status}");
    assert!(daemon.log().contains("the supervisor is gone"));
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let mut daemon = Daemon::start(dir, &url, &[]);
    let mut conn = raw(&daemon.socket).await;
    let reply = ask(&mut conn, Record::new(b'R').field("alice@example.test")).await;
    assert!(matches!(status(&reply), Status::Ok(_)));

    // A password check (tens of milliseconds of argon2) is on its way when SIGTERM arrives.
    conn.send(&auth_request("alice@example.test", pw("alice"), ""))
        .await
        .expect("send");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&daemon.child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let reply = conn.expect().await.expect("the request is answered");
    assert_eq!(status(&reply), Status::Ok("alice@example.test".into()));
    let exit = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("moat-auth exits after SIGTERM");
    assert!(exit.success(), "{exit}");
    // And nobody is served any more.
    assert!(daemon.client().resolve("alice@example.test").await.is_err());
    assert!(daemon.log().contains("SIGTERM"));
}

#[tokio::test]
async fn unreachable_store_answers_try_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(dir, "postgres://postgres@127.0.0.1:1/test", &[]);
    let client = daemon.client();
    let unavailable = AuthAnswer::Temporary(UNAVAILABLE.into());
    assert_eq!(
        client
            .authenticate("alice@example.test", pw("alice"), "", "smtp")
            .await
            .expect("ask"),
        unavailable
    );
    assert_eq!(
        client.resolve("alice@example.test").await.expect("ask"),
        Resolved::Temporary(UNAVAILABLE.into())
    );
    assert!(daemon.is_running(), "must keep running, not exit");
    assert!(daemon.log().contains("retrying"), "{}", daemon.log());
}

#[tokio::test]
async fn store_that_comes_back_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The store's directory does not exist yet: unavailable.
    let db_dir = dir.path().join("db");
    let url = format!("sqlite:{}", db_dir.join("users.db").display());
    let staging = dir.path().join("staging");
    let mut daemon = Daemon::start(dir, &url, &[]);
    let client = daemon.client();
    assert_eq!(
        client.resolve("alice@example.test").await.expect("ask"),
        Resolved::Temporary(UNAVAILABLE.into())
    );

    // Make it appear at once (populated elsewhere, then renamed into place).
    std::fs::create_dir(&staging).expect("staging");
    sqlite_store(&staging).await;
    give_to_daemon_user(&staging);
    std::fs::rename(&staging, &db_dir).expect("rename into place");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.resolve("alice@example.test").await.expect("ask") {
            Resolved::Targets(_) => break,
            Resolved::Temporary(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("the store never came back: {other:?}"),
        }
    }
    assert_eq!(
        client
            .authenticate("bob@example.test", pw("bob"), "", "smtp")
            .await
            .expect("ask"),
        AuthAnswer::Ok("bob@example.test".into())
    );
    assert!(daemon.is_running());
    assert!(daemon.log().contains("reachable again"), "{}", daemon.log());
}

/// The same daemon against a fresh database on the real PostgreSQL server.
#[tokio::test]
async fn postgres_store() {
    harness::with_postgres(|ctx| async move {
        populate(&ctx.store).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = Daemon::start(dir, &ctx.url, &[("peers_smtpd", "4243")]);
        let client = daemon.client();
        assert_eq!(
            client
                .authenticate("alice@example.test", pw("alice"), "192.0.2.40", "smtp")
                .await
                .expect("ask"),
            AuthAnswer::Ok("alice@example.test".into())
        );
        assert_eq!(
            client
                .authenticate("alice@example.test", WRONG, "192.0.2.40", "smtp")
                .await
                .expect("ask"),
            AuthAnswer::Failed
        );
        assert_eq!(
            client
                .authenticate("dave@example.test", pw("dave"), "192.0.2.40", "smtp")
                .await
                .expect("ask"),
            AuthAnswer::Failed
        );
        let team = client.resolve("team+x@example.test").await.expect("ask");
        let want = sorted(Resolved::Targets(vec![
            mailbox("alice@example.test", Some(1 << 20), Some("x")),
            mailbox("bob@example.test", None, Some("x")),
            forward("friend@remote.example"),
        ]));
        assert_eq!(sorted(team), want);
        assert_eq!(
            client.resolve("nobody@example.test").await.expect("ask"),
            Resolved::Unknown
        );
        // A change made by the admin is seen at once (nothing is cached).
        ctx.store
            .set_enabled(&addr("dave@example.test"), true)
            .await
            .expect("enable");
        assert_eq!(
            client
                .authenticate("dave@example.test", pw("dave"), "192.0.2.40", "smtp")
                .await
                .expect("ask"),
            AuthAnswer::Ok("dave@example.test".into())
        );
        daemon.assert_no_password_logged();
    })
    .await;
}

fn ticket_request(login: &str, password: &str, ip: &str, service: &str) -> Record {
    Record::new(b'L')
        .field(login)
        .field(password)
        .field(ip)
        .field(service)
}

fn redeem_request(token: &str, service: &str, ip: &str) -> Record {
    Record::new(b'T').field(token).field(service).field(ip)
}

/// The token of a `K` reply to `L` (its third field), checked for shape.
fn token_of(reply: &Record) -> String {
    assert_eq!(reply.fields.len(), 3, "{reply:?}");
    let token = reply.text(2).expect("token").to_owned();
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token:?}"
    );
    token
}

#[tokio::test]
async fn login_tickets_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_store(dir.path()).await;
    let daemon = Daemon::start(
        dir,
        &url,
        &[("peers_login", "4247"), ("peers_imapd", "4245")],
    );
    let client = daemon.client();
    let ip = "192.0.2.50";
    let unknown = Status::Permanent(UNKNOWN_TICKET.into());
    let mut tokens = Vec::new();

    // The real clients: a login process checks the password, the mail process redeems the
    // token, once.
    let ticket = client
        .login_ticket("Alice@Example.test", pw("alice"), ip, "imap", "test-login")
        .await
        .expect("ticket");
    assert_eq!(ticket.user, "alice@example.test");
    tokens.push(ticket.token.clone());
    let user = client
        .redeem(&ticket.token, "imap", ip, "test-imapd")
        .await
        .expect("redeemed");
    assert_eq!(
        (user.user.as_str(), user.quota),
        ("alice@example.test", LoginQuota::Store(Some(1 << 20)))
    );
    assert_eq!(
        client.redeem(&ticket.token, "imap", ip, "test-imapd").await,
        Err(Login::Failed),
        "single use"
    );

    // The same on the wire: `K` [address, quota, token], then `K` [address, quota] exactly as
    // `A` answers, then `D`.
    let mut conn = raw(&daemon.socket).await;
    let reply = ask(
        &mut conn,
        ticket_request("bob@example.test", pw("bob"), ip, "pop3"),
    )
    .await;
    assert_eq!(status(&reply), Status::Ok("bob@example.test".into()));
    assert_eq!(reply.text(1).expect("quota"), "", "unlimited");
    let token = token_of(&reply);
    tokens.push(token.clone());
    let redeemed = ask(&mut conn, redeem_request(&token, "pop3", ip)).await;
    let by_a = ask(&mut conn, auth_request("bob@example.test", pw("bob"), ip)).await;
    assert_eq!(redeemed.kind, by_a.kind);
    assert_eq!(redeemed.fields, by_a.fields);
    let again = ask(&mut conn, redeem_request(&token, "pop3", ip)).await;
    assert_eq!(status(&again), unknown);

    // Bound to its service: an imap ticket is refused to pop3 (and spent by the attempt).
    let reply = ask(
        &mut conn,
        ticket_request("carol@example.test", pw("carol"), ip, "imap"),
    )
    .await;
    let token = token_of(&reply);
    tokens.push(token.clone());
    let wrong = ask(&mut conn, redeem_request(&token, "pop3", ip)).await;
    assert_eq!(status(&wrong), unknown);
    let right = ask(&mut conn, redeem_request(&token, "imap", ip)).await;
    assert_eq!(status(&right), unknown);

    // Forged, malformed and unknown tokens.
    let forged = ask(&mut conn, redeem_request(&"0".repeat(64), "imap", ip)).await;
    assert_eq!(status(&forged), unknown);
    for bad in [
        redeem_request(&"0".repeat(65), "imap", ip),
        redeem_request(&"0".repeat(64), "ftp", ip),
        Record::new(b'T').field("0".repeat(64)).field("imap"),
    ] {
        let reply = ask(&mut conn, bad).await;
        assert!(
            matches!(status(&reply), Status::Permanent(ref why) if why.starts_with("malformed request")),
            "{reply:?}"
        );
    }

    // A wrong password: `D` as for `A`, no token, and it counts toward the same throttle:
    // 3 failures through `A` and 2 through `L` lock the login out of both.
    let attacker = "203.0.113.50";
    for i in 0..3 {
        let reply = ask(
            &mut conn,
            auth_request("erin@example.test", WRONG, attacker),
        )
        .await;
        assert_eq!(
            status(&reply),
            Status::Permanent(AUTH_FAILED.into()),
            "A {i}"
        );
    }
    for i in 0..2 {
        let reply = ask(
            &mut conn,
            ticket_request("erin@example.test", WRONG, attacker, "imap"),
        )
        .await;
        assert_eq!(
            status(&reply),
            Status::Permanent(AUTH_FAILED.into()),
            "L {i}"
        );
        assert_eq!(reply.fields.len(), 1, "no token: {reply:?}");
    }
    let throttled = Status::Temporary(THROTTLED.into());
    let reply = ask(
        &mut conn,
        ticket_request("erin@example.test", pw("erin"), "198.51.100.50", "imap"),
    )
    .await;
    assert_eq!(status(&reply), throttled);
    let reply = ask(
        &mut conn,
        auth_request("erin@example.test", pw("erin"), "198.51.100.50"),
    )
    .await;
    assert_eq!(status(&reply), throttled);
    assert_eq!(
        client
            .login_ticket("erin@example.test", pw("erin"), ip, "imap", "test-login")
            .await,
        Err(Login::Throttled)
    );
    // And the other way round: failures through `L` alone lock `A` too.
    for _ in 0..5 {
        let reply = ask(
            &mut conn,
            ticket_request("carol@example.test", WRONG, "203.0.113.51", "pop3"),
        )
        .await;
        assert_eq!(status(&reply), Status::Permanent(AUTH_FAILED.into()));
    }
    let reply = ask(
        &mut conn,
        auth_request("carol@example.test", pw("carol"), "198.51.100.51"),
    )
    .await;
    assert_eq!(status(&reply), throttled);

    // Peers (root only: other uids connect from threads that switched to them). `L` from
    // peers_login only, `T` from peers_imapd only; a login process may do nothing else.
    if is_root() {
        let denied = Status::Permanent(PERMISSION_DENIED.into());
        let mut login_conn = conn_as(4247, &daemon.socket).await;
        let reply = ask(
            &mut login_conn,
            ticket_request("alice@example.test", pw("alice"), ip, "imap"),
        )
        .await;
        let token = token_of(&reply);
        tokens.push(token.clone());
        // On the same connection, anything else is refused (and the connection closed).
        let reply = ask(&mut login_conn, redeem_request(&token, "imap", ip)).await;
        assert_eq!(status(&reply), denied);
        for refused in [
            auth_request("alice@example.test", pw("alice"), ip),
            Record::new(b'R').field("alice@example.test"),
        ] {
            let mut conn = conn_as(4247, &daemon.socket).await;
            assert_eq!(status(&ask(&mut conn, refused).await), denied);
        }
        // The mail process redeems (the refused `T` above did not spend it), but may not log in
        // for a ticket.
        let mut mail_conn = conn_as(4245, &daemon.socket).await;
        let reply = ask(&mut mail_conn, redeem_request(&token, "imap", ip)).await;
        assert_eq!(status(&reply), Status::Ok("alice@example.test".into()));
        let reply = ask(
            &mut mail_conn,
            ticket_request("alice@example.test", pw("alice"), ip, "imap"),
        )
        .await;
        assert_eq!(status(&reply), denied);
        // A uid in no peers_* setting.
        let mut conn = conn_as(4242, &daemon.socket).await;
        let reply = ask(
            &mut conn,
            ticket_request("alice@example.test", pw("alice"), ip, "imap"),
        )
        .await;
        assert_eq!(status(&reply), denied);
        let log = daemon.log();
        assert!(
            log.contains("permission denied: 'T' request from uid 4247"),
            "{log}"
        );
        assert!(
            log.contains("permission denied: 'L' request from uid 4245"),
            "{log}"
        );
    } else {
        eprintln!(
            "login_tickets_on_sqlite: not root, so no other uid can connect; the peer rules \
             for L and T are checked as root (CI) and by the unit test server::tests::peer_policy"
        );
    }

    let log = daemon.log();
    assert!(
        log.contains("imap login alice@example.test from 192.0.2.50 (ticket issued"),
        "{log}"
    );
    assert!(
        log.contains("pop3 ticket of bob@example.test from 192.0.2.50 redeemed"),
        "{log}"
    );
    assert!(log.contains("imap ticket from 192.0.2.50 refused"), "{log}");
    assert!(
        log.contains("imap authentication failed for \"erin@example.test\" from 203.0.113.50"),
        "{log}"
    );
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
    }
    daemon.assert_no_password_logged();
}
