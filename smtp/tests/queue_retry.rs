//! moat-queue, the real binary: temporary failures and retries, permanent failures and bounces
//! (RFC 3464 / RFC 6522, parsed here), the null sender, expiry, a restart keeping the schedule.

mod queue_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_common::wire::Status;
use queue_support::*;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_failure_is_retried_later() {
    let env = Env::new(Arc::new(|_, attempt| {
        if attempt == 1 {
            Status::Temporary("remote delivery is not available yet".into())
        } else {
            Status::Ok("delivered".into())
        }
    }));
    let _queue = env.start(&[]);
    let start = Instant::now();
    let id = env
        .inject_ok("a@example.test", &["b@example.test"], &message("retry"))
        .await;
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 1).await,
        "{}",
        env.log()
    );
    let attempts = env.local.attempts();
    assert_eq!(attempts.len(), 2);
    let gap = attempts[1].at.duration_since(attempts[0].at);
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(wait_until(WAIT, || env.all_files() == 0).await);
    let log = env.log();
    assert!(
        log.contains(&format!(
            "{id}: to=<b@example.test> deferred (attempt 1): remote delivery is not available yet"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{id}: to=<b@example.test> delivered")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_survives_a_restart() {
    let env = Env::new(Arc::new(|_, attempt| {
        if attempt == 1 {
            Status::Temporary("later".into())
        } else {
            Status::Ok("delivered".into())
        }
    }));
    let mut queue = env.start(&[("retry_schedule", "3")]);
    env.inject_ok("a@example.test", &["b@example.test"], &message("restart"))
        .await;
    assert!(wait_until(WAIT, || env.files("retry") == 1).await);
    assert!(queue.terminate(Duration::from_secs(15)));
    let _queue = env.start(&[("retry_schedule", "3")]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(env.local.attempts().len(), 1, "the retry time was kept");
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 1).await,
        "{}",
        env.log()
    );
    let attempts = env.local.attempts();
    assert!(attempts[1].at.duration_since(attempts[0].at) >= Duration::from_millis(2500));
}

/// The parts of a multipart message: (part header, part body) in order.
fn mime_parts(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message).to_string();
    let content_type = header(message, "Content-Type").expect("Content-Type");
    assert!(
        content_type.starts_with("multipart/report;"),
        "{content_type}"
    );
    assert!(
        content_type.contains("report-type=delivery-status"),
        "{content_type}"
    );
    let boundary = content_type
        .split("boundary=\"")
        .nth(1)
        .and_then(|b| b.split('"').next())
        .expect("boundary");
    let (_, body) = text.split_once("\r\n\r\n").expect("body");
    let delimiter = format!("\r\n--{boundary}");
    let body = format!("\r\n{body}");
    let (_, after) = body.split_once(&delimiter).expect("first part");
    let (inner, epilogue) = after
        .rsplit_once(&format!("{delimiter}--"))
        .expect("close delimiter");
    assert_eq!(epilogue, "\r\n");
    inner
        .split(&delimiter)
        .map(|part| {
            let part = part.strip_prefix("\r\n").expect("CRLF after the delimiter");
            let (head, body) = part.split_once("\r\n\r\n").expect("part header");
            (head.to_string(), body.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_failure_bounces_to_the_sender() {
    let env = Env::new(Arc::new(|rcpt, _| match rcpt {
        "bad@example.test" => Status::Permanent("5.1.1 no such user".into()),
        "alsobad@example.test" => Status::Permanent("mailbox disabled".into()),
        _ => Status::Ok("delivered".into()),
    }));
    let _queue = env.start(&[]);
    let original = message("the original");
    let id = env
        .inject_ok(
            "alice@example.test",
            &[
                "good@example.test",
                "bad@example.test",
                "alsobad@example.test",
            ],
            &original,
        )
        .await;
    assert!(
        wait_until(WAIT, || env.local.attempts().len() == 4).await,
        "{}",
        env.log()
    );
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "{}",
        env.log()
    );
    let bounces: Vec<_> = env
        .local
        .attempts()
        .into_iter()
        .filter(|a| a.rcpt == "alice@example.test")
        .collect();
    assert_eq!(bounces.len(), 1, "exactly one bounce");
    let bounce = &bounces[0];
    assert_eq!(bounce.sender, "", "bounces come from the null sender");
    assert_ne!(bounce.id, id);
    let msg = &bounce.message;
    assert!(
        !String::from_utf8_lossy(msg)
            .replace("\r\n", "")
            .contains('\n'),
        "CRLF only"
    );
    assert_eq!(
        header(msg, "From").as_deref(),
        Some("MAILER-DAEMON@mx.example.test (Mail Delivery System)")
    );
    assert_eq!(header(msg, "To").as_deref(), Some("<alice@example.test>"));
    assert_eq!(
        header(msg, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(header(msg, "Date").is_some() && header(msg, "Message-ID").is_some());
    let parts = mime_parts(msg);
    assert_eq!(parts.len(), 3);
    assert!(parts[0].0.contains("Content-Type: text/plain"));
    assert!(parts[0].1.contains("<bad@example.test>: no such user"));
    assert!(parts[1].0.contains("Content-Type: message/delivery-status"));
    assert!(parts[2].0.contains("Content-Type: text/rfc822-headers"));
    assert!(parts[2].1.contains("Subject: the original\r\n"));
    assert!(!parts[2].1.contains("Hello."), "headers only");
    // The delivery-status body: a per-message group, then one group per failed recipient.
    let groups: Vec<&str> = parts[1].1.trim_end().split("\r\n\r\n").collect();
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert!(groups[0].contains("Reporting-MTA: dns; mx.example.test"));
    assert!(groups[0].contains("Arrival-Date: "));
    let field = |group: &str, name: &str| {
        group
            .split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    let mut recipients = Vec::new();
    for group in &groups[1..] {
        assert_eq!(field(group, "Action").as_deref(), Some("failed"));
        recipients.push((
            field(group, "Final-Recipient").expect("Final-Recipient"),
            field(group, "Status").expect("Status"),
            field(group, "Diagnostic-Code").expect("Diagnostic-Code"),
        ));
    }
    recipients.sort();
    assert_eq!(
        recipients,
        vec![
            (
                "rfc822; alsobad@example.test".into(),
                "5.0.0".into(),
                "X-Moat; mailbox disabled".into()
            ),
            (
                "rfc822; bad@example.test".into(),
                "5.1.1".into(),
                "X-Moat; no such user".into()
            ),
        ]
    );
    let log = env.log();
    assert!(
        log.contains(&format!(
            "{id}: bounce {} queued to <alice@example.test> for 2 recipient(s)",
            bounce.id
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_sender_message_is_never_bounced() {
    let env = Env::new(Arc::new(|_, _| {
        Status::Permanent("5.1.1 no such user".into())
    }));
    let _queue = env.start(&[]);
    let id = env
        .inject_ok("", &["bad@example.test"], &message("bounce of a bounce"))
        .await;
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "{}",
        env.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.local.attempts().len(), 1, "no bounce was sent");
    assert!(env.log().contains(&format!(
        "{id}: 1 recipient(s) failed; no bounce to the null sender"
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_message_bounces() {
    let env = Env::new(Arc::new(|rcpt, _| {
        if rcpt == "alice@example.test" {
            Status::Ok("bounce delivered".into())
        } else {
            Status::Temporary("over quota".into())
        }
    }));
    let _queue = env.start(&[("queue_lifetime_secs", "3")]);
    let start = Instant::now();
    env.inject_ok(
        "alice@example.test",
        &["full@example.test"],
        &message("expiring"),
    )
    .await;
    assert!(
        wait_until(WAIT, || env.local.delivered().len() == 1).await,
        "{}",
        env.log()
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    let tries = env
        .local
        .attempts()
        .iter()
        .filter(|a| a.rcpt == "full@example.test")
        .count();
    assert!(tries >= 2, "{tries} tries");
    let bounce = &env.local.delivered()[0];
    let parts = mime_parts(&bounce.message);
    assert!(
        parts[1].1.contains(
            "Final-Recipient: rfc822; full@example.test\r\nAction: failed\r\nStatus: 4.4.7\r\n"
        ),
        "{}",
        parts[1].1
    );
    assert!(parts[1].1.contains("over quota"));
    assert!(wait_until(WAIT, || env.all_files() == 0).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_delay_notice_per_message_even_across_a_restart_and_a_crash() {
    let env = Env::new(Arc::new(|rcpt, _| match rcpt {
        "alice@example.test" => Status::Ok("delivered".into()),
        _ => Status::Temporary("4.2.2 mailbox full".into()),
    }));
    let settings = [
        ("retry_schedule", "1"),
        ("delay_warning_secs", "1"),
        ("queue_lifetime_secs", "6"),
    ];
    let mut queue = env.start(&settings);
    let id = env
        .inject_ok(
            "alice@example.test",
            &["full@example.test"],
            &message("late"),
        )
        .await;
    let null = env
        .inject_ok("", &["full@example.test"], &message("a bounce"))
        .await;
    let notices = || {
        env.local
            .delivered()
            .into_iter()
            .filter(|a| String::from_utf8_lossy(&a.message).contains("Action: delayed"))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(WAIT, || notices().len() == 1).await,
        "{}",
        env.log()
    );
    // A clean restart, then a crash: the `W` line in done/<id> settles it for good.
    assert!(queue.terminate(Duration::from_secs(15)));
    let mut queue = env.start(&settings);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    queue.kill9();
    let _queue = env.start(&settings);
    assert!(
        wait_until(WAIT, || env.all_files() == 0).await,
        "{}",
        env.log()
    );
    let notice = &notices()[0];
    assert_eq!(notices().len(), 1, "{}", env.log());
    assert_eq!(
        (notice.sender.as_str(), notice.rcpt.as_str()),
        ("", "alice@example.test")
    );
    assert_ne!(notice.id, id);
    let msg = &notice.message;
    assert_eq!(
        header(msg, "Subject").as_deref(),
        Some("Delayed Mail (still being retried)")
    );
    let parts = mime_parts(msg);
    assert_eq!(parts.len(), 3);
    assert!(
        parts[1].1.contains(
            "Final-Recipient: rfc822; full@example.test\r\nAction: delayed\r\nStatus: 4.2.2\r\n\
             Diagnostic-Code: X-Moat; mailbox full\r\n"
        ),
        "{}",
        parts[1].1
    );
    assert!(parts[1].1.contains("Will-Retry-Until: "), "{}", parts[1].1);
    assert!(parts[2].0.contains("Content-Type: text/rfc822-headers"));
    assert!(parts[2].1.contains("Subject: late\r\n"));
    // Then the expiry bounce, and nothing for the null sender's message.
    let bounces: Vec<_> = env
        .local
        .delivered()
        .into_iter()
        .filter(|a| String::from_utf8_lossy(&a.message).contains("Action: failed"))
        .collect();
    assert_eq!(bounces.len(), 1, "{}", env.log());
    let log = env.log();
    assert_eq!(
        log.matches(&format!("{id}: delay notice ")).count(),
        1,
        "{log}"
    );
    assert!(
        log.contains(&format!("{null}: no delay notice: the sender is null")),
        "{log}"
    );
}
