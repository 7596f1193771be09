//! Limits: line lengths, recipients, errors, junk commands, and bounded memory.

mod proto_harness;

use proto_harness::{Harness, ce, config};

#[test]
fn hundred_kilobyte_command_line() {
    let mut h = Harness::ehlo();
    let mut line = b"MAIL FROM:<".to_vec();
    line.extend(std::iter::repeat_n(b'a', 100 * 1024));
    line.extend_from_slice(b"@example.org>\r\n");
    // In 4 KiB reads, as a socket would deliver it.
    let r = h.feed_split(&line, &[4096]);
    assert_eq!(r.len(), 1, "one reply for one line");
    assert_eq!(ce(&r[0]), (500, Some((5, 5, 2))));
    assert_eq!(r[0].lines()[0], "Line too long");
    assert!(
        h.max_buffered <= 2048,
        "the session kept {} octets of an over-long line",
        h.max_buffered
    );
    // Still usable, in sync.
    assert_eq!(
        h.codes("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n"),
        vec![250, 250]
    );
}

#[test]
fn hundred_kilobyte_line_in_one_read_is_not_kept() {
    let mut h = Harness::ehlo();
    let mut bytes = vec![b'X'; 100 * 1024];
    bytes.extend_from_slice(b"\r\nNOOP\r\n");
    let r = h.feed(&bytes);
    assert_eq!(
        r.iter().map(|r| r.code()).collect::<Vec<_>>(),
        vec![500, 250]
    );
    assert_eq!(h.session.buffered_len(), 0);
}

#[test]
fn line_without_crlf_forever_stays_bounded() {
    let mut h = Harness::ehlo();
    for _ in 0..100 {
        assert!(h.feed(&[b'z'; 1000]).is_empty());
    }
    assert!(h.max_buffered <= 2048);
    assert_eq!(h.codes("\r\nNOOP\r\n"), vec![500, 250]);
}

#[test]
fn command_line_limits() {
    let mut h = Harness::ehlo();
    // 512 octets with CRLF is the limit for ordinary commands.
    let noop = format!("NOOP {}\r\n", "x".repeat(512 - 7));
    assert_eq!(noop.len(), 512);
    assert_eq!(h.one(&noop).0, 250);
    let noop = format!("NOOP {}\r\n", "x".repeat(512 - 6));
    assert_eq!(h.one(&noop), (500, Some((5, 5, 2))));
    // MAIL may be longer: extensions lengthen it (AUTH= and ENVID here).
    let auth = "a".repeat(400);
    let mail = format!(
        "MAIL FROM:<a@example.org> AUTH={auth}+40example.org ENVID={}\r\n",
        "e".repeat(100)
    );
    assert!(mail.len() > 512);
    assert_eq!(h.one(&mail).0, 250);
}

#[test]
fn ten_thousand_recipients() {
    // Decision: recipients 101.. get 452 4.5.3; the first 1000 of those are free, each one
    // beyond counts as an error, and the 10th error closes the session with 421 4.7.0.
    let mut h = Harness::ehlo();
    let mut script = String::from("MAIL FROM:<a@example.org>\r\n");
    for i in 0..10_000 {
        script.push_str(&format!("RCPT TO:<u{i}@example.test>\r\n"));
    }
    script.push_str("DATA\r\n");
    let r = h.feed_split(script.as_bytes(), &[65536]);
    let codes: Vec<u16> = r.iter().map(|r| r.code()).collect();
    assert_eq!(codes[0], 250);
    assert!(codes[1..=100].iter().all(|&c| c == 250));
    assert_eq!(
        h.rcpt_checks, 100,
        "the driver is asked only within the limit"
    );
    assert!(
        codes[101..1110].iter().all(|&c| c == 452),
        "{:?}",
        &codes[101..110]
    );
    assert_eq!(ce(&r[101]), (452, Some((4, 5, 3))));
    assert_eq!(codes.len(), 1111, "nothing is answered after the 421");
    assert_eq!(ce(&r[1110]), (421, Some((4, 7, 0))));
    assert!(h.closed);
    assert!(h.queued.is_empty() && h.started == 0);
}

#[test]
fn too_many_recipients_then_data_still_works() {
    let mut cfg = config();
    cfg.limits.recipients = 3;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\n");
    let codes =
        h.codes("RCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nRCPT TO:<3@x>\r\nRCPT TO:<4@x>\r\nDATA\r\n");
    assert_eq!(codes, vec![250, 250, 250, 452, 354]);
    h.send("hi\r\n.\r\n");
    assert_eq!(h.queued.len(), 1);
    assert_eq!(h.queued[0].envelope.recipients.len(), 3);
}

#[test]
fn error_limit_closes_with_421() {
    let mut h = Harness::ehlo();
    let r = h.send(&"BOGUS\r\n".repeat(12));
    let codes: Vec<u16> = r.iter().map(|r| r.code()).collect();
    assert_eq!(codes, [vec![500; 9], vec![421]].concat());
    assert_eq!(ce(&r[9]), (421, Some((4, 7, 0))));
    assert!(h.closed);
}

#[test]
fn junk_commands_count_after_their_limit() {
    let mut cfg = config();
    cfg.limits.junk_commands = 5;
    cfg.limits.errors = 3;
    let mut h = Harness::new(cfg, false);
    let codes: Vec<u16> = h
        .send(&"NOOP\r\n".repeat(10))
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(codes, vec![250, 250, 250, 250, 250, 250, 250, 421]);
    assert!(h.closed);
}

#[test]
fn bare_lf_in_commands() {
    let mut h = Harness::ehlo();
    // LF alone does not end a command: the whole thing up to CRLF is one bad line.
    let r = h.send("NOOP\nMAIL FROM:<a@b>\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!(ce(&r[0]), (500, Some((5, 5, 2))));
    assert!(
        h.session.sender().is_none(),
        "the smuggled MAIL was not executed"
    );
    assert_eq!(h.one("NOOP\rRSET\r\n"), (500, Some((5, 5, 2))));
    assert!(h.send("QUIT\n").is_empty(), "no reply before CRLF");
}
