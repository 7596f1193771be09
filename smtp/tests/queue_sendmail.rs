//! `sendmail`, the real binary with a real pipe, against the real moat-queue.

mod queue_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use queue_support::*;

const WAIT: Duration = Duration::from_secs(20);

/// Runs sendmail with `args`, feeding `input`; returns (exit code, stdout, stderr).
async fn sendmail(env: &Env, args: &[&str], input: &[u8]) -> (i32, String, String) {
    sendmail_to(&env.socket, args, input).await
}

async fn sendmail_to(
    socket: &std::path::Path,
    args: &[&str],
    input: &[u8],
) -> (i32, String, String) {
    let (socket, args, input) = (
        socket.to_path_buf(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        input.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sendmail"))
            .args(&args)
            .env("MOAT_QUEUE_SOCKET", &socket)
            .env("MOAT_HOSTNAME", "host.example.test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sendmail");
        let mut stdin = child.stdin.take().expect("stdin");
        // The child may stop reading early (a lone '.'): a broken pipe is fine.
        let _ = stdin.write_all(&input);
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_t_takes_recipients_from_the_header_and_hides_bcc() {
    let env = Env::new(always_ok());
    let _queue = env.start(&[]);
    let input = b"To: Bob <bob@example.test>, carol@example.test\nCc: dave\nBcc: eve@example.test\nSubject: cron\n\nline one\n.\nnot sent\n";
    let (code, out, err) = sendmail(
        &env,
        &["-t", "-v", "-F", "Cron Daemon", "bob@example.test"],
        input,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sendmail: queued as "), "{out}");
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 4).await,
        "{}",
        env.log()
    );
    let mut rcpts: Vec<String> = env
        .local
        .delivered()
        .iter()
        .map(|d| d.rcpt.clone())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "bob@example.test",
            "carol@example.test",
            "dave@host.example.test",
            "eve@example.test"
        ]
    );
    let d = &env.local.delivered()[0];
    let text = String::from_utf8(d.message.clone()).expect("utf8");
    assert!(!text.replace("\r\n", "").contains('\n'), "LF became CRLF");
    assert!(!text.contains("Bcc") && !text.contains("eve@"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nline one\r\n"),
        "a lone dot ends the message: {text:?}"
    );
    assert!(text.starts_with("Received: by host.example.test (moat sendmail, from userid "));
    assert!(header(&d.message, "Date").is_some());
    assert!(header(&d.message, "Message-ID").is_some_and(|m| m.ends_with("@host.example.test>")));
    let from = header(&d.message, "From").expect("From");
    assert!(
        from.starts_with("Cron Daemon <") && from.ends_with("@host.example.test>"),
        "{from}"
    );
    assert!(env.log().contains("origin=sendmail"), "{}", env.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_i_and_dash_f() {
    let env = Env::new(always_ok());
    let _queue = env.start(&[]);
    let input = b"From: me@example.test\r\nSubject: dots\r\n\r\n.\r\nafter the dot\r\n";
    let (code, _, err) = sendmail(
        &env,
        &[
            "-oi",
            "-f",
            "<bounces@example.test>",
            "--",
            "x@example.test",
        ],
        input,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sendmail(
        &env,
        &["-i", "-f<>", "y@example.test"],
        b"no header at all\n",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(wait_until(WAIT, || env.local.delivered().len() == 2).await);
    let got = env.local.delivered();
    let x = got.iter().find(|d| d.rcpt == "x@example.test").expect("x");
    assert_eq!(x.sender, "bounces@example.test");
    let text = String::from_utf8_lossy(&x.message);
    assert!(text.ends_with("\r\n\r\n.\r\nafter the dot\r\n"), "{text}");
    assert_eq!(
        header(&x.message, "From").as_deref(),
        Some("me@example.test")
    );
    let y = got.iter().find(|d| d.rcpt == "y@example.test").expect("y");
    assert_eq!(y.sender, "", "-f <> is the null sender");
    assert!(String::from_utf8_lossy(&y.message).ends_with("\r\n\r\nno header at all\r\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes() {
    let env = Env::new(always_ok());
    let _queue = env.start(&[("max_message_size", "2000")]);
    let (code, _, err) = sendmail(&env, &[], b"Subject: x\n\nno one\n").await;
    assert_eq!(code, 64, "no recipients: {err}");
    assert!(err.starts_with("sendmail: "), "{err}");
    let (code, _, _) = sendmail(&env, &["-bp"], b"").await;
    assert_eq!(code, 64, "unsupported mode");
    let (code, _, err) = sendmail(&env, &["a@example.test"], &vec![b'x'; 5000]).await;
    assert_eq!(code, 65, "too big: {err}");
    assert!(err.contains("too big"), "{err}");
    let (code, _, err) = sendmail(&env, &["two@at@example.test"], b"x\n").await;
    assert_eq!(code, 65, "bad address: {err}");
    let (code, out, _) = sendmail(&env, &["--help"], b"").await;
    assert_eq!(code, 0);
    assert!(out.contains("usage: sendmail"));
    // No queue at that socket: try again later.
    let gone = env.dir.path().join("nothing-here.sock");
    let (code, _, err) = sendmail_to(&gone, &["a@example.test"], b"x\n").await;
    assert_eq!(code, 75, "{err}");
    assert_eq!(env.all_files(), 0);
}
