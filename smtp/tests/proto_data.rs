//! DATA: end of data, dot-stuffing, SMTP smuggling, content limits.

mod proto_harness;

use moat_smtp::proto::MessageVerdict;
use proto_harness::{Harness, ce, config};

fn ready() -> Harness {
    let mut h = Harness::ehlo();
    let codes = h.codes("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
    assert_eq!(codes, vec![250, 250, 354]);
    h
}

/// Dot-stuffs `text` (LF-free lines joined by CRLF) the way a client must.
fn stuff(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        if l.starts_with('.') {
            s.push('.');
        }
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str(".\r\n");
    s
}

#[test]
fn dot_stuffing_round_trip() {
    let lines = [".", "..", ".hidden", "a.b", " .", "...", "end."];
    let wire = stuff(&lines);
    for step in [1, 2, 3, 5, wire.len()] {
        let mut h = ready();
        let r = h.feed_split(wire.as_bytes(), &[step]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code(), 250);
        let expected: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        assert_eq!(
            String::from_utf8_lossy(&h.queued[0].body),
            expected,
            "step {step}"
        );
    }
}

#[test]
fn empty_message_right_after_data() {
    let mut h = ready();
    assert_eq!(h.codes(".\r\n"), vec![250]);
    assert_eq!(h.queued[0].body, b"");
    assert_eq!(h.queued[0].envelope.size, 0);
}

#[test]
fn pipelined_transactions_in_one_buffer() {
    let mut h = Harness::ehlo();
    let codes = h.codes(
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\none\r\n.\r\n\
         MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.test>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(codes, vec![250, 250, 354, 250, 250, 250, 354, 250, 221]);
    assert_eq!(h.queued.len(), 2);
    assert_eq!(h.queued[0].body, b"one\r\n");
    assert_eq!(h.queued[1].body, b"two\r\n");
    assert_eq!(h.queued[1].envelope.from.to_string(), "<c@example.org>");
}

#[test]
fn smuggling_variants_are_refused_after_the_real_end() {
    for fake in ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\r\n"] {
        let mut h = ready();
        let input = format!(
            "From: a@example.org\r\n\r\nhello{fake}MAIL FROM:<admin@example.test>\r\n\
             RCPT TO:<victim@example.test>\r\nDATA\r\nFrom: admin@example.test\r\n\r\nsmuggled\r\n.\r\nNOOP\r\n"
        );
        for step in [1, 7, input.len()] {
            let mut h2 = ready();
            let r = h2.feed_split(input.as_bytes(), &[step]);
            let got: Vec<_> = r.iter().map(ce).collect();
            assert_eq!(
                got,
                vec![(550, Some((5, 6, 0))), (250, Some((2, 0, 0)))],
                "{fake:?} step {step}: the message is refused, then NOOP is a command"
            );
            assert!(h2.queued.is_empty(), "{fake:?}: nothing queued");
            assert_eq!(
                h2.rcpt_checks, 1,
                "{fake:?}: the smuggled RCPT was never a command"
            );
            assert_eq!(h2.aborted, 1);
        }
        let r = h.feed(input.as_bytes());
        assert!(r[0].lines()[0].contains("Bare LF or bare CR"), "{r:?}");
    }
}

#[test]
fn bare_lf_anywhere_is_refused() {
    let mut h = ready();
    assert_eq!(h.codes("Subject: x\n\r\nbody\r\n.\r\n"), vec![550]);
    assert!(h.queued.is_empty());
    // The session is usable and the next message goes through.
    h.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
    assert_eq!(h.codes("fine\r\n.\r\n"), vec![250]);
    assert_eq!(h.queued.len(), 1);
}

#[test]
fn size_limit_enforced_while_reading() {
    let mut cfg = config();
    cfg.limits.message_size = 1000;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    let line = format!("{}\r\n", "x".repeat(98));
    // 100 KB in total, in small pieces: refused only at the end, never stored past the limit.
    for _ in 0..1000 {
        assert!(h.send(&line).is_empty());
    }
    assert_eq!(h.session.buffered_len(), 0);
    let r = h.send(".\r\nNOOP\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(552, Some((5, 3, 4))), (250, Some((2, 0, 0)))]
    );
    assert!(h.queued.is_empty());
    assert_eq!(h.aborted, 1);
}

#[test]
fn exactly_the_size_limit_is_accepted() {
    let mut cfg = config();
    cfg.limits.message_size = 10;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(h.codes("12345678\r\n.\r\n"), vec![250]);
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(h.codes("123456789\r\n.\r\n"), vec![552]);
}

#[test]
fn nul_in_body() {
    let mut h = ready();
    let r = h.send("a\0b\r\n.\r\n");
    assert_eq!(ce(&r[0]), (554, Some((5, 6, 0))));
    assert!(h.queued.is_empty());
}

#[test]
fn long_text_line() {
    let mut h = ready();
    let ok = format!("{}\r\n", "x".repeat(998));
    assert_eq!(h.codes(&format!("{ok}.\r\n")), vec![250]);
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    let long = format!("{}\r\n", "x".repeat(999));
    let r = h.send(&format!("{long}next line\r\n.\r\n"));
    assert_eq!(ce(&r[0]), (500, Some((5, 5, 2))));
    assert_eq!(h.queued.len(), 1);
    // A stuffed dot does not count towards the 1000.
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(
        h.codes(&format!(".{}\r\n.\r\n", "x".repeat(998))),
        vec![250]
    );
}

#[test]
fn message_verdicts() {
    let mut h = ready();
    h.message_verdict = Some(MessageVerdict::TempFail);
    assert_eq!(h.one("x\r\n.\r\n"), (451, Some((4, 3, 0))));
    assert!(h.session.sender().is_none(), "the transaction ended");
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    h.message_verdict = Some(MessageVerdict::Other(moat_smtp::proto::Reply::new(
        554,
        Some((5, 7, 1)),
        "Rejected by content filter",
    )));
    assert_eq!(h.one("x\r\n.\r\n"), (554, Some((5, 7, 1))));
}

#[test]
fn envelope_of_a_queued_message() {
    let mut h = ready();
    h.send("x\r\n.\r\n");
    let e = &h.queued[0].envelope;
    assert_eq!(e.helo.to_string(), "client.example.test");
    assert!(e.esmtp);
    assert_eq!(e.authenticated, None);
    assert_eq!(e.recipients.len(), 1);
}
