//! SEARCH on four messages built directly (index `Message` values and their bytes), requests
//! parsed by imap-codec as the session receives them.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;
use moat_maildir::{Flags, Subdir};

use super::*;
use crate::fetch;
use crate::index::{Keywords, Message};

/// 2026-11-01 00:00:00 UTC.
const NOV_1: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

struct Mail {
    msg: Message,
    recent: bool,
    raw: Vec<u8>,
}

fn mail(uid: u32, flags: &str, size: u64, date: i64, modseq: u64, recent: bool, raw: &str) -> Mail {
    Mail {
        msg: Message {
            uid,
            subdir: Subdir::Cur,
            file_name: format!("{uid}.M1P1.host:2,{flags}"),
            flags: Flags::parse(flags).expect("flags"),
            modseq,
            size,
            file_size: size,
            internal_date: date,
            blob: None,
        },
        recent,
        raw: raw.replace('\n', "\r\n").into_bytes(),
    }
}

fn mails() -> Vec<Mail> {
    vec![
        mail(
            2,
            "S",
            100,
            NOV_1 + 10 * 3600,
            10,
            false,
            "From: Alice <alice@example.org>\nSubject: =?ISO-8859-1?Q?Caf=E9?= menu\n\
             Date: Sun, 1 Nov 2026 10:00:00 +0000\nContent-Type: text/plain; charset=ISO-8859-1\n\
             Content-Transfer-Encoding: quoted-printable\n\nCr=E8me br=FBl=E9e tonight\n",
        ),
        mail(
            5,
            "FRa",
            2000,
            NOV_1 + DAY,
            60,
            true,
            "From: Bob <bob@example.net>\nTo: Carol <carol@example.net>\nCc: dave@example.net\n\
             Bcc: eve@example.net\nSubject: Meeting\nX-Custom: yes\n\
             Date: Mon, 2 Nov 2026 23:30:00 -0800\n\nThe agenda is attached.\n",
        ),
        mail(
            6,
            "DT",
            5000,
            NOV_1 + 2 * DAY,
            20,
            false,
            "From: Draft <me@example.org>\nSubject: unfinished\n\nno date here\n",
        ),
        mail(
            9,
            "Sb",
            3000,
            NOV_1 + 3 * DAY - 1,
            90,
            true,
            "From: List <list@example.com>\nSubject: digest\nDate: 5 Nov 2026 08:00 +0100\n\
             MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=x\n\n--x\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n\
             w4ljaGVjIGV0IG1hdA==\n--x--\n",
        ),
    ]
}

fn keywords() -> Keywords {
    Keywords::parse(b"0 work\n1 $Junk\n")
}

/// The criteria and charset of a SEARCH line.
fn request(line: &[u8]) -> (Vec<SearchKey<'static>>, Option<Charset<'static>>) {
    let mut bytes = b"a ".to_vec();
    bytes.extend_from_slice(line);
    bytes.extend_from_slice(b"\r\n");
    let (_, cmd) = CommandCodec::default()
        .decode_static(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e:?}", String::from_utf8_lossy(line)));
    match cmd.body {
        CommandBody::Search {
            charset, criteria, ..
        } => (criteria.into_inner(), charset),
        other => panic!("{other:?}"),
    }
}

fn compiled(line: &str) -> Result<Query, SearchError> {
    let (keys, charset) = request(line.as_bytes());
    compile(&keys, charset.as_ref())
}

/// Sequence numbers matching, checking on the way that what `decide` answers without the
/// message bytes agrees with the full answer.
fn run(q: &Query) -> Vec<u32> {
    let all = mails();
    let kw = keywords();
    let max_uid = all.iter().map(|m| m.msg.uid).max().unwrap_or(0);
    let mut hits = Vec::new();
    for (i, m) in all.iter().enumerate() {
        let seq = u32::try_from(i + 1).expect("seq");
        let blob = fetch::blob(&m.raw);
        let facts = MessageFacts {
            seq,
            msg: &m.msg,
            recent: m.recent,
            keywords: &kw,
            max_seq: 4,
            max_uid,
            blob: None,
            raw: None,
        };
        let cheap = decide(q, &facts);
        let with_blob = decide(
            q,
            &MessageFacts {
                blob: Some(&blob),
                ..facts
            },
        );
        let full = matches(
            q,
            &MessageFacts {
                raw: Some(&m.raw),
                ..facts
            },
        );
        if let Some(answer) = cheap {
            assert_eq!(answer, full, "seq {seq}: {q:?}");
        }
        if let Some(answer) = with_blob {
            assert_eq!(answer, full, "seq {seq} with blob: {q:?}");
        }
        if !q.needs_raw() {
            assert_eq!(with_blob, Some(full), "seq {seq}: blob suffices: {q:?}");
        }
        if full {
            hits.push(seq);
        }
    }
    hits
}

fn search(line: &str) -> Vec<u32> {
    run(&compiled(&format!("SEARCH {line}")).unwrap_or_else(|e| panic!("{line}: {e:?}")))
}

#[test]
fn flag_keys() {
    assert_eq!(search("ALL"), [1, 2, 3, 4]);
    assert_eq!(search("ANSWERED"), [2]);
    assert_eq!(search("UNANSWERED"), [1, 3, 4]);
    assert_eq!(search("DELETED"), [3]);
    assert_eq!(search("UNDELETED"), [1, 2, 4]);
    assert_eq!(search("DRAFT"), [3]);
    assert_eq!(search("UNDRAFT"), [1, 2, 4]);
    assert_eq!(search("FLAGGED"), [2]);
    assert_eq!(search("UNFLAGGED"), [1, 3, 4]);
    assert_eq!(search("SEEN"), [1, 4]);
    assert_eq!(search("UNSEEN"), [2, 3]);
    assert_eq!(search("RECENT"), [2, 4]);
    assert_eq!(search("OLD"), [1, 3]);
    assert_eq!(search("NEW"), [2]);
    assert_eq!(search("KEYWORD work"), [2]);
    assert_eq!(search("KEYWORD $JUNK"), [4]);
    assert_eq!(search("KEYWORD unknown"), Vec::<u32>::new());
    assert_eq!(search("UNKEYWORD work"), [1, 3, 4]);
    assert_eq!(search("UNKEYWORD unknown"), [1, 2, 3, 4]);
}

#[test]
fn sizes_dates_and_modseq() {
    assert_eq!(search("LARGER 2000"), [3, 4]);
    assert_eq!(search("SMALLER 2000"), [1]);
    assert_eq!(search("LARGER 99 SMALLER 101"), [1]);
    assert_eq!(search("BEFORE 2-Nov-2026"), [1]);
    assert_eq!(search("ON 3-Nov-2026"), [3, 4]);
    assert_eq!(search("SINCE 2-Nov-2026"), [2, 3, 4]);
    assert_eq!(search("SINCE 4-Nov-2026"), Vec::<u32>::new());
    assert_eq!(search("ON \"01-Nov-2026\""), [1]);
    // Date: as written, time and zone disregarded (23:30 -0800 is 3 Nov in UTC).
    assert_eq!(search("SENTON 2-Nov-2026"), [2]);
    assert_eq!(search("SENTBEFORE 2-Nov-2026"), [1]);
    assert_eq!(search("SENTSINCE 2-Nov-2026"), [2, 4]);
    // Message 3 has no Date: no SENT* key matches it, NOT does.
    assert_eq!(search("NOT SENTON 2-Nov-2026"), [1, 3, 4]);
    assert_eq!(search("SENTSINCE 1-Jan-1970"), [1, 2, 4]);
    let q = compiled("SEARCH MODSEQ 60").expect("modseq");
    assert!(q.uses_modseq() && !q.needs_raw() && !q.needs_blob());
    assert_eq!(run(&q), [2, 4]);
    assert_eq!(search("MODSEQ \"/flags/\\\\seen\" all 61"), [4]);
    assert!(!compiled("SEARCH ALL").expect("all").uses_modseq());
    assert!(
        compiled("SEARCH SENTON 1-Jan-2000")
            .expect("q")
            .needs_blob()
    );
}

#[test]
fn sets_with_star() {
    assert_eq!(search("2,4"), [2, 4]);
    assert_eq!(search("*"), [4]);
    assert_eq!(search("3:*"), [3, 4]);
    assert_eq!(search("*:3"), [3, 4]);
    assert_eq!(search("7:*"), [4]);
    assert_eq!(search("1:2,4:4"), [1, 2, 4]);
    assert_eq!(search("UID 5:6"), [2, 3]);
    assert_eq!(search("UID *"), [4]);
    assert_eq!(search("UID 7:*"), [4]);
    assert_eq!(search("UID 10:*"), [4]);
    assert_eq!(search("UID 3,1"), Vec::<u32>::new());
    assert_eq!(search("UID 1:4294967295"), [1, 2, 3, 4]);
}

#[test]
fn not_or_and_nesting() {
    assert_eq!(search("NOT SEEN"), [2, 3]);
    assert_eq!(search("OR SEEN DELETED"), [1, 3, 4]);
    assert_eq!(search("(SEEN)"), [1, 4]);
    assert_eq!(search("(SEEN RECENT)"), [4]);
    assert_eq!(search("NOT (OR ANSWERED DELETED)"), [1, 4]);
    assert_eq!(
        search("OR (FROM alice) (OR DELETED KEYWORD work)"),
        [1, 2, 3]
    );
    assert_eq!(search("NOT NOT NOT SEEN"), [2, 3]);
    assert_eq!(search("UNSEEN OR 1 3"), [3]);
    assert_eq!(search("OR BODY agenda NOT 1:3"), [2, 4]);
}

#[test]
fn text_keys_decode_words_and_charsets() {
    assert_eq!(search("FROM alice"), [1]);
    assert_eq!(search("FROM EXAMPLE.NET"), [2]);
    assert_eq!(search("TO carol"), [2]);
    assert_eq!(search("CC dave"), [2]);
    assert_eq!(search("BCC eve"), [2]);
    assert_eq!(search("SUBJECT meeting"), [2]);
    // An encoded word in ISO-8859-1, searched in UTF-8 with any case.
    assert_eq!(search("CHARSET UTF-8 SUBJECT {5}\r\ncaf\u{e9}"), [1]);
    assert_eq!(search("CHARSET UTF-8 SUBJECT {6}\r\nCAF\u{c9} "), [1]);
    assert_eq!(search("HEADER X-Custom \"\""), [2]);
    assert_eq!(search("HEADER x-custom YES"), [2]);
    assert_eq!(search("HEADER Date \"\""), [1, 2, 4]);
    // A quoted-printable ISO-8859-1 body, a base64 UTF-8 one.
    assert_eq!(search("CHARSET UTF-8 BODY {8}\r\nbr\u{fb}l\u{e9}e"), [1]);
    assert_eq!(search("CHARSET UTF-8 BODY {6}\r\n\u{e9}chec"), [4]);
    assert_eq!(search("BODY agenda"), [2]);
    assert_eq!(search("BODY alice"), Vec::<u32>::new());
    assert_eq!(search("TEXT alice"), [1]);
    assert_eq!(search("TEXT AGENDA"), [2]);
    assert_eq!(search("TEXT \"\""), [1, 2, 3, 4]);
    // 8-bit UTF-8 without CHARSET is taken as UTF-8.
    assert_eq!(search("SUBJECT {5}\r\ncaf\u{e9}"), [1]);
    let q = compiled("SEARCH SEEN SUBJECT x").expect("q");
    assert!(q.needs_raw());
}

#[test]
fn decide_defers_only_what_needs_the_message() {
    let all = mails();
    let kw = keywords();
    let m = all.first().expect("mail");
    let base = MessageFacts {
        seq: 1,
        msg: &m.msg,
        recent: m.recent,
        keywords: &kw,
        max_seq: 4,
        max_uid: 9,
        blob: None,
        raw: None,
    };
    let facts = |_: &Mail| base;
    let q = compiled("SEARCH UNSEEN BODY x").expect("q");
    // A failing flag test decides without the message.
    assert_eq!(decide(&q, &facts(m)), Some(false));
    let q = compiled("SEARCH SEEN BODY x").expect("q");
    assert_eq!(decide(&q, &facts(m)), None);
    assert!(!matches(&q, &facts(m)));
    let q = compiled("SEARCH OR SEEN BODY x").expect("q");
    assert_eq!(decide(&q, &facts(m)), Some(true));
    let q = compiled("SEARCH SENTON 1-Nov-2026").expect("q");
    assert_eq!(decide(&q, &facts(m)), None);
    // A damaged blob is no blob.
    let with_bad_blob = MessageFacts {
        blob: Some(b"junk"),
        ..facts(m)
    };
    assert_eq!(decide(&q, &with_bad_blob), None);
}

#[test]
fn charsets_and_limits() {
    for cs in ["UTF-8", "utf-8", "US-ASCII", "\"us-ascii\""] {
        assert!(
            compiled(&format!("SEARCH CHARSET {cs} ALL")).is_ok(),
            "{cs}"
        );
    }
    for cs in ["ISO-8859-1", "KOI8-R", "\"\""] {
        let e = compiled(&format!("SEARCH CHARSET {cs} ALL"));
        assert_eq!(e, Err(SearchError::BadCharset), "{cs}");
    }
    assert_eq!(
        SearchError::BadCharset.text(),
        "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset."
    );
    let (keys, _) = request(b"SEARCH SUBJECT {1}\r\n\xe9");
    assert_eq!(compile(&keys, None), Err(SearchError::BadCharset));

    let many = vec![SearchKey::All; MAX_KEYS + 1];
    assert_eq!(compile(&many, None), Err(SearchError::TooComplex));
    assert!(compile(&many[1..], None).is_ok());
    let mut deep = SearchKey::All;
    for _ in 0..=MAX_DEPTH {
        deep = SearchKey::Not(Box::new(deep));
    }
    assert_eq!(compile(&[deep], None), Err(SearchError::TooComplex));
}

fn opts(min: bool, max: bool, all: bool, count: bool) -> ReturnOptions {
    ReturnOptions {
        min,
        max,
        all,
        count,
    }
}

#[test]
fn return_options_are_cut_out_for_imap_codec() {
    let (o, rest) = parse_return_options(b"a1 SEARCH RETURN (MIN MAX) UNSEEN\r\n")
        .expect("ok")
        .expect("esearch");
    assert_eq!(o, opts(true, true, false, false));
    assert_eq!(rest, b"a1 SEARCH UNSEEN\r\n");
    let (o, rest) = parse_return_options(b"t uid search return () CHARSET UTF-8 ALL\r\n")
        .expect("ok")
        .expect("esearch");
    assert_eq!(o, opts(false, false, true, false));
    assert_eq!(rest, b"t uid search CHARSET UTF-8 ALL\r\n");
    let (o, rest) = parse_return_options(b"t UID SEARCH RETURN (count ALL) SUBJECT {3}\r\nx)y\r\n")
        .expect("ok")
        .expect("esearch");
    assert_eq!(o, opts(false, false, true, true));
    assert_eq!(rest, b"t UID SEARCH SUBJECT {3}\r\nx)y\r\n");
    let (_, cmd) = CommandCodec::default()
        .decode(&rest)
        .expect("imap-codec parses the rest");
    assert!(matches!(cmd.body, CommandBody::Search { uid: true, .. }));

    let (_, rest) = parse_return_options(b"x]1 SEARCH RETURN (MIN) ALL\r\n")
        .expect("ok")
        .expect("esearch");
    assert_eq!(rest, b"x]1 SEARCH ALL\r\n");
    for plain in [
        &b"a SEARCH ALL\r\n"[..],
        b"a UID SEARCH UNSEEN\r\n",
        b"a FETCH 1 FLAGS\r\n",
        b"a SEARCH RETURNED\r\n",
        b"",
    ] {
        assert_eq!(parse_return_options(plain), Ok(None));
    }
    for bad in [
        &b"a SEARCH RETURN (SAVE) ALL\r\n"[..],
        b"a SEARCH RETURN (MIN\r\n",
        b"a SEARCH RETURN (MIN)ALL\r\n",
        b"a SEARCH RETURN MIN ALL\r\n",
        b"a SEARCH RETURN (MIN  MAX) ALL\r\n",
        b"a SEARCH RETURN (PARTIAL 1:10) ALL\r\n",
    ] {
        assert!(
            parse_return_options(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn hits(ids: &[(u32, u64)]) -> Vec<Hit> {
    ids.iter().map(|&(id, modseq)| Hit { id, modseq }).collect()
}

fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).expect("utf8")
}

#[test]
fn search_responses() {
    assert_eq!(text(|o| render_search(o, &[], true)), "* SEARCH\r\n");
    let h = hits(&[(2, 5), (5, 77), (9, 6)]);
    assert_eq!(text(|o| render_search(o, &h, false)), "* SEARCH 2 5 9\r\n");
    assert_eq!(
        text(|o| render_search(o, &h, true)),
        "* SEARCH 2 5 9 (MODSEQ 77)\r\n"
    );
}

#[test]
fn esearch_responses_and_compaction() {
    let h = hits(&[(2, 1), (3, 1), (4, 8), (7, 1), (9, 3)]);
    let all = opts(true, true, true, true);
    assert_eq!(
        text(|o| render_esearch(o, "a1", true, &h, &all, false)),
        "* ESEARCH (TAG \"a1\") UID MIN 2 MAX 9 COUNT 5 ALL 2:4,7,9\r\n"
    );
    assert_eq!(
        text(|o| render_esearch(o, "a1", false, &h, &all, true)),
        "* ESEARCH (TAG \"a1\") MIN 2 MAX 9 COUNT 5 ALL 2:4,7,9 MODSEQ 8\r\n"
    );
    // MIN/MAX alone: the MODSEQ of those messages.
    assert_eq!(
        text(|o| render_esearch(o, "b", false, &h, &opts(false, true, false, false), true)),
        "* ESEARCH (TAG \"b\") MAX 9 MODSEQ 3\r\n"
    );
    assert_eq!(
        text(|o| render_esearch(o, "b", false, &h, &opts(true, false, false, true), true)),
        "* ESEARCH (TAG \"b\") MIN 2 COUNT 5 MODSEQ 8\r\n"
    );
    // Nothing matched: COUNT 0 only.
    assert_eq!(
        text(|o| render_esearch(o, "c", true, &[], &all, true)),
        "* ESEARCH (TAG \"c\") UID COUNT 0\r\n"
    );
    assert_eq!(
        text(|o| render_esearch(o, "c", false, &[], &opts(true, true, true, false), false)),
        "* ESEARCH (TAG \"c\")\r\n"
    );

    assert_eq!(text(|o| compact_set(o, &[9, 2, 3, 4, 7, 3])), "2:4,7,9");
    assert_eq!(text(|o| compact_set(o, &[])), "");
    assert_eq!(text(|o| compact_set(o, &[5])), "5");
    assert_eq!(
        text(|o| compact_set(o, &[u32::MAX, 1, u32::MAX - 1, 2])),
        "1:2,4294967294:4294967295"
    );
}
