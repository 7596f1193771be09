//! The behaviours the session relies on, one test each.

use super::corpus;
use super::{crlf, message, show};
use crate::mime::*;

#[test]
fn simple_message() {
    let raw = crlf(corpus::SIMPLE);
    let p = Parsed::new(&raw);
    assert_eq!(
        show(&p.bodystructure(false)),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 52 2)"#
    );
    let body = p.section(&Section {
        part: vec![1],
        text: None,
    });
    assert_eq!(
        body.as_deref(),
        Some(&b"This is a message just to say hello.\r\nSo, \"Hello\".\r\n"[..])
    );
    assert_eq!(
        p.section(&Section::default()).as_deref(),
        Some(raw.as_slice())
    );
    assert_eq!(
        p.section(&Section {
            part: vec![2],
            text: None
        }),
        None
    );
    assert_eq!(
        p.section(&Section {
            part: vec![],
            text: Some(SectionText::Mime)
        }),
        None
    );
}

#[test]
fn header_fields_are_case_insensitive_in_message_order() {
    let raw = message("COMPLEX");
    let fields = |names: &[&str], not: bool| {
        let names = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let text = if not {
            SectionText::HeaderFieldsNot(names)
        } else {
            SectionText::HeaderFields(names)
        };
        show(
            &section(
                &raw,
                &Section {
                    part: vec![],
                    text: Some(text),
                },
            )
            .expect("root header"),
        )
    };
    assert_eq!(
        fields(&["X-CUSTOM", "subject"], false),
        "Subject: Quarterly report\r\nX-Custom: one\r\nx-custom: two\r\n\r\n"
    );
    assert_eq!(fields(&["nope"], false), "\r\n");
    let not = fields(
        &[
            "received",
            "RETURN-PATH",
            "x-custom",
            "content-type",
            "mime-version",
            "message-id",
            "date",
        ],
        true,
    );
    assert_eq!(
        not,
        "From: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Quarterly report\r\n\r\n"
    );
}

#[test]
fn mime_header_of_part_2_and_text_of_the_attached_message() {
    let raw = message("COMPLEX");
    let mime = section(
        &raw,
        &Section {
            part: vec![2],
            text: Some(SectionText::Mime),
        },
    )
    .expect("part 2 exists");
    assert!(mime.starts_with(b"Content-Type: application/pdf; name=\"report.pdf\"\r\n"));
    assert!(mime.ends_with(b"Content-Description: The report\r\n\r\n"));
    let text = section(
        &raw,
        &Section {
            part: vec![3],
            text: Some(SectionText::Text),
        },
    )
    .expect("part 3 is a message");
    assert!(text.starts_with(b"--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n"));
    assert!(text.ends_with(b"iVBORw0KGgo=\r\n--inner--\r\n"));
    // HEADER of a part that is not a message does not exist.
    assert_eq!(
        section(
            &raw,
            &Section {
                part: vec![2],
                text: Some(SectionText::Header)
            }
        ),
        None
    );
}

#[test]
fn binary_decodes_base64_and_quoted_printable() {
    let raw = message("BINARY");
    assert_eq!(binary(&raw, &[1]), Ok((0u8..20).collect::<Vec<u8>>()));
    assert_eq!(binary_size(&raw, &[1]), Ok(20));
    assert_eq!(
        binary(&raw, &[2]).as_deref(),
        Ok(&b"line one\r\nline two with trailing soft break and = sign"[..])
    );
    assert_eq!(binary(&raw, &[3]), Err(BinaryError::UnknownCte));
    assert_eq!(binary_size(&raw, &[3]), Err(BinaryError::UnknownCte));
    assert_eq!(binary(&raw, &[4]).as_deref(), Ok("café 8bit".as_bytes()));
    assert_eq!(binary(&raw, &[5]), Err(BinaryError::NoSuchPart));
    assert_eq!(binary(&raw, &[]).as_deref(), Ok(raw.as_slice()));
    let complex = message("COMPLEX");
    let pdf = binary(&complex, &[2]).expect("base64 part");
    assert!(pdf.starts_with(b"%PDF-1.4\n"));
    assert_eq!(
        binary(&complex, &[1, 1]).as_deref(),
        Ok(&b"Caf\xe9 au lait, na\xefve r\xe9sum\xe9. Soft break joined."[..])
    );
    // A non-MIME message's Content-Transfer-Encoding is ignored, as its BODYSTRUCTURE says.
    let nonmime = message("NONMIME");
    assert_eq!(binary(&nonmime, &[1]).as_deref(), Ok(&b"aGVsbG8=\r\n"[..]));
}

#[test]
fn search_decodes_words_charsets_and_encodings() {
    let raw = message("SEARCH");
    let p = Parsed::new(&raw);
    assert_eq!(
        p.header_values("subject"),
        vec!["Réunion àParis demain".to_string()]
    );
    assert!(p.header_contains("Subject", "réunion"));
    assert!(p.header_contains("SUBJECT", "RÉUNION ÀPARIS"));
    assert!(!p.header_contains("Subject", "réunion à paris"));
    assert!(p.header_contains("From", "FRANÇOIS"));
    assert!(p.header_contains("From", "francois@example"));
    assert!(p.header_contains("Subject", ""));
    assert!(!p.header_contains("X-Nope", ""));
    // ISO-8859-1 quoted-printable body; base64 UTF-8 body; the binary part is not text.
    assert!(p.body_contains("hôtel"));
    assert!(p.body_contains("HÔTEL DE VILLE"));
    assert!(p.body_contains("STRAßE"));
    assert!(!p.body_contains("STRASSE"));
    assert!(!p.body_contains("needle"));
    assert!(!p.body_contains("Content-Type"));
    assert!(!p.body_contains("team@example"));
    assert!(p.text_contains("team@example"));
    assert!(p.text_contains("content-transfer-encoding"));
    assert!(p.text_contains("l'hôtel"));
    assert!(!p.text_contains("c2VjcmV0"));
    assert!(p.body_contains(""));
    assert_eq!(p.body_texts().len(), 2);

    // Inside an attached message: its text is body, its header only TEXT.
    let complex = message("COMPLEX");
    assert!(body_contains(&complex, "inner text"));
    assert!(!body_contains(&complex, "andre@example.net"));
    assert!(text_contains(&complex, "andré"));
    assert!(text_contains(&complex, "DÉJÀ VU"));
    assert!(!header_contains(&complex, "Subject", "déjà"));
    assert!(body_contains(&complex, "café au lait, naïve"));
    assert!(!body_contains(&complex, "preamble"));
    assert!(!text_contains(&complex, "--alt"));
}

#[test]
fn envelope_groups_and_encoded_words() {
    let raw = message("ADDRS");
    let env = show(&envelope(&raw));
    assert!(
        env.contains(r#"((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")"#),
        "{env}"
    );
    assert!(
        env.contains(r#"(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#),
        "{env}"
    );
    assert!(env.contains(r#"(("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk"))"#));
    assert!(
        env.contains(r#""=?utf-8?B?w6l0w6k=?= and folded spaces""#),
        "{env}"
    );
}

#[test]
fn address_forms() {
    let cases: &[(&str, &str)] = &[
        (
            "From: Joe Q. Public <j@x>",
            r#"(("Joe Q. Public" NIL "j" "x"))"#,
        ),
        (
            "From: J.R.R. Tolkien <t@x>",
            r#"(("J.R.R. Tolkien" NIL "t" "x"))"#,
        ),
        (
            "From: john . doe @ x . test",
            r#"((NIL NIL "john.doe" "x.test"))"#,
        ),
        (
            "From: a@b, , c@d,",
            r#"((NIL NIL "a" "b")(NIL NIL "c" "d"))"#,
        ),
        (
            "From: Mary <mary@x.test",
            r#"(("Mary" NIL "mary" "SYNTAX_ERROR"))"#,
        ),
        (
            "From: <Undisclosed Recipients>",
            r#"((NIL NIL "Undisclosed" "SYNTAX_ERROR"))"#,
        ),
        (
            "From: <>",
            r#"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#,
        ),
        (
            "From: g1: a@b, g2: c@d; ;",
            r#"((NIL NIL "g1" NIL)(NIL NIL "a" "b")(NIL NIL "c" "d")(NIL NIL NIL NIL))"#,
        ),
        (
            "From: open: a@b",
            r#"((NIL NIL "open" NIL)(NIL NIL "a" "b")(NIL NIL NIL NIL))"#,
        ),
        (
            "From: \"a b\"@[1.2.3.4] (c)",
            r#"(("c" NIL "a b" "[1.2.3.4]"))"#,
        ),
        ("From: (only a comment)", "NIL"),
        (
            "From: \"x\0y\" <a@b>",
            "(({5}\r\nx\u{fffd}y NIL \"a\" \"b\"))",
        ),
    ];
    for (header, from) in cases {
        let raw = crlf(&format!("{header}\n\nbody\n"));
        let env = show(&envelope(&raw));
        let expected = format!("(NIL NIL {from} {from} {from} NIL NIL NIL NIL NIL)");
        assert_eq!(env, expected, "{header}");
    }
}

#[test]
fn partial_and_crlf_helpers() {
    assert_eq!(partial(b"0123456789", 2, 3), b"234");
    assert_eq!(partial(b"0123456789", 8, 10), b"89");
    assert_eq!(partial(b"0123", 9, 1), b"");
    assert_eq!(partial(b"0123", u32::MAX, u32::MAX), b"");
    assert!(matches!(to_crlf(b"a\r\nb"), std::borrow::Cow::Borrowed(_)));
    assert_eq!(to_crlf(b"a\nb\r\nc\n").as_ref(), b"a\r\nb\r\nc\r\n");
    // A bare-LF message gives the same structure once converted.
    let lf = corpus::COMPLEX.as_bytes();
    assert_eq!(
        bodystructure(&to_crlf(lf), true),
        bodystructure(&message("COMPLEX"), true)
    );
}

#[test]
fn nul_is_sent_as_0x80_except_by_binary() {
    // What Dovecot answers for BODY[1] of such a part (mail-parser's thirdparty_005 sample).
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Transfer-Encoding: binary\r\n\r\na\0b\r\n--b--\r\n";
    let p = Parsed::new(raw);
    let body = p.section(&Section {
        part: vec![1],
        text: None,
    });
    assert_eq!(body.as_deref(), Some(&b"a\x80b"[..]));
    assert_eq!(p.binary(&[1]).as_deref(), Ok(&b"a\0b"[..]));
}

#[test]
fn hostile_bytes_never_panic() {
    let samples: &[&[u8]] = &[
        b"",
        b"\r\n",
        b"\n\n",
        b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/digest; boundary=\"\"\r\n\r\n--\r\n--\r\n",
        b"From: \"\\\r\nTo: ((((\r\nSubject: =?\r\n\r\n",
        b"Content-Type: text/plain; charset*0*=x; charset*=y; name*99999999999=z\r\n\r\n",
        b"\xff\xfe\x00: \x00\r\n \r\n\r\n\x00",
    ];
    for raw in samples {
        let p = Parsed::new(raw);
        let _ = (p.envelope(), p.bodystructure(true), p.bodystructure(false));
        for path in [&[][..], &[1], &[1, 1], &[2], &[0], &[u32::MAX]] {
            for text in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Mime),
                Some(SectionText::Text),
            ] {
                let _ = p.section(&Section {
                    part: path.to_vec(),
                    text,
                });
            }
            let _ = p.binary(path);
        }
        let _ = (
            p.body_contains("x"),
            p.text_contains("x"),
            p.header_contains("from", "x"),
        );
    }
}
