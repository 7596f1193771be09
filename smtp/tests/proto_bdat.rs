//! BDAT (RFC 3030 CHUNKING): exact counts, LAST, limits, refusals that keep the session in sync.

mod proto_harness;

use proto_harness::{Harness, ce, config};

fn ready() -> Harness {
    let mut h = Harness::ehlo();
    assert_eq!(
        h.codes("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n"),
        vec![250, 250]
    );
    h
}

#[test]
fn chunks_with_exact_counts() {
    let mut h = ready();
    let r = h.send("BDAT 14\r\nSubject: x\r\n\r\nBDAT 6 LAST\r\nbody\r\nNOOP\r\n");
    let got: Vec<_> = r.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "250 2.0.0 14 octets received\r\n",
            "250 2.0.0 OK: queued as Q1\r\n",
            "250 2.0.0 OK\r\n"
        ]
    );
    assert_eq!(h.queued[0].body, b"Subject: x\r\n\r\nbody\r\n");
    assert!(h.queued[0].envelope.chunked);
    assert_eq!(h.queued[0].envelope.size, 20);
}

#[test]
fn chunk_content_looks_like_commands_but_is_data() {
    let mut h = ready();
    // The chunk holds what would be commands; counts decide, so they are data. No dot-stuffing.
    let chunk = "RSET\r\n.\r\nQUIT\r\n";
    let r = h.send(&format!("BDAT {} LAST\r\n{chunk}", chunk.len()));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].code(), 250);
    assert_eq!(h.queued[0].body, chunk.as_bytes());
    assert!(!h.closed);
}

#[test]
fn chunks_split_anywhere() {
    let input = b"BDAT 5\r\nab\r\ncBDAT 0\r\nBDAT 3 LAST\r\nd\r\n";
    // "ab\r\nc" is 5 octets; "BDAT 0" has none; "d\r\n" is 3.
    for step in 1..=input.len() {
        let mut h = ready();
        let codes: Vec<u16> = h
            .feed_split(input, &[step])
            .iter()
            .map(|r| r.code())
            .collect();
        assert_eq!(codes, vec![250, 250, 250], "step {step}");
        assert_eq!(h.queued[0].body, b"ab\r\ncd\r\n", "step {step}");
    }
}

#[test]
fn last_line_gets_crlf() {
    let mut h = ready();
    h.send("BDAT 3 LAST\r\nabc");
    assert_eq!(h.queued[0].body, b"abc\r\n");
}

#[test]
fn empty_last_chunk() {
    let mut h = ready();
    assert_eq!(h.codes("BDAT 0 LAST\r\n"), vec![250]);
    assert_eq!(h.queued[0].body, b"");
}

#[test]
fn refused_bdat_still_consumes_the_chunk() {
    let mut h = Harness::ehlo();
    // No MAIL: 503, but the 12 octets (which look like two commands) are skipped.
    let r = h.send("BDAT 12\r\nQUIT\r\nRSET\r\nNOOP\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(503, Some((5, 5, 1))), (250, Some((2, 0, 0)))]
    );
    assert!(!h.closed);
    // MAIL but no recipient: 554, chunk skipped.
    h.send("MAIL FROM:<a@b>\r\n");
    let r = h.send("BDAT 6 LAST\r\nRSET\r\nNOOP\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(554, Some((5, 5, 1))), (250, Some((2, 0, 0)))]
    );
    assert_eq!(h.started, 0);
}

#[test]
fn size_limit_across_chunks() {
    let mut cfg = config();
    cfg.limits.message_size = 10;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    let r = h.send("BDAT 6\r\n12345\nBDAT 6\r\n123456BDAT 2 LAST\r\nxxNOOP\r\n");
    // The bare LF in chunk 1 fails the content check at once.
    assert_eq!(
        r.iter().map(|r| r.code()).collect::<Vec<_>>(),
        vec![550, 550, 550, 250]
    );
    assert_eq!(h.aborted, 1);
    assert!(h.queued.is_empty());
    assert!(
        h.session.sender().is_none(),
        "LAST ended the failed transaction"
    );

    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    let r = h.send("BDAT 6\r\n1234\r\nBDAT 6\r\n123456BDAT 2 LAST\r\nxxNOOP\r\n");
    let got: Vec<_> = r.iter().map(ce).collect();
    assert_eq!(
        got,
        vec![
            (250, Some((2, 0, 0))),
            (552, Some((5, 3, 4))),
            (552, Some((5, 3, 4))),
            (250, Some((2, 0, 0)))
        ]
    );
    assert_eq!(h.aborted, 2);
    assert!(h.queued.is_empty());
}

#[test]
fn huge_declared_chunk_is_refused_up_front() {
    let mut h = ready();
    let r = h.send("BDAT 99999999999 LAST\r\n");
    assert!(r.is_empty(), "the answer comes after the chunk");
    assert_eq!(h.session.phase(), moat_smtp::proto::Phase::Data);
    assert_eq!(
        h.started, 0,
        "nothing is opened for a chunk that cannot fit"
    );
}

#[test]
fn data_after_bdat_and_rcpt_after_bdat() {
    let mut h = ready();
    assert_eq!(h.codes("BDAT 2\r\nab"), vec![250]);
    assert_eq!(h.one("DATA\r\n").0, 503);
    assert_eq!(h.one("RCPT TO:<x@y>\r\n").0, 503);
}

#[test]
fn rset_during_bdat_aborts() {
    let mut h = ready();
    h.send("BDAT 4\r\nab\r\n");
    assert_eq!(h.started, 1);
    assert_eq!(h.codes("RSET\r\n"), vec![250]);
    assert_eq!(h.aborted, 1);
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    h.send("BDAT 4\r\nab\r\n");
    assert_eq!(h.codes("QUIT\r\n"), vec![221]);
    assert_eq!(h.aborted, 2);
}

#[test]
fn text_rules_apply_to_chunks() {
    let mut h = ready();
    assert_eq!(h.one("BDAT 5 LAST\r\na\0b\r\n"), (554, Some((5, 6, 0))));
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(h.one("BDAT 4 LAST\r\na\n.\n"), (550, Some((5, 6, 0))));
    assert!(h.queued.is_empty());
}

#[test]
fn binarymime_allows_any_octet() {
    let mut cfg = config();
    cfg.binarymime = true;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<c@d>\r\n");
    let mut input = b"BDAT 5 LAST\r\n".to_vec();
    input.extend_from_slice(b"\0\n\r\xff.");
    assert_eq!(
        h.feed(&input).iter().map(|r| r.code()).collect::<Vec<_>>(),
        vec![250]
    );
    assert_eq!(h.queued[0].body, b"\0\n\r\xff.");
}

#[test]
fn malformed_bdat() {
    let mut h = ready();
    // Size known, tail bad: skip the chunk, then 501.
    let r = h.send("BDAT 4 NOW\r\nQUITNOOP\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(501, Some((5, 5, 4))), (250, Some((2, 0, 0)))]
    );
    // Size unreadable: we cannot know where the chunk ends, so the connection is closed.
    let r = h.send("BDAT lots\r\nMAIL FROM:<x@y>\r\n");
    assert_eq!(
        r.iter().map(ce).collect::<Vec<_>>(),
        vec![(421, Some((4, 7, 0)))]
    );
    assert!(h.closed);
}
