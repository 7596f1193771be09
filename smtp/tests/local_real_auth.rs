//! moat-local against the real moat-auth (vdomain's daemon over a SQLite store filled with the
//! `moat` admin CLI): the resolution rules end to end. Skipped when those binaries have not
//! been built (`cargo build -p moat-vdomain -p moat-installer` builds them).

mod local_support;

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use local_support::*;
use moat_common::child::{Item, spawn};
use moat_common::wire::Status;

/// `target/debug/<name>`, beside moat-local, if built.
fn sibling(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_moat-local"))
        .parent()?
        .join(name);
    path.is_file().then_some(path)
}

struct RealAuth {
    child: Child,
    _control: UnixStream,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for RealAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- moat-auth log ---\n{log}");
        }
    }
}

fn moat(cli: &Path, db: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = Command::new(cli)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moat");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("moat");
    assert!(
        out.status.success(),
        "moat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fills a store and starts moat-auth on it, in `dir`.
fn real_auth(dir: &Path) -> Option<RealAuth> {
    let (Some(auth_bin), Some(cli)) = (sibling("moat-auth"), sibling("moat")) else {
        eprintln!("skipped: target/debug/moat-auth or target/debug/moat not built");
        return None;
    };
    let store = dir.join("store");
    std::fs::create_dir(&store).expect("store dir");
    let db = format!("sqlite:{}", store.join("users.db").display());
    moat(&cli, &db, &["domain", "add", "example.test"], None);
    for (user, quota) in [
        ("alice", None),
        ("bob", None),
        ("carol", None),
        ("small", Some("1K")),
        ("postmaster", None),
    ] {
        let address = format!("{user}@example.test");
        let mut args = vec!["user", "add", address.as_str(), "--password-stdin"];
        if let Some(q) = quota {
            args.extend(["--quota", q]);
        }
        moat(&cli, &db, &args, Some("a long test password\n"));
    }
    moat(
        &cli,
        &db,
        &[
            "alias",
            "add",
            "team@example.test",
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
        ],
        None,
    );
    moat(
        &cli,
        &db,
        &["alias", "add", "out@example.test", "far@remote.example"],
        None,
    );
    moat(
        &cli,
        &db,
        &["catchall", "set", "example.test", "postmaster@example.test"],
        None,
    );
    // As root both daemons run as nobody; the store must be theirs (SQLite writes beside it).
    give_to_nobody(&store);
    for entry in std::fs::read_dir(&store).expect("readdir") {
        give_to_nobody(&entry.expect("entry").path());
    }

    let socket = dir.join("real-auth.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    open_up(&socket);
    let log = dir.join("moat-auth.log");
    let mut settings = vec![
        ("store_url", db),
        ("run_dir", dir.display().to_string()),
        ("hostname", "mx.example.test".to_string()),
    ];
    if is_root() {
        settings.push(("user", "nobody".to_string()));
    }
    let mut items: Vec<Item<'_>> = settings
        .iter()
        .map(|(k, v)| Item::Setting(k, v.clone()))
        .collect();
    items.push(Item::Fd("auth", listener.as_fd()));
    let mut cmd = Command::new(auth_bin);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")));
    let (child, control) = spawn(&mut cmd, &items).expect("spawn moat-auth");
    Some(RealAuth {
        child,
        _control: control,
        socket,
        log,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_end_to_end() {
    let dir = test_dir();
    let Some(auth) = real_auth(dir.path()) else {
        return;
    };
    let auth_socket = auth.socket.display().to_string();
    let local = Local::start_in(dir, &[("auth_socket", &auth_socket)]);
    let msg = sample("real");
    let s = "sender@remote.example";

    let status = local.deliver("Q1", s, "alice@example.test", &msg).await;
    assert_eq!(status, Status::Ok("delivered to 1 mailbox".into()));
    assert_eq!(
        local.new_messages("example.test/alice"),
        vec![expected(s, "alice@example.test", &msg)]
    );

    let status = local.deliver("Q2", s, "team@example.test", &msg).await;
    assert_eq!(status, Status::Ok("delivered to 3 mailboxes".into()));
    for user in ["bob", "carol"] {
        assert_eq!(
            local.new_messages(&format!("example.test/{user}")),
            vec![expected(s, &format!("{user}@example.test"), &msg)]
        );
    }
    assert_eq!(local.new_messages("example.test/alice").len(), 2);

    let status = local.deliver("Q3", s, "bob+lists@example.test", &msg).await;
    assert_eq!(status, Status::Ok("delivered to 1 mailbox".into()));
    assert_eq!(local.new_messages("example.test/bob").len(), 2);

    // Unknown local part: the catch-all takes it.
    let status = local
        .deliver("Q4", s, "nobody-here@example.test", &msg)
        .await;
    assert_eq!(status, Status::Ok("delivered to 1 mailbox".into()));
    assert_eq!(
        local.new_messages("example.test/postmaster"),
        vec![expected(s, "postmaster@example.test", &msg)]
    );

    let status = local.deliver("Q5", s, "out@example.test", &msg).await;
    assert_eq!(status, Status::Ok("forwarded to 1 address".into()));
    let fwd = local.queue.taken();
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].recipients, vec!["far@remote.example".to_string()]);

    // A domain we do not host: the check says so (smtpd relays or refuses), and a delivery
    // is answered `R`: the queue hands it to moat-remote.
    let answer = local
        .deliver_answer("Q6", s, "x@not-ours.example", &msg)
        .await;
    assert_eq!(answer, moat_common::client::local::Delivery::Remote);
    assert_eq!(
        local.check("x@not-ours.example", None).await,
        Status::Permanent("not a local domain".into())
    );

    // Quota 1K: a check for 2000 bytes is refused, a small one accepted, and L agrees.
    assert_eq!(
        local.check("small@example.test", Some(2000)).await,
        Status::Temporary("over quota".into())
    );
    assert_eq!(
        local.check("small@example.test", Some(100)).await,
        Status::Ok("ok".into())
    );
    let big = [b"Subject: big\r\n\r\n".as_slice(), &[b'b'; 2000]].concat();
    let status = local.deliver("Q7", s, "small@example.test", &big).await;
    assert_eq!(status, Status::Temporary("mailbox full".into()));
    assert!(local.new_messages("example.test/small").is_empty());
}
