//! moat-imapd's APPEND end to end over a raw socket (exact bytes matter here): the site's
//! `max_message_size` as APPENDLIMIT, refusals before the continuation request, a 20 MB
//! message streamed to the Maildir without moat-imapd holding it, a connection dropped
//! mid-literal, BINARY literal8 with NUL read back with FETCH BINARY[], APPENDUID, quota.

use std::path::Path;
use std::time::{Duration, Instant};

use moat_tests::Stack;
use moat_tests::imap_raw::{Raw, status_kib};

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";
/// The site's limit in this test: 25 MiB.
const LIMIT: usize = 25 * 1024 * 1024;
/// The large message: 20 MiB.
const BIG: usize = 20 * 1024 * 1024;

/// The stack, one message delivered through SMTP, then alice given a 30 MiB quota (no delivery
/// after it: moat-imapd writes the quota moat-auth answers its login with into the Maildir's
/// `maildirsize`).
fn stack() -> Stack {
    let s = Stack::start_with_user(
        &format!("[limits]\nmax_message_size = {LIMIT}\n"),
        ALICE,
        PW,
    );
    s.deliver(
        "x@remote.example",
        ALICE,
        &format!("From: x@remote.example\r\nTo: {ALICE}\r\nSubject: first\r\n\r\nbody\r\n"),
    );
    s.admin(&["user", "quota", ALICE, "30M"], "");
    s
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `[APPENDUID <validity> <uid>]` of a tagged OK.
fn appenduid(line: &str) -> (u32, u32) {
    let rest = line
        .split("[APPENDUID ")
        .nth(1)
        .unwrap_or_else(|| panic!("no APPENDUID in {line}"));
    let mut nums = rest.split([' ', ']']).filter_map(|n| n.parse().ok());
    match (nums.next(), nums.next()) {
        (Some(v), Some(u)) => (v, u),
        _ => panic!("bad APPENDUID in {line}"),
    }
}

/// A message of exactly `size` bytes: a header and lines of `x`.
fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: a@example.test\r\nSubject: big\r\n\r\n".to_vec();
    while m.len() < size {
        let line = [b'x'; 78];
        let n = (size - m.len()).min(80);
        if n < 2 {
            m.resize(size, b'y');
        } else {
            m.extend_from_slice(line.get(..n - 2).unwrap_or_default());
            m.extend_from_slice(b"\r\n");
        }
    }
    m
}

/// Waits until `check` holds (10 s at most).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn append_streams_with_limits_binary_and_quota() {
    let s = stack();
    let mut a = Raw::login(s.imap, ALICE, PW);
    let md = s.maildir(ALICE);
    let caps = a.cmd("c", "CAPABILITY");
    assert!(
        caps[0].contains(&format!(" APPENDLIMIT={LIMIT}")) && caps[0].contains(" BINARY"),
        "{caps:?}"
    );

    // Over APPENDLIMIT, synchronising: NO [TOOBIG] instead of `+`; the session goes on.
    let got = a.cmd("t1", &format!("APPEND INBOX {{{}}}", LIMIT + 1));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("t1 NO [TOOBIG]"), "{got:?}");
    assert_eq!(a.cmd("n1", "NOOP"), ["n1 OK NOOP completed."]);

    // A small APPEND first, so what the large one costs is all that grows after it.
    let small = b"Subject: small\r\n\r\nhi\r\n";
    a.send(format!("s APPEND INBOX {{{}+}}\r\n", small.len()).as_bytes());
    a.send(small);
    a.send(b"\r\n");
    let got = a.until("s");
    let (validity, small_uid) = appenduid(got.last().map(String::as_str).unwrap_or(""));

    // 20 MiB, synchronising, streamed: moat-imapd's peak memory grows by far less.
    let pid = s.pid_of("moat-imapd").expect("moat-imapd running");
    let before = status_kib(pid, "VmHWM");
    let big = message(BIG);
    a.send(format!("b APPEND INBOX (\\Flagged) {{{BIG}}}\r\n").as_bytes());
    let cont = a.response();
    assert!(cont.starts_with("+ "), "{cont}");
    for chunk in big.chunks(64 * 1024) {
        a.send(chunk);
    }
    a.send(b"\r\n");
    let got = a.until("b");
    let ok = got.last().cloned().unwrap_or_default();
    assert!(ok.starts_with("b OK [APPENDUID"), "{got:?}");
    let (v, big_uid) = appenduid(&ok);
    assert_eq!((v, big_uid), (validity, small_uid + 1));
    let after = status_kib(pid, "VmHWM");
    assert!(
        after < before + 8 * 1024,
        "moat-imapd's peak grew from {before} KiB to {after} KiB for a {BIG} byte APPEND"
    );
    let cur = files(&md.join("cur"));
    let stored = cur
        .iter()
        .find(|n| n.ends_with(":2,F"))
        .unwrap_or_else(|| panic!("no flagged message in {cur:?}"));
    assert_eq!(std::fs::read(md.join("cur").join(stored)).ok(), Some(big));
    assert!(files(&md.join("tmp")).is_empty());

    // The UID APPENDUID gave is the message's.
    let got = a.cmd("sel", "SELECT INBOX");
    assert!(got.iter().any(|l| l == "* 3 EXISTS"), "{got:?}");
    let got = a.cmd("f1", &format!("UID FETCH {big_uid} (RFC822.SIZE FLAGS)"));
    assert!(
        got[0].contains(&format!("RFC822.SIZE {BIG}")) && got[0].contains("\\Flagged"),
        "{got:?}"
    );

    // BINARY: a literal8 with NUL, read back byte for byte with FETCH BINARY[].
    let raw = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\0c\r\n";
    a.send(format!("x APPEND INBOX ~{{{}}}\r\n", raw.len()).as_bytes());
    let cont = a.response();
    assert!(cont.starts_with("+ "), "{cont}");
    a.send(raw);
    a.send(b"\r\n");
    let got = a.until("x");
    let (_, bin_uid) = appenduid(got.last().map(String::as_str).unwrap_or(""));
    assert_eq!(bin_uid, big_uid + 1);
    let got = a.cmd(
        "f2",
        &format!("UID FETCH {bin_uid} (BINARY.PEEK[] BINARY.SIZE[])"),
    );
    let want = format!(
        "BINARY[] ~{{{}}}\r\n{}",
        raw.len(),
        String::from_utf8_lossy(raw)
    );
    assert!(got[0].contains(&want), "{got:?}");
    assert!(
        got[0].contains(&format!("BINARY.SIZE[] {}", raw.len())),
        "{got:?}"
    );
    // NUL in a plain literal is refused, and nothing is stored.
    a.send(b"y APPEND INBOX {3+}\r\na\0b\r\n");
    let got = a.until("y");
    assert!(got[0].starts_with("y BAD"), "{got:?}");

    // A connection dropped mid-literal: nothing appended, tmp/ cleaned.
    let mut d = Raw::login(s.imap, ALICE, PW);
    d.send(b"d APPEND INBOX {5000000}\r\n");
    let cont = d.response();
    assert!(cont.starts_with("+ "), "{cont}");
    d.send(&[b'z'; 1_000_000]);
    eventually("the partial APPEND's tmp file", || {
        files(&md.join("tmp")).len() == 1
    });
    drop(d);
    eventually("tmp/ empty after the dropped APPEND", || {
        files(&md.join("tmp")).is_empty()
    });
    assert_eq!(
        files(&md.join("cur")).len() + files(&md.join("new")).len(),
        4
    );

    // Over quota: refused before `+` (synchronising), or read and dropped (LITERAL+).
    // (30 MiB, 21 MB used.)
    let got = a.cmd("q1", "APPEND INBOX {12000000}");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("q1 NO [OVERQUOTA]"), "{got:?}");
    a.send(b"q2 APPEND INBOX {12000000+}\r\n");
    a.send(&[b'q'; 12_000_000]);
    a.send(b"\r\n");
    let got = a.until("q2");
    assert!(
        got.last()
            .is_some_and(|l| l.starts_with("q2 NO [OVERQUOTA]")),
        "{got:?}"
    );
    assert_eq!(a.cmd("n2", "NOOP"), ["n2 OK NOOP completed."]);
    assert_eq!(
        files(&md.join("cur")).len() + files(&md.join("new")).len(),
        4
    );

    // A non-synchronising literal too large to skip ends the session.
    a.send(b"h APPEND INBOX {100000000+}\r\n");
    let got = a.until("never");
    assert!(
        got.iter().any(|l| l.starts_with("h NO [TOOBIG]"))
            && got.iter().any(|l| l.starts_with("* BYE")),
        "{got:?}"
    );
    assert!(a.closed());
    assert!(files(&md.join("tmp")).is_empty());
}
