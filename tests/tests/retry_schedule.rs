//! The retry schedule and the delay notice end to end, against an aiosmtpd peer
//! (`tests/peers/smtp_peer.py`) whose `temp*` recipients always get 451: the attempts follow a
//! schedule shrunk to seconds, the sender gets exactly one "delayed" report (not for a recipient
//! whose NOTIFY leaves DELAY out), a restart of the whole stack keeps the persisted next attempt
//! and sends no second notice, and every message bounces when its lifetime ends.

use std::time::{Duration, Instant};

use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};

/// Submits as alice on port 587 (STARTTLS + AUTH) with these RCPT parameters.
fn submit(s: &Stack, to: &str, rcpt_options: &[&str], subject: &str) {
    let out = s.python(&format!(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", [{to:?}],
               b"From: alice@example.test\r\nSubject: {subject}\r\n\r\nstill trying\r\n",
               rcpt_options={rcpt_options:?})
"#
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

/// The queue's log line for attempt `n` at `rcpt`, if it is there: (queue id, the line).
fn attempt_line(log: &str, rcpt: &str, n: u32) -> Option<(String, String)> {
    let needle = format!(": to=<{rcpt}> deferred (attempt {n}): ");
    let line = log.lines().find(|l| l.contains(&needle))?;
    // `moat-queue[pid]: <id>: to=<...> deferred ...`
    let id = line.split(": ").nth(1)?.to_string();
    Some((id, line.to_string()))
}

/// Waits for attempt `n` at `rcpt`, polling the log every 10 ms; returns when it was first seen.
fn wait_attempt(s: &Stack, rcpt: &str, n: u32) -> (Instant, String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((id, line)) = attempt_line(&s.log(), rcpt, n) {
            return (Instant::now(), id, line);
        }
        assert!(
            Instant::now() < deadline,
            "no attempt {n} at <{rcpt}>; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_delay_notice(m: &str) -> bool {
    m.contains("\r\nAction: delayed\r\n")
}

#[test]
fn attempts_follow_the_schedule_one_delay_notice_survives_a_restart_then_the_bounce() {
    let peer = Peer::start(None);
    let mut s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[queue]\nretry_schedule = [\"1s\", \"2s\", \"3s\"]\ndelay_warning = \"4s\"\n\
             lifetime = \"12s\"\n\
             [remote]\nnameserver = \"127.0.0.1:9\"\ntimeout_connect_secs = 3\n\
             timeout_command_secs = 3\n[remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");

    // NOTIFY=FAILURE leaves the delay notice out; no NOTIFY (FAILURE,DELAY) asks for it. The
    // watched message goes last, so the log is being polled when its retries come.
    submit(&s, "temp2@far.example", &["NOTIFY=FAILURE"], "quiet");
    submit(&s, "temp@far.example", &[], "waiting");
    let rcpt = "temp@far.example";
    let (_, id, first) = wait_attempt(&s, rcpt, 1);
    assert!(first.contains("451 4.3.0 try again later"), "{first}");
    // Attempt 1 is logged before the submission returns: its time is not observed, so the gaps
    // start at attempt 2 (1 s after arrival, entry 1).
    let (t2, ..) = wait_attempt(&s, rcpt, 2);
    let (t3, ..) = wait_attempt(&s, rcpt, 3);
    let (t4, ..) = wait_attempt(&s, rcpt, 4);
    let (t5, ..) = wait_attempt(&s, rcpt, 5);
    let after5 = unix_now();
    let within = |gap: Duration, low: u64, high: u64| {
        gap >= Duration::from_millis(low) && gap < Duration::from_millis(high)
    };
    // Entry 2 (2 s) after attempt 2: not the default 5 minutes.
    assert!(
        within(t3 - t2, 1900, 2800),
        "attempt 2 → 3 after {:?}",
        t3 - t2
    );
    // The notice went with the first attempt at least 4 s after arrival: attempt 4, moved up
    // from 3 s after attempt 3 (6 s after arrival) to the warning time, or attempt 3 itself when
    // the arrival's second rounding makes that one late enough already.
    let log = s.log();
    let notice_at = log
        .find(&format!("{id}: delay notice "))
        .expect("the delay notice is logged");
    let with_notice = (1..=5)
        .filter(|n| {
            attempt_line(&log, rcpt, *n)
                .and_then(|(_, line)| log.find(&line))
                .is_some_and(|at| at < notice_at)
        })
        .max();
    match with_notice {
        Some(4) => assert!(
            within(t4 - t3, 0, 1300),
            "attempt 4 came {:?} after attempt 3: not moved up to the delay warning",
            t4 - t3
        ),
        Some(3) => assert!(within(t4 - t3, 2900, 3800), "{:?}", t4 - t3),
        other => panic!("the delay notice went after attempt {other:?}:\n{log}"),
    }
    // Entry 3 (3 s), the last, which repeats; the old doubling would give 4 s here.
    assert!(
        within(t5 - t4, 2900, 3800),
        "attempt 4 → 5 after {:?}",
        t5 - t4
    );
    // The next attempt is persisted: `<attempts> <next unix secs> <last error>`, written just
    // after the attempt's log lines.
    let path = s.data.join("queue/retry").join(&id);
    let deadline = Instant::now() + Duration::from_secs(2);
    let retry = loop {
        let retry = moat_tests::read(&path);
        if retry.starts_with("5 ") || Instant::now() > deadline {
            break retry;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut fields = retry.splitn(3, ' ');
    assert_eq!(fields.next(), Some("5"), "{retry}");
    let next: u64 = fields
        .next()
        .and_then(|n| n.parse().ok())
        .expect("next try");
    assert!(
        (after5 + 1..=after5 + 4).contains(&next),
        "next try {next}, now {after5}: {retry}"
    );
    assert!(retry.contains("451 4.3.0 try again later"), "{retry}");

    // Exactly one notice so far, for the recipient that asked, with the 451 reason.
    let got = s.wait_messages("alice@example.test", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let notice = &got[0];
    assert!(is_delay_notice(notice), "{notice}");
    assert!(
        notice.contains("\r\nSubject: Delayed Mail (still being retried)\r\n"),
        "{notice}"
    );
    assert!(
        notice.contains(
            "\r\nFinal-Recipient: rfc822; temp@far.example\r\nAction: delayed\r\nStatus: 4.3.0\r\n"
        ),
        "{notice}"
    );
    assert!(notice.contains("451 4.3.0 try again later"), "{notice}");
    assert!(notice.contains("\r\nWill-Retry-Until: "), "{notice}");
    assert!(
        notice.contains("\r\nSubject: waiting\r\n"),
        "the header comes back"
    );
    assert!(!notice.contains("still trying"), "the header only");
    assert!(!notice.contains("temp2@far.example"), "{notice}");
    s.wait_log("no delay notice: no waiting recipient asked for one (NOTIFY)");

    // A restart of the whole stack: the persisted time holds and no second notice is sent.
    s.restart();
    let (t6, ..) = wait_attempt(&s, rcpt, 6);
    assert!(
        t6 - t5 >= Duration::from_millis(2500),
        "attempt 6 came {:?} after attempt 5: the persisted time was not kept",
        t6 - t5
    );

    // The lifetime ends: both bounce (4.4.7), and still only the one delay notice.
    s.wait_messages("alice@example.test", 3);
    // A late duplicate would land right after: give it the time to show.
    std::thread::sleep(Duration::from_millis(500));
    let all = s.messages("alice@example.test");
    assert_eq!(all.len(), 3, "one notice and two bounces: {all:?}");
    assert_eq!(all.iter().filter(|m| is_delay_notice(m)).count(), 1);
    for rcpt in ["temp@far.example", "temp2@far.example"] {
        assert!(
            all.iter().any(|m| m.contains(&format!(
                "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 4.4.7\r\n"
            ))),
            "no expiry bounce for {rcpt}: {all:?}"
        );
    }
    assert_eq!(
        s.log().matches(&format!("{id}: delay notice ")).count(),
        1,
        "{}",
        s.log()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.queued() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.queued(), 0, "{}", s.log());
}
