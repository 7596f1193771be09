//! The driver on a real loopback socket, without the other processes: deadlines, connection
//! limits, stopping. (Everything that needs moat-queue, moat-local or moat-auth is tested end
//! to end in `tests/tests/smtp_*.rs`.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_common::client::auth::{Target, TargetKind};
use moat_common::conn::Conn;
use moat_common::wire::Status;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;

use super::listener::{Service, accept_loop};
use super::settings::Settings;
use super::{Server, policy};
use moat_common::daemon::limits;

/// Messages the fake queue took: (client text, bytes, envelope fields).
type Queued = Arc<std::sync::Mutex<Vec<(String, Vec<u8>, Vec<String>)>>>;

struct TestServer {
    port: u16,
    stop: watch::Sender<bool>,
    tmp: tempfile::TempDir,
    queued: Queued,
}

/// A fake moat-local: `K` for alice@ours.test and postmaster@mx.test, `Z` "over quota" for
/// full@, `Z` "store down" for flaky@, `D` "no such user" for other addresses of ours and
/// `D` "not a local domain" for everything else.
async fn fake_local(path: std::path::PathBuf) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind local");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            let Ok(Some(req)) = conn.recv().await else {
                return;
            };
            let rcpt = req.text(0).unwrap_or("");
            let status = match rcpt {
                "alice@ours.test" | "postmaster@mx.test" => Status::Ok("ok".into()),
                "full@ours.test" => Status::Temporary("over quota".into()),
                "flaky@ours.test" => Status::Temporary("user store unavailable".into()),
                _ if rcpt.ends_with("@ours.test") || rcpt.ends_with("@mx.test") => {
                    Status::Permanent("no such user".into())
                }
                _ => Status::Permanent("not a local domain".into()),
            };
            let _ = conn.send(&status.to_record()).await;
        });
    }
}

/// A fake moat-auth that knows one domain, ours.test (its postmaster resolves).
async fn fake_auth(path: std::path::PathBuf) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind auth");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            let Ok(Some(req)) = conn.recv().await else {
                return;
            };
            let reply = if req.kind == b'R' && req.text(0).ok() == Some("postmaster@ours.test") {
                Target {
                    kind: TargetKind::Mailbox,
                    address: "postmaster@ours.test".into(),
                    maildir: "ours.test/postmaster".into(),
                    quota: None,
                    detail: None,
                }
                .push_fields(Status::Ok("1 target".into()).to_record())
            } else {
                Status::Permanent("no such user".into()).to_record()
            };
            let _ = conn.send(&reply).await;
        });
    }
}

/// A fake moat-queue that keeps what it is given and answers `K` TESTQUEUEID.
async fn fake_queue(path: std::path::PathBuf, queued: Queued) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind queue");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let queued = Arc::clone(&queued);
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            let Ok(Some(open)) = conn.recv().await else {
                return;
            };
            let client = open.text(1).unwrap_or("").to_string();
            let mut bytes = Vec::new();
            while let Ok(Some(r)) = conn.recv().await {
                match r.kind {
                    b'M' => bytes.extend_from_slice(&r.fields[0]),
                    b'E' => {
                        let env = (0..r.fields.len())
                            .map(|i| r.text(i).unwrap_or("?").to_string())
                            .collect();
                        queued
                            .lock()
                            .expect("lock")
                            .push((client.clone(), bytes.clone(), env));
                        let _ = conn
                            .send(&Status::Ok("TESTQUEUEID".into()).to_record())
                            .await;
                        return;
                    }
                    _ => return,
                }
            }
        });
    }
}

async fn start(extra: &[(&str, &str)]) -> TestServer {
    start_with(extra, false).await
}

/// `fakes`: run fake moat-local, moat-auth and moat-queue on the sockets.
async fn start_with(extra: &[(&str, &str)], fakes: bool) -> TestServer {
    let tmp = tempfile::tempdir().expect("tempdir");
    let queued = Arc::new(std::sync::Mutex::new(Vec::new()));
    if fakes {
        tokio::spawn(fake_local(tmp.path().join("local.sock")));
        tokio::spawn(fake_auth(tmp.path().join("auth.sock")));
        tokio::spawn(fake_queue(
            tmp.path().join("queue.sock"),
            Arc::clone(&queued),
        ));
        tokio::task::yield_now().await;
    }
    let sock = |name: &str| tmp.path().join(name).display().to_string();
    let mut map: HashMap<String, String> = [
        ("hostname", "mx.test".to_string()),
        ("auth_socket", sock("auth.sock")),
        ("queue_socket", sock("queue.sock")),
        ("local_socket", sock("local.sock")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_lookup(&|k| map.get(k).cloned()).expect("settings");
    let (stop_tx, stop) = watch::channel(false);
    let server = Arc::new(Server {
        policy: policy::Policy::new(&settings),
        limits: limits::Limits::new(settings.max_connections, settings.max_connections_per_ip),
        tls: None,
        stop,
        settings,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(accept_loop(listener, Service::Smtp, server));
    TestServer {
        port,
        stop: stop_tx,
        tmp,
        queued,
    }
}

struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(port: u16) -> Client {
        let (r, w) = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect")
            .into_split();
        Client {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// The next reply's last line ("" at end of stream).
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .expect("a reply within 10 s")
                .expect("read");
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.expect("write");
    }
}

#[tokio::test]
async fn a_dribbling_client_is_cut_off_by_the_command_deadline() {
    let s = start(&[("timeout_command_secs", "2")]).await;
    let mut c = Client::connect(s.port).await;
    assert!(c.reply().await.starts_with("220 "));
    let started = Instant::now();
    let mut cut = String::new();
    for b in "EHLO slow.client.example.with.a.long.name\r\n".bytes() {
        if c.writer.write_all(&[b]).await.is_err() {
            break;
        }
        let mut line = String::new();
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), c.reader.read_line(&mut line)).await
            && n > 0
        {
            cut = line;
            break;
        }
    }
    assert!(cut.starts_with("421 4.4.2 "), "{cut:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // And the connection is closed.
    let mut rest = String::new();
    let _ = c.reader.read_line(&mut rest).await;
    assert_eq!(rest, "");
}

#[tokio::test]
async fn commands_keep_a_session_alive_past_the_deadline() {
    let s = start(&[("timeout_command_secs", "1")]).await;
    let mut c = Client::connect(s.port).await;
    c.reply().await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send("NOOP\r\n").await;
        assert!(c.reply().await.starts_with("250 "));
    }
}

#[tokio::test]
async fn per_client_limit_answers_421() {
    let s = start(&[("max_connections_per_ip", "2")]).await;
    let mut a = Client::connect(s.port).await;
    let mut b = Client::connect(s.port).await;
    assert!(a.reply().await.starts_with("220 "));
    assert!(b.reply().await.starts_with("220 "));
    let mut c = Client::connect(s.port).await;
    assert!(c.reply().await.starts_with("421 4.7.0 "));
    drop(a);
    // The place is given back when the first session ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Client::connect(s.port).await;
        if d.reply().await.starts_with("220 ") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn stopping_closes_idle_sessions_and_lets_transactions_run_on() {
    let s = start(&[("drain_secs", "2")]).await;
    let mut idle = Client::connect(s.port).await;
    let mut busy = Client::connect(s.port).await;
    idle.reply().await;
    busy.reply().await;
    busy.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n").await;
    busy.reply().await;
    assert!(busy.reply().await.starts_with("250 "));
    let stopped_at = Instant::now();
    s.stop.send_replace(true);
    assert!(idle.reply().await.starts_with("421 4.3.2 "));
    // The transaction may go on: a command still gets its answer.
    busy.send("NOOP\r\n").await;
    assert!(busy.reply().await.starts_with("250 "));
    // ... until the drain time is over.
    assert!(busy.reply().await.starts_with("421 4.3.2 "));
    assert!(stopped_at.elapsed() >= Duration::from_millis(1900));
    // New connections are not accepted any more (here the listener is gone with the accept
    // loop; under the supervisor, which keeps it, they would wait in the backlog).
    let greeting = tokio::time::timeout(Duration::from_millis(500), async {
        let (r, _w) = TcpStream::connect(("127.0.0.1", s.port))
            .await?
            .into_split();
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await?;
        Ok::<String, std::io::Error>(line)
    })
    .await;
    assert!(
        !matches!(&greeting, Ok(Ok(line)) if !line.is_empty()),
        "{greeting:?}"
    );
}

#[tokio::test]
async fn a_transaction_ended_by_rset_is_closed_at_once_when_stopping() {
    let s = start(&[("drain_secs", "30")]).await;
    let mut c = Client::connect(s.port).await;
    c.reply().await;
    c.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n").await;
    c.reply().await;
    c.reply().await;
    s.stop.send_replace(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    c.send("RSET\r\n").await;
    assert!(c.reply().await.starts_with("250 "));
    assert!(c.reply().await.starts_with("421 4.3.2 "));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn recipients_on_port_25_get_the_right_codes() {
    let s = start_with(&[], true).await;
    let mut c = Client::connect(s.port).await;
    c.reply().await;
    c.send("EHLO client.example\r\nMAIL FROM:<x@sender.example>\r\n")
        .await;
    c.reply().await;
    c.reply().await;
    for (rcpt, expected) in [
        ("alice@ours.test", "250 2.1.5 "),
        ("Postmaster", "250 2.1.5 "),
        ("nobody@ours.test", "550 5.1.1 "),
        ("victim@elsewhere.test", "550 5.7.1 "),
        ("x@[192.0.2.1]", "550 5.7.1 "),
        ("full@ours.test", "452 4.2.2 "),
        ("flaky@ours.test", "451 4.3.0 "),
    ] {
        c.send(&format!("RCPT TO:<{rcpt}>\r\n")).await;
        let r = c.reply().await;
        assert!(r.starts_with(expected), "{rcpt}: {r:?}");
    }
}

#[tokio::test]
async fn authenticated_policy_relays_but_refuses_unknown_local_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    tokio::spawn(fake_local(tmp.path().join("local.sock")));
    tokio::spawn(fake_auth(tmp.path().join("auth.sock")));
    tokio::task::yield_now().await;
    let sock = |name: &str| tmp.path().join(name).display().to_string();
    let map: HashMap<&str, String> = [
        ("hostname", "mx.test".to_string()),
        ("auth_socket", sock("auth.sock")),
        ("queue_socket", sock("queue.sock")),
        ("local_socket", sock("local.sock")),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(&|k| map.get(k).cloned()).expect("settings");
    let p = policy::Policy::new(&settings);
    let path = |a: &str| {
        crate::proto::path::parse_forward_path(&format!("<{a}>"))
            .expect("path")
            .0
    };
    use crate::proto::RcptVerdict as V;
    assert_eq!(
        p.recipient(&path("alice@ours.test"), true, None).await,
        V::Accept
    );
    assert_eq!(
        p.recipient(&path("far@away.test"), true, None).await,
        V::Accept
    );
    assert_eq!(
        p.recipient(&path("nobody@ours.test"), true, None).await,
        V::Unknown
    );
    assert_eq!(
        p.recipient(&path("far@away.test"), false, None).await,
        V::RelayDenied
    );
}

#[tokio::test]
async fn a_message_goes_to_the_queue_with_received_first() {
    let s = start_with(&[], true).await;
    let mut c = Client::connect(s.port).await;
    c.reply().await;
    c.send(
        "EHLO client.example\r\nMAIL FROM:<x@sender.example>\r\n\
         RCPT TO:<alice@ours.test>\r\nDATA\r\n",
    )
    .await;
    for _ in 0..3 {
        c.reply().await;
    }
    assert!(c.reply().await.starts_with("354 "));
    c.send("Subject: test\r\n\r\n..dot\r\nbody\r\n.\r\n").await;
    let r = c.reply().await;
    assert_eq!(r, "250 2.0.0 OK: queued as TESTQUEUEID\r\n");
    // BDAT too, in two chunks.
    c.send(
        "MAIL FROM:<>\r\nRCPT TO:<alice@ours.test>\r\n\
         BDAT 10\r\nSubject: bBDAT 9 LAST\r\n\r\nchunk\r\n",
    )
    .await;
    for expected in [
        "250 ",
        "250 ",
        "250 2.0.0 10 octets",
        "250 2.0.0 OK: queued",
    ] {
        let r = c.reply().await;
        assert!(r.starts_with(expected), "{r:?}");
    }
    let queued = s.queued.lock().expect("lock").clone();
    assert_eq!(queued.len(), 2);
    let (client, bytes, env) = &queued[0];
    assert_eq!(client, "[127.0.0.1] client.example");
    assert_eq!(env, &["x@sender.example", "alice@ours.test"]);
    let text = String::from_utf8_lossy(bytes);
    let unfolded = text.replace("\r\n\t", " ");
    assert!(
        unfolded.starts_with(
            "Received: from client.example ([127.0.0.1]) by mx.test (moat) with ESMTP id "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("\r\nSubject: test\r\n\r\n.dot\r\nbody\r\n"),
        "{text}"
    );
    // Port 25 adds nothing but Received.
    assert!(
        !text.contains("Message-ID") && !text.contains("\nDate:"),
        "{text}"
    );
    let (_, bytes, env) = &queued[1];
    assert_eq!(env, &["", "alice@ours.test"]);
    assert!(String::from_utf8_lossy(bytes).ends_with("\r\nSubject: b\r\nchunk\r\n"));
}

#[tokio::test]
async fn an_unreachable_queue_is_a_temporary_failure() {
    let s = start_with(&[], true).await;
    // Take the fake queue away.
    std::fs::remove_file(s.tmp.path().join("queue.sock")).expect("rm");
    let mut c = Client::connect(s.port).await;
    c.reply().await;
    c.send(
        "EHLO client.example\r\nMAIL FROM:<x@sender.example>\r\n\
         RCPT TO:<alice@ours.test>\r\nDATA\r\n",
    )
    .await;
    for _ in 0..3 {
        c.reply().await;
    }
    assert!(c.reply().await.starts_with("354 "));
    c.send("Subject: test\r\n\r\nbody\r\n.\r\nNOOP\r\n").await;
    assert!(c.reply().await.starts_with("451 4.3.0 "));
    assert!(c.reply().await.starts_with("250 "));
}

/// A fake moat-auth `R` for the sender check. ours.test: alice, her sub-addresses (`+`),
/// info@ (an alias of alice), team@ (alice and bob), no catch-all. catchall.test: alice, and
/// a catch-all to alice; info@ there is an alias of alice and carol. flaky@ours.test: `Z`.
async fn fake_resolver(path: std::path::PathBuf) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind auth");
    let mailbox = |address: &str, detail: Option<&str>| Target {
        kind: TargetKind::Mailbox,
        address: address.into(),
        maildir: String::new(),
        quota: None,
        detail: detail.map(str::to_string),
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            let Ok(Some(req)) = conn.recv().await else {
                return;
            };
            let address = req.text(0).unwrap_or("").to_ascii_lowercase();
            let (local, domain) = address.split_once('@').unwrap_or(("", ""));
            let (base, tag) = match local.split_once('+') {
                Some((b, t)) => (b, Some(t)),
                None => (local, None),
            };
            let targets: Vec<Target> = match (domain, base) {
                (_, "flaky") => {
                    let z = Status::Temporary("user store unavailable".into());
                    let _ = conn.send(&z.to_record()).await;
                    return;
                }
                ("ours.test", "alice") => vec![mailbox("alice@ours.test", tag)],
                ("ours.test", "bob") => vec![mailbox("bob@ours.test", tag)],
                ("ours.test", "info") => vec![mailbox("alice@ours.test", tag)],
                ("ours.test", "team") => vec![
                    mailbox("alice@ours.test", tag),
                    mailbox("bob@ours.test", tag),
                ],
                ("catchall.test", "alice") => vec![mailbox("alice@catchall.test", tag)],
                ("catchall.test", "info") => vec![
                    mailbox("alice@catchall.test", tag),
                    mailbox("carol@catchall.test", tag),
                ],
                ("catchall.test", _) => vec![mailbox("alice@catchall.test", None)],
                _ => Vec::new(),
            };
            let reply = if targets.is_empty() {
                let why = if domain == "ours.test" {
                    "no such user"
                } else {
                    "not a local domain"
                };
                Status::Permanent(why.into()).to_record()
            } else {
                targets
                    .iter()
                    .fold(Status::Ok("targets".into()).to_record(), |r, t| {
                        t.push_fields(r)
                    })
            };
            let _ = conn.send(&reply).await;
        });
    }
}

#[tokio::test]
async fn senders_must_be_owned_by_the_login() {
    let tmp = tempfile::tempdir().expect("tempdir");
    tokio::spawn(fake_resolver(tmp.path().join("auth.sock")));
    tokio::task::yield_now().await;
    let sock = |name: &str| tmp.path().join(name).display().to_string();
    let map: HashMap<&str, String> = [
        ("hostname", "mx.test".to_string()),
        ("auth_socket", sock("auth.sock")),
        ("queue_socket", sock("queue.sock")),
        ("local_socket", sock("local.sock")),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(&|k| map.get(k).cloned()).expect("settings");
    let p = policy::Policy::new(&settings);
    let from = |a: &str| {
        crate::proto::path::parse_reverse_path(&format!("<{a}>"))
            .expect("path")
            .0
    };
    use crate::proto::SenderVerdict as V;
    let not_owned = |login: &str| V::NotOwned(login.to_string());
    let alice = "alice@ours.test";
    for owned in [
        "alice@ours.test",
        "ALICE@Ours.Test",
        "alice+lists@ours.test",
        "info@ours.test",
        "info+x@ours.test",
        "team@ours.test",
    ] {
        assert_eq!(p.sender(&from(owned), alice).await, V::Accept, "{owned}");
    }
    for foreign in [
        "bob@ours.test",
        "bob+alice@ours.test",
        "nobody@ours.test",
        "alice@far.test",
    ] {
        assert_eq!(
            p.sender(&from(foreign), alice).await,
            not_owned(alice),
            "{foreign}"
        );
    }
    assert_eq!(
        p.sender(&crate::proto::ReversePath::Null, alice).await,
        not_owned(alice)
    );
    // The catch-all delivers anything@catchall.test to alice: that is not hers to send as,
    // but her own address, her sub-addresses and an alias with other targets are.
    let alice = "alice@catchall.test";
    for owned in [
        "alice@catchall.test",
        "alice+x@catchall.test",
        "info@catchall.test",
    ] {
        assert_eq!(p.sender(&from(owned), alice).await, V::Accept, "{owned}");
    }
    assert_eq!(
        p.sender(&from("anything@catchall.test"), alice).await,
        not_owned(alice)
    );
    // moat-auth answering Z, or not there at all: try later.
    assert_eq!(
        p.sender(&from("flaky@ours.test"), "alice@ours.test").await,
        V::TempFail
    );
    let mut gone = map.clone();
    gone.insert("auth_socket", sock("nothing.sock"));
    let settings = Settings::from_lookup(&|k| gone.get(k).cloned()).expect("settings");
    let p = policy::Policy::new(&settings);
    assert_eq!(
        p.sender(&from("info@ours.test"), "alice@ours.test").await,
        V::TempFail
    );
    assert_eq!(
        p.sender(&from("alice@ours.test"), "alice@ours.test").await,
        V::Accept,
        "the login itself needs no lookup"
    );
}
