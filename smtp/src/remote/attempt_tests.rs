//! `attempt` against a scripted SMTP server on loopback: connection reuse, RSET only after an
//! aborted transaction, the new connection when a pooled one was closed meanwhile, the
//! MAIL FROM parameters for 8BITMIME and SMTPUTF8, and AUTH (PLAIN, LOGIN, refused, never in
//! plaintext unless the route allows it; pooled sessions keyed by the credentials).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_common::config::TlsPolicy;
use moat_common::wire::Status;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::remote::mime::Needs;

/// What the scripted server does.
#[derive(Clone, Copy, Default)]
struct Script {
    /// EHLO keywords offered besides PIPELINING.
    smtputf8: bool,
    /// Close the first connection right after its first message (an idle timeout).
    close_after_first: bool,
    /// What EHLO offers for AUTH and how AUTH ends.
    auth: AuthScript,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum AuthScript {
    /// No AUTH offered.
    #[default]
    None,
    /// `AUTH PLAIN LOGIN`; 235 for `relay` / `pw-right`.
    Both,
    /// `AUTH LOGIN` only; 235 for `relay` / `pw-right`.
    LoginOnly,
}

/// `relay` / `pw-right`, the only login the scripted server takes, as PLAIN and LOGIN send it.
const PLAIN_RIGHT: &str = "AHJlbGF5AHB3LXJpZ2h0";
const LOGIN_USER: &str = "cmVsYXk=";
const LOGIN_RIGHT: &str = "cHctcmlnaHQ=";

/// Every command line the server read, per connection (index = connection number).
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

async fn server(script: Script) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = {
                let mut all = log.lock().expect("lock");
                all.push(Vec::new());
                all.len() - 1
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 scripted ESMTP\r\n").await;
                let mut in_data = false;
                let mut accepted = 0;
                // LOGIN's progress: 1 after `AUTH LOGIN`, 2 after the user.
                let mut login = 0;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                            if script.close_after_first && conn == 0 {
                                return;
                            }
                        }
                        continue;
                    }
                    log.lock().expect("lock")[conn].push(line.clone());
                    if login > 0 {
                        login += 1;
                        let reply: &[u8] = match login {
                            2 if line == LOGIN_USER => b"334 UGFzc3dvcmQ6\r\n",
                            3 if line == LOGIN_RIGHT => b"235 2.7.0 ok\r\n",
                            _ => b"535 5.7.8 no\r\n",
                        };
                        if login == 3 || !reply.starts_with(b"334") {
                            login = 0;
                        }
                        let _ = write.write_all(reply).await;
                        continue;
                    }
                    if line.starts_with("AUTH PLAIN ") && !line.ends_with(PLAIN_RIGHT) {
                        // Echoes what it got, as a hostile server might.
                        let refusal = format!("535 5.7.8 {line} is wrong\r\n");
                        let _ = write.write_all(refusal.as_bytes()).await;
                        continue;
                    }
                    let verb = line.split([' ', ':']).next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" if script.auth == AuthScript::Both => {
                            b"250-scripted\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"
                        }
                        "EHLO" if script.auth == AuthScript::LoginOnly => {
                            b"250-scripted\r\n250-PIPELINING\r\n250 AUTH=LOGIN\r\n"
                        }
                        "AUTH" if line == "AUTH LOGIN" => {
                            login = 1;
                            b"334 VXNlcm5hbWU6\r\n"
                        }
                        "AUTH" if line == format!("AUTH PLAIN {PLAIN_RIGHT}") => {
                            b"235 2.7.0 ok\r\n"
                        }
                        "AUTH" => b"504 5.5.4 unknown mechanism\r\n",
                        "EHLO" if script.smtputf8 => {
                            b"250-scripted\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                        }
                        "EHLO" => b"250-scripted\r\n250 PIPELINING\r\n",
                        "MAIL" => {
                            accepted = 0;
                            b"250 ok\r\n"
                        }
                        "RCPT" if line.contains("<bad@") => b"550 5.1.1 no such user\r\n",
                        "RCPT" => {
                            accepted += 1;
                            b"250 ok\r\n"
                        }
                        "DATA" if accepted == 0 => b"554 5.5.1 no valid recipients\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (addr, seen)
}

fn message(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(bytes).expect("write");
    f
}

fn timeouts() -> Timeouts {
    let s = Duration::from_secs(5);
    Timeouts {
        connect: s,
        command: s,
        data_block: s,
        data_end: s,
    }
}

async fn run(
    pool: &Pool<Connection>,
    addr: SocketAddr,
    recipients: &[String],
    needs: Needs,
) -> Outcome {
    run_as(pool, addr, recipients, needs, None).await
}

async fn run_as(
    pool: &Pool<Connection>,
    addr: SocketAddr,
    recipients: &[String],
    needs: Needs,
    auth: Option<&Credentials>,
) -> Outcome {
    let tls = Tls::new(None).expect("tls");
    let file = message(b"Subject: t\r\n\r\nhi\r\n");
    let job = Job {
        helo: "me.example",
        sender: "a@me.example",
        recipients,
        message: &file,
        prefix: &[],
        size: 20,
        needs,
    };
    let target = Target {
        host: "mx.example",
        addr,
        policy: TlsPolicy::None,
        auth,
    };
    attempt(&tls, pool, timeouts(), &target, &job, "TESTID").await
}

fn delivered(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Done(s) if s.iter().all(|s| matches!(s, Status::Ok(_))))
}

fn to(addr: &str) -> Vec<String> {
    vec![addr.to_string()]
}

#[tokio::test]
async fn two_messages_share_one_connection_and_rset_follows_only_an_aborted_one() {
    let (addr, seen) = server(Script::default()).await;
    let pool = Pool::new(2, 4);
    assert!(delivered(
        &run(&pool, addr, &to("x@b.example"), Needs::default()).await
    ));
    assert_eq!(pool.len(), 1, "pooled after a clean transaction");
    assert!(delivered(
        &run(&pool, addr, &to("y@b.example"), Needs::default()).await
    ));
    // All recipients refused: the transaction is left open, so the next one starts with RSET.
    let refused = run(&pool, addr, &to("bad@b.example"), Needs::default()).await;
    assert!(matches!(&refused, Outcome::Done(s) if matches!(&s[0], Status::Permanent(_))));
    assert!(delivered(
        &run(&pool, addr, &to("z@b.example"), Needs::default()).await
    ));
    pool.close_all().await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "one connection: {seen:?}");
    let verbs: Vec<&str> = seen[0]
        .iter()
        .map(|l| l.split([' ', ':']).next().unwrap_or(""))
        .collect();
    assert_eq!(
        verbs,
        [
            "EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "RSET",
            "MAIL", "RCPT", "DATA", "QUIT"
        ]
    );
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced_without_a_failure() {
    let (addr, seen) = server(Script {
        close_after_first: true,
        ..Script::default()
    })
    .await;
    let pool = Pool::new(2, 4);
    assert!(delivered(
        &run(&pool, addr, &to("x@b.example"), Needs::default()).await
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = run(&pool, addr, &to("y@b.example"), Needs::default()).await;
    assert!(delivered(&second), "{second:?}");
    assert_eq!(seen.lock().expect("lock").len(), 2, "a new connection");
    pool.close_all().await;
}

#[tokio::test]
async fn mail_from_carries_body_and_smtputf8_only_when_offered_and_needed() {
    let utf8 = Needs {
        eight_bit: true,
        smtputf8: true,
    };
    let (plain, seen_plain) = server(Script::default()).await;
    let pool = Pool::new(2, 4);
    let refused = run(&pool, plain, &to("ü@b.example"), utf8).await;
    match &refused {
        Outcome::Done(s) => match &s[0] {
            Status::Permanent(t) => assert!(
                t.starts_with("5.6.7 ") && t.contains("does not support SMTPUTF8"),
                "{t}"
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let eight = Needs {
        eight_bit: true,
        smtputf8: false,
    };
    assert!(delivered(
        &run(&pool, plain, &to("x@b.example"), eight).await
    ));
    let (rich, seen_rich) = server(Script {
        smtputf8: true,
        ..Script::default()
    })
    .await;
    assert!(delivered(&run(&pool, rich, &to("ü@b.example"), utf8).await));
    assert!(delivered(
        &run(&pool, rich, &to("x@b.example"), Needs::default()).await
    ));
    pool.close_all().await;
    let mails = |seen: &Seen| -> Vec<String> {
        seen.lock().expect("lock")[0]
            .iter()
            .filter(|l| l.starts_with("MAIL"))
            .cloned()
            .collect()
    };
    // Without 8BITMIME offered the 8-bit message goes as it is, without BODY=.
    assert_eq!(mails(&seen_plain), ["MAIL FROM:<a@me.example>"]);
    assert_eq!(
        mails(&seen_rich),
        [
            "MAIL FROM:<a@me.example> BODY=8BITMIME SMTPUTF8",
            "MAIL FROM:<a@me.example>"
        ]
    );
}

/// Credentials of route `route`; `plaintext_allowed` as for `tls = "none"` to a loopback host.
fn creds(route: &str, password: &str, plaintext_allowed: bool) -> Credentials {
    Credentials::for_tests(route, "relay", password, plaintext_allowed)
}

fn lines(seen: &Seen, conn: usize) -> Vec<String> {
    seen.lock().expect("lock")[conn].clone()
}

#[tokio::test]
async fn auth_plain_once_per_session_and_sessions_are_kept_per_credentials() {
    let (addr, seen) = server(Script {
        auth: AuthScript::Both,
        ..Script::default()
    })
    .await;
    let pool = Pool::new(4, 8);
    let smarthost = creds("*", "pw-right", true);
    let x = to("x@b.example");
    for _ in 0..2 {
        let sent = run_as(&pool, addr, &x, Needs::default(), Some(&smarthost)).await;
        assert!(delivered(&sent), "{sent:?}");
    }
    // Another route with its own credentials, and a route without: a session each.
    let other = creds("c.example", "pw-right", true);
    assert!(delivered(
        &run_as(&pool, addr, &x, Needs::default(), Some(&other)).await
    ));
    assert!(delivered(&run(&pool, addr, &x, Needs::default()).await));
    pool.close_all().await;
    assert_eq!(seen.lock().expect("lock").len(), 3, "three sessions");
    let first = lines(&seen, 0);
    assert_eq!(first[1], format!("AUTH PLAIN {PLAIN_RIGHT}"));
    assert_eq!(first.iter().filter(|l| l.starts_with("AUTH")).count(), 1);
    assert_eq!(first.iter().filter(|l| l.starts_with("MAIL")).count(), 2);
    assert!(lines(&seen, 1)[1].starts_with("AUTH PLAIN"));
    assert!(!lines(&seen, 2).iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn auth_login_when_plain_is_not_offered() {
    let (addr, seen) = server(Script {
        auth: AuthScript::LoginOnly,
        ..Script::default()
    })
    .await;
    let pool = Pool::new(2, 4);
    let sent = run_as(
        &pool,
        addr,
        &to("x@b.example"),
        Needs::default(),
        Some(&creds("*", "pw-right", true)),
    )
    .await;
    assert!(delivered(&sent), "{sent:?}");
    pool.close_all().await;
    assert_eq!(
        lines(&seen, 0)[1..4],
        ["AUTH LOGIN", LOGIN_USER, LOGIN_RIGHT]
    );
}

#[tokio::test]
async fn a_refused_login_defers_and_never_quotes_the_password() {
    let (addr, seen) = server(Script {
        auth: AuthScript::Both,
        ..Script::default()
    })
    .await;
    let pool = Pool::new(2, 4);
    let wrong = creds("*", "pw-wrong", true);
    let outcome = run_as(
        &pool,
        addr,
        &to("x@b.example"),
        Needs::default(),
        Some(&wrong),
    )
    .await;
    let Outcome::Next(text) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        text.starts_with("4.7.0 mx.example[127.0.0.1] said: 535 5.7.8 AUTH PLAIN *** is wrong"),
        "{text}"
    );
    assert!(text.ends_with("(SASL authentication failed)"), "{text}");
    assert!(!text.contains("pw-wrong"), "{text}");
    assert_eq!(pool.len(), 0, "a refused session is not kept");
    let sent = lines(&seen, 0);
    assert!(!sent.iter().any(|l| l.starts_with("MAIL")), "{sent:?}");
}

#[tokio::test]
async fn no_password_in_plaintext_unless_the_route_allows_it() {
    let (addr, seen) = server(Script {
        auth: AuthScript::Both,
        ..Script::default()
    })
    .await;
    let pool = Pool::new(2, 4);
    let guarded = creds("*", "pw-right", false);
    let outcome = run_as(
        &pool,
        addr,
        &to("x@b.example"),
        Needs::default(),
        Some(&guarded),
    )
    .await;
    let Outcome::Next(text) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(text.contains("not sent without TLS"), "{text}");
    let sent = lines(&seen, 0);
    assert!(!sent.iter().any(|l| l.starts_with("AUTH")), "{sent:?}");
    // A server that offers no AUTH at all cannot take a route with credentials either.
    let (bare, _) = server(Script::default()).await;
    let outcome = run_as(
        &pool,
        bare,
        &to("x@b.example"),
        Needs::default(),
        Some(&creds("*", "pw-right", true)),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Next(t) if t.contains("does not offer AUTH")),
        "{outcome:?}"
    );
}
