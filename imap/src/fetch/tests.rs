//! FETCH plans and lines, on a multipart message with a binary attachment, requests parsed by
//! imap-codec as the session receives them.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{CommandBody, FetchModifier};
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use moat_maildir::{Flags, Subdir};

use super::*;
use crate::index::{Keywords, Message};
use crate::mime;

const RAW: &str = "From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.net>\r\n\
Subject: =?ISO-8859-1?Q?Caf=E9?= report\r\n\
Date: Sun, 29 Nov 2026 23:16:58 -0500\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
H=E9llo world, the numbers are in.\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
\r\n\
AAECaGVsbG8=\r\n\
--b1--\r\n";

fn message(raw: &[u8]) -> Message {
    Message {
        uid: 7,
        subdir: Subdir::Cur,
        file_name: "1.M1P1.host,S=1,W=1:2,Sb".into(),
        flags: Flags::parse("Sb").expect("flags"),
        modseq: 42,
        size: raw.len() as u64,
        file_size: raw.len() as u64,
        // 29-Nov-2026 13:16:58 UTC
        internal_date: 1_795_958_218,
        blob: None,
    }
}

fn keywords() -> Keywords {
    Keywords::parse(b"0 $Forwarded\n1 work\n")
}

/// The items and modifiers of a FETCH command line, as imap-codec gives them.
fn request(
    line: &str,
) -> (
    MacroOrMessageDataItemNames<'static>,
    Vec<FetchModifier>,
    bool,
) {
    let bytes = format!("a {line}\r\n").into_bytes();
    let (_, cmd) = CommandCodec::default()
        .decode_static(&bytes)
        .unwrap_or_else(|e| panic!("{line}: {e:?}"));
    match cmd.body {
        CommandBody::Fetch {
            macro_or_item_names,
            uid,
            modifiers,
            ..
        } => (macro_or_item_names, modifiers, uid),
        other => panic!("{other:?}"),
    }
}

fn plan_of(line: &str, condstore: bool) -> Plan {
    let (items, modifiers, uid) = request(line);
    plan(&items, uid, condstore)
        .and_then(|p| p.with_modifiers(&modifiers))
        .expect("plan")
}

fn render_with(plan: &Plan, raw: &[u8], blob: Option<&[u8]>) -> Result<Vec<u8>, RenderError> {
    let msg = message(raw);
    let kw = keywords();
    let input = Input {
        seq: 3,
        msg: &msg,
        keywords: &kw,
        recent: true,
        blob,
        raw: Some(raw),
    };
    let mut out = b"before".to_vec();
    render(plan, &input, &mut out)?;
    Ok(out.split_off(6))
}

fn line(request: &str) -> String {
    let raw = RAW.as_bytes();
    let blob = blob(raw);
    let out = render_with(&plan_of(request, false), raw, Some(&blob)).expect("render");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn simple_items_in_request_order() {
    let size = RAW.len();
    assert_eq!(
        line("FETCH 3 (FLAGS UID INTERNALDATE RFC822.SIZE MODSEQ)"),
        format!(
            "* 3 FETCH (FLAGS (\\Seen work \\Recent) UID 7 INTERNALDATE \"29-Nov-2026 13:16:58 +0000\" RFC822.SIZE {size} MODSEQ (42))\r\n"
        )
    );
    assert_eq!(
        line("FETCH 3 (RFC822.SIZE FLAGS FLAGS)"),
        format!("* 3 FETCH (RFC822.SIZE {size} FLAGS (\\Seen work \\Recent))\r\n")
    );
}

#[test]
fn structure_items_come_from_the_blob() {
    let raw = RAW.as_bytes();
    let env = String::from_utf8(mime::envelope(raw)).expect("utf8");
    let body = String::from_utf8(mime::bodystructure(raw, false)).expect("utf8");
    let bs = String::from_utf8(mime::bodystructure(raw, true)).expect("utf8");
    assert_eq!(
        line("FETCH 3 (ENVELOPE BODY BODYSTRUCTURE)"),
        format!("* 3 FETCH (ENVELOPE {env} BODY {body} BODYSTRUCTURE {bs})\r\n")
    );
    assert!(env.contains("\"=?ISO-8859-1?Q?Caf=E9?= report\""), "{env}");
    assert!(bs.contains("\"attachment\""), "{bs}");
    // Without a usable blob the same comes from the message.
    let p = plan_of("FETCH 3 (ENVELOPE BODY BODYSTRUCTURE)", false);
    let from_raw = render_with(&p, raw, Some(b"garbage")).expect("render");
    assert_eq!(
        String::from_utf8_lossy(&from_raw),
        line("FETCH 3 (ENVELOPE BODY BODYSTRUCTURE)")
    );
    // Neither: an error, and nothing written.
    let msg = message(raw);
    let kw = keywords();
    let input = Input {
        seq: 1,
        msg: &msg,
        keywords: &kw,
        recent: false,
        blob: None,
        raw: None,
    };
    let mut out = b"x".to_vec();
    assert_eq!(render(&p, &input, &mut out), Err(RenderError::Missing));
    assert_eq!(out, b"x");
}

#[test]
fn sections_and_partials() {
    let raw = RAW;
    assert_eq!(
        line("FETCH 3 BODY[]"),
        format!("* 3 FETCH (BODY[] {{{}}}\r\n{raw})\r\n", raw.len())
    );
    assert_eq!(
        line("FETCH 3 BODY.PEEK[]<0.10>"),
        "* 3 FETCH (BODY[]<0> {10}\r\nFrom: Alic)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY[]<6.5>"),
        "* 3 FETCH (BODY[]<6> {5}\r\nAlice)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY[]<100000.10>"),
        "* 3 FETCH (BODY[]<100000> \"\")\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY.PEEK[HEADER.FIELDS (to \"From\")]"),
        "* 3 FETCH (BODY[HEADER.FIELDS (to From)] {62}\r\nFrom: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n\r\n)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date MIME-Version)]<0.14>"),
        "* 3 FETCH (BODY[HEADER.FIELDS.NOT (From To Subject Date MIME-Version)]<0> {14}\r\nContent-Type: )\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY[1]"),
        "* 3 FETCH (BODY[1] {34}\r\nH=E9llo world, the numbers are in.)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BODY[2.MIME]"),
        "* 3 FETCH (BODY[2.MIME] {148}\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n\r\n)\r\n"
    );
    assert_eq!(line("FETCH 3 BODY[9]"), "* 3 FETCH (BODY[9] \"\")\r\n");
    let text = line("FETCH 3 (RFC822.HEADER RFC822.TEXT)");
    assert!(text.starts_with("* 3 FETCH (RFC822.HEADER {"), "{text}");
    assert!(text.contains("\r\n\r\n RFC822.TEXT {"), "{text}");
    assert!(text.ends_with("--b1--\r\n)\r\n"), "{text}");
    assert_eq!(
        line("FETCH 3 RFC822"),
        format!("* 3 FETCH (RFC822 {{{}}}\r\n{raw})\r\n", raw.len())
    );
}

#[test]
fn binary_decodes_and_uses_literal8_for_nul() {
    assert_eq!(
        line("FETCH 3 (BINARY.PEEK[2] BINARY.SIZE[2])"),
        "* 3 FETCH (BINARY[2] ~{8}\r\n\0\x01\x02hello BINARY.SIZE[2] 8)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BINARY[2]<3.100>"),
        "* 3 FETCH (BINARY[2]<3> {5}\r\nhello)\r\n"
    );
    // Quoted-printable to its 8-bit bytes (é is one ISO-8859-1 byte).
    let qp = line("FETCH 3 BINARY.PEEK[1]");
    assert_eq!(
        qp,
        "* 3 FETCH (BINARY[1] {32}\r\nH\u{fffd}llo world, the numbers are in.)\r\n"
    );
    assert_eq!(
        line("FETCH 3 BINARY.SIZE[5]"),
        "* 3 FETCH (BINARY.SIZE[5] 0)\r\n"
    );
    assert_eq!(line("FETCH 3 BINARY[5]"), "* 3 FETCH (BINARY[5] \"\")\r\n");

    let odd = "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
    let p = plan_of("FETCH 1 (FLAGS BINARY[1])", false);
    assert_eq!(
        render_with(&p, odd.as_bytes(), None),
        Err(RenderError::UnknownCte)
    );
    let p = plan_of("FETCH 1 BINARY.SIZE[1]", false);
    assert_eq!(
        render_with(&p, odd.as_bytes(), None),
        Err(RenderError::UnknownCte)
    );
}

#[test]
fn nul_in_body_sections_is_sent_as_0x80() {
    let raw = b"Subject: x\r\n\r\na\0b\r\n";
    let p = plan_of("FETCH 1 BODY.PEEK[TEXT]", false);
    let out = render_with(&p, raw, None).expect("render");
    assert_eq!(out, b"* 3 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n)\r\n");
}

#[test]
fn bare_lf_messages_are_sent_as_crlf() {
    let raw = b"Subject: x\n\nline\n";
    let p = plan_of("FETCH 1 BODY.PEEK[]", false);
    let out = render_with(&p, raw, None).expect("render");
    assert_eq!(
        out,
        b"* 3 FETCH (BODY[] {20}\r\nSubject: x\r\n\r\nline\r\n)\r\n"
    );
}

#[test]
fn macros_expand_in_rfc_order() {
    let size = RAW.len();
    assert_eq!(
        line("FETCH 3 FAST"),
        format!(
            "* 3 FETCH (FLAGS (\\Seen work \\Recent) INTERNALDATE \"29-Nov-2026 13:16:58 +0000\" RFC822.SIZE {size})\r\n"
        )
    );
    let all = line("FETCH 3 ALL");
    let full = line("FETCH 3 FULL");
    assert!(all.starts_with("* 3 FETCH (FLAGS ("), "{all}");
    assert!(all.contains("+0000\" RFC822.SIZE "), "{all}");
    assert!(all.contains(" ENVELOPE (\"Sun, 29 Nov"), "{all}");
    assert!(!all.contains(" BODY ("), "{all}");
    assert!(full.contains(" BODY ((\"text\""), "{full}");
    assert!(!full.contains("BODYSTRUCTURE"), "{full}");
}

#[test]
fn plan_properties() {
    let p = plan_of("FETCH 1 (FLAGS)", false);
    assert!(!p.needs_raw() && !p.needs_blob() && !p.sets_seen() && !p.includes_modseq());
    for (req, seen) in [
        ("FETCH 1 BODY[]", true),
        ("FETCH 1 BODY.PEEK[]", false),
        ("FETCH 1 RFC822", true),
        ("FETCH 1 RFC822.TEXT", true),
        ("FETCH 1 RFC822.HEADER", false),
        ("FETCH 1 BINARY[1]", true),
        ("FETCH 1 BINARY.PEEK[1]", false),
        ("FETCH 1 BINARY.SIZE[1]", false),
    ] {
        let p = plan_of(req, false);
        assert_eq!(p.sets_seen(), seen, "{req}");
        assert!(p.needs_raw() && !p.needs_blob(), "{req}");
    }
    assert!(plan_of("FETCH 1 ENVELOPE", false).needs_blob());
    assert!(plan_of("FETCH 1 BODY", false).needs_blob());

    // UID FETCH: UID first when not asked, where asked otherwise.
    assert!(line("UID FETCH 7 FLAGS").starts_with("* 3 FETCH (UID 7 FLAGS ("));
    assert!(
        line("UID FETCH 7 (FLAGS UID)")
            .starts_with("* 3 FETCH (FLAGS (\\Seen work \\Recent) UID 7)")
    );

    // CONDSTORE: MODSEQ with FLAGS once enabled, or when asked, or with CHANGEDSINCE.
    let p = plan_of("FETCH 1 FLAGS", true);
    assert!(p.includes_modseq() && !p.enables_condstore());
    assert!(!plan_of("FETCH 1 RFC822.SIZE", true).includes_modseq());
    let p = plan_of("FETCH 1 MODSEQ", false);
    assert!(p.includes_modseq() && p.enables_condstore());
    let p = plan_of("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 40)", false);
    assert!(p.includes_modseq() && p.enables_condstore());
    assert_eq!(p.changed_since(), Some(40));
    assert!(p.wants(41) && !p.wants(40));
    assert!(plan_of("FETCH 1 FLAGS", false).wants(0));

    // A FETCH that set \Seen adds FLAGS (and MODSEQ under CONDSTORE).
    let p = plan_of("FETCH 1 BODY[TEXT]", false).with_flags_added();
    let out = render_with(&p, RAW.as_bytes(), None).expect("render");
    assert!(String::from_utf8_lossy(&out).ends_with(" FLAGS (\\Seen work \\Recent))\r\n"));
    let p = plan_of("FETCH 1 BODY[TEXT]", true).with_flags_added();
    let out = render_with(&p, RAW.as_bytes(), None).expect("render");
    assert!(
        String::from_utf8_lossy(&out).ends_with(" FLAGS (\\Seen work \\Recent) MODSEQ (42))\r\n")
    );
    let p = plan_of("FETCH 1 (FLAGS BODY[])", false);
    assert_eq!(p.with_flags_added(), p);
}

#[test]
fn flags_lists_and_store_responses() {
    let kw = keywords();
    let mut out = Vec::new();
    render_flags(
        &mut out,
        Flags::parse("RFTSDPab").expect("flags"),
        &kw,
        true,
    );
    assert_eq!(
        out,
        b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded work \\Recent)"
    );
    out.clear();
    // Unassigned keyword letters (`z`) are not shown.
    render_flags(&mut out, Flags::parse("z").expect("flags"), &kw, false);
    assert_eq!(out, b"()");
    out.clear();
    flags_response(
        &mut out,
        4,
        Some(9),
        Flags::parse("S").expect("flags"),
        &kw,
        false,
        Some(77),
    );
    assert_eq!(out, b"* 4 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (77))\r\n");
    out.clear();
    flags_response(&mut out, 4, None, Flags::empty(), &kw, true, None);
    assert_eq!(out, b"* 4 FETCH (FLAGS (\\Recent))\r\n");
}

#[test]
fn blob_round_trip_and_damage() {
    let raw = RAW.as_bytes();
    let b = blob(raw);
    let parts = blob_parts(&b).expect("parts");
    assert_eq!(parts.envelope, mime::envelope(raw).as_slice());
    assert_eq!(parts.body, mime::bodystructure(raw, false).as_slice());
    assert_eq!(
        parts.bodystructure,
        mime::bodystructure(raw, true).as_slice()
    );
    // The date as written (29 Nov, though it is 30 Nov in UTC).
    assert_eq!(parts.sent_date, Some(date::days_from_civil(2026, 11, 29)));
    // Bare LFs: the same blob as for the CRLF file.
    assert_eq!(blob(RAW.replace("\r\n", "\n").as_bytes()), b);

    let none = blob(b"Subject: no date\r\n\r\nx\r\n");
    assert_eq!(blob_parts(&none).map(|p| p.sent_date), Some(None));
    let bad_date = blob(b"Date: yesterday\r\n\r\nx\r\n");
    assert_eq!(blob_parts(&bad_date).map(|p| p.sent_date), Some(None));

    assert_eq!(blob_parts(b""), None);
    assert_eq!(blob_parts(b"MFB0"), None);
    for cut in 1..b.len() {
        assert_eq!(blob_parts(b.get(..cut).expect("cut")), None, "cut at {cut}");
    }
    let mut longer = b.clone();
    longer.push(0);
    assert_eq!(blob_parts(&longer), None);
    let mut wrong_tag = none.clone();
    if let Some(last) = wrong_tag.last_mut() {
        *last = 2;
    }
    assert_eq!(blob_parts(&wrong_tag), None);
    let mut huge = b"MFB1".to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(blob_parts(&huge), None);
}

#[test]
fn vanished_is_refused() {
    let (items, _, uid) = request("UID FETCH 1:* FLAGS");
    let p = plan(&items, uid, true).expect("plan");
    assert!(p.with_modifiers(&[FetchModifier::Vanished]).is_err());
}

#[test]
fn a_line_past_the_message_size_and_32_mib_is_refused() {
    // 2 MiB of body; 20 distinct partials of it would make a 40 MiB line.
    let raw = format!("Subject: big\r\n\r\n{}", "x".repeat(2 << 20));
    let items: Vec<String> = (0..20)
        .map(|i| format!("BODY.PEEK[]<{i}.99999999>"))
        .collect();
    let p = plan_of(&format!("FETCH 1 ({})", items.join(" ")), false);
    assert_eq!(
        render_with(&p, raw.as_bytes(), None),
        Err(RenderError::TooLarge)
    );
    let p = plan_of(&format!("FETCH 1 ({})", items[..10].join(" ")), false);
    let out = render_with(&p, raw.as_bytes(), None).expect("10 copies fit");
    assert!(out.len() > 20 << 20 && out.len() < MAX_LINE_EXTRA + raw.len());
}
