//! The list's footer (`ListInfo.footer`) added to a post without breaking its MIME structure,
//! and the post's body streamed to the queue.
//!
//! By the post's top-level Content-Type (none = text/plain; charset=us-ascii):
//!
//! - `text/plain` in 7bit/8bit/binary: the footer is appended as is, on a line of its own,
//!   when it is ASCII or the part is UTF-8 in 8bit/binary; in quoted-printable: appended
//!   QP-encoded, when it is ASCII or the part is UTF-8. Otherwise (base64, another charset for
//!   a non-ASCII footer) the post is wrapped, below.
//! - `multipart/mixed`: a `text/plain` part with the footer goes before the closing boundary,
//!   found in the last `TAIL` bytes; without a closing boundary there the post is left alone
//!   (it is broken already; adding to it would not mend it).
//! - `multipart/signed`, `multipart/encrypted`, `application/pkcs7-mime`,
//!   `application/pgp-encrypted`: left alone (any change would break the signature).
//! - Anything else (`multipart/alternative`, `text/html`, a base64 text part, ...): wrapped,
//!   as Mailman does, in a new `multipart/mixed` whose first part is the original (its
//!   `Content-*` fields move into the part, the body is copied unchanged) and whose second is
//!   the footer.
//!
//! A footer part is `text/plain`, 7bit when the footer is ASCII, else UTF-8 quoted-printable,
//! so it fits under any enclosing encoding.
//!
//! SECURITY: the body is never held: the plan reads at most `TAIL` bytes of its end with
//! positioned reads, and the body goes out in `CHUNK` pieces. The footer (the admin's, checked
//! by the store) is cut to `MAX_FOOTER` and has its control characters other than tab and line
//! ends removed; the wrapping boundary is 128 random bits, never the poster's.

use std::fs::File;
use std::sync::Arc;

use mail_parser::HeaderName;
use moat_common::client::queue::{CHUNK, Injection};
use ring::rand::{SecureRandom, SystemRandom};

use crate::header;

/// The most of the body's end read to find a closing boundary.
pub const TAIL: u64 = 64 * 1024;
/// The longest footer used (the store's limit).
pub const MAX_FOOTER: usize = 16 * 1024;

/// One piece of the outgoing body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// The descriptor's bytes `from..to`.
    File {
        from: u64,
        to: u64,
    },
}

/// What the footer does to the post: fields to put in the new header, whether the poster's
/// `Content-*` fields leave it (a wrap), and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// For the log: `appended`, `added as a part`, `wrapped`, `none (...)`.
    pub how: String,
    /// The poster's `Content-*` fields move into the first part: drop them from the header.
    pub drop_content_fields: bool,
    /// Fields to add to the header (CRLF lines).
    pub fields: Vec<u8>,
    pub body: Vec<Piece>,
}

impl Plan {
    /// The body unchanged.
    pub fn unchanged(how: &str, body_at: u64, size: u64) -> Plan {
        Plan {
            how: how.to_string(),
            drop_content_fields: false,
            fields: Vec::new(),
            body: vec![Piece::File {
                from: body_at,
                to: size.max(body_at),
            }],
        }
    }
}

/// The footer as CRLF lines ending with CRLF, or `None` for no footer.
fn lines(footer: &str) -> Option<String> {
    let mut cut = footer.len().min(MAX_FOOTER);
    while !footer.is_char_boundary(cut) {
        cut -= 1;
    }
    let clean: String = footer[..cut]
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if clean.trim().is_empty() {
        return None;
    }
    let mut out = clean.trim_end_matches('\n').replace('\n', "\r\n");
    out.push_str("\r\n");
    Some(out)
}

/// The post's top-level content: (type/subtype lower-case, charset lower-case, boundary,
/// transfer encoding lower-case).
struct Content {
    mime_type: String,
    charset: String,
    boundary: Option<String>,
    encoding: String,
}

fn content(head: &[u8]) -> Content {
    let encoding = header::values(head, "Content-Transfer-Encoding")
        .first()
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let long = header::fields(head)
        .into_iter()
        .any(|f| header::is_named(f, "Content-Type") && f.len() > crate::rewrite::MAX_PARSED);
    let parsed = crate::rewrite::parse_field(head, "Content-Type");
    let ct = parsed
        .as_ref()
        .and_then(|m| m.header(HeaderName::ContentType))
        .and_then(|v| v.as_content_type());
    match ct {
        Some(ct) => Content {
            mime_type: format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            ),
            charset: ct
                .attribute("charset")
                .unwrap_or("us-ascii")
                .to_ascii_lowercase(),
            boundary: ct.attribute("boundary").map(str::to_string),
            encoding,
        },
        None if long => Content {
            mime_type: "unknown/too-long".into(),
            charset: String::new(),
            boundary: None,
            encoding,
        },
        None => Content {
            mime_type: "text/plain".into(),
            charset: "us-ascii".into(),
            boundary: None,
            encoding,
        },
    }
}

/// Reads up to `len` bytes at `at`.
fn read_at(file: &File, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    crate::header::read_at(file, at, usize::try_from(len).unwrap_or(0))
}

/// How to add `footer` to the post whose header is `head` and whose body is `file`'s bytes
/// `body_at..size`. Blocking (positioned reads).
pub fn plan(
    head: &[u8],
    footer: &str,
    file: &File,
    body_at: u64,
    size: u64,
) -> std::io::Result<Plan> {
    let Some(text) = lines(footer) else {
        return Ok(Plan::unchanged("none (no footer)", body_at, size));
    };
    let size = size.max(body_at);
    let c = content(head);
    let ascii = text.is_ascii();
    let utf8 = c.charset == "utf-8" || c.charset == "utf8";
    match c.mime_type.as_str() {
        "unknown/too-long" => Ok(Plan::unchanged(
            "none (a Content-Type too long to read)",
            body_at,
            size,
        )),
        "multipart/signed"
        | "multipart/encrypted"
        | "application/pkcs7-mime"
        | "application/x-pkcs7-mime"
        | "application/pgp-encrypted" => Ok(Plan::unchanged(
            "none (signed or encrypted: a change would break it)",
            body_at,
            size,
        )),
        "text/plain" => {
            let raw = matches!(c.encoding.as_str(), "" | "7bit" | "8bit" | "binary")
                && (ascii || (utf8 && matches!(c.encoding.as_str(), "8bit" | "binary")));
            let qp = c.encoding == "quoted-printable" && (ascii || utf8);
            if !(raw || qp) {
                return wrap(head, &c, &text, body_at, size);
            }
            let end = read_at(file, size.saturating_sub(3).max(body_at), 3)?;
            let mut add = Vec::new();
            let soft_break = qp && (end.ends_with(b"=\r\n") || end.ends_with(b"=\n"));
            if !end.is_empty() && !end.ends_with(b"\n") || soft_break {
                add.extend_from_slice(b"\r\n");
            }
            if qp {
                add.extend_from_slice(quoted_printable(&text).as_bytes());
            } else {
                add.extend_from_slice(text.as_bytes());
            }
            Ok(Plan {
                how: "appended".into(),
                drop_content_fields: false,
                fields: Vec::new(),
                body: vec![
                    Piece::File {
                        from: body_at,
                        to: size,
                    },
                    Piece::Bytes(add),
                ],
            })
        }
        "multipart/mixed" => {
            let Some(boundary) = c.boundary.as_deref().filter(|b| valid_boundary(b)) else {
                return Ok(Plan::unchanged(
                    "none (multipart without a boundary)",
                    body_at,
                    size,
                ));
            };
            let from = size.saturating_sub(TAIL).max(body_at);
            let tail = read_at(file, from, size - from)?;
            let Some(at) = closing(&tail, boundary) else {
                return Ok(Plan::unchanged(
                    "none (no closing boundary at the end of the multipart)",
                    body_at,
                    size,
                ));
            };
            let at = from + at as u64;
            let mut part = format!("\r\n--{boundary}\r\n").into_bytes();
            part.extend_from_slice(&footer_part(&text));
            Ok(Plan {
                how: "added as a part".into(),
                drop_content_fields: false,
                fields: Vec::new(),
                body: vec![
                    Piece::File {
                        from: body_at,
                        to: at,
                    },
                    Piece::Bytes(part),
                    Piece::File { from: at, to: size },
                ],
            })
        }
        t if t.starts_with("multipart/")
            && c.boundary.as_deref().is_none_or(|b| !valid_boundary(b)) =>
        {
            Ok(Plan::unchanged(
                "none (multipart without a boundary)",
                body_at,
                size,
            ))
        }
        _ => wrap(head, &c, &text, body_at, size),
    }
}

/// RFC 2046 §5.1.1: 1 to 70 characters of a restricted set (mail-parser already unquoted it).
fn valid_boundary(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 70
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
        && !b.ends_with(' ')
}

/// Where in `tail` the close delimiter's line break starts: the last line beginning with
/// `--boundary` must be `--boundary--` (then blanks, the line end or the end).
fn closing(tail: &[u8], boundary: &str) -> Option<usize> {
    let needle = format!("\n--{boundary}");
    let found = memrfind(tail, needle.as_bytes())?;
    let after = &tail[found + needle.len()..];
    let rest = after.strip_prefix(b"--")?;
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    if !rest[..line_end]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r'))
    {
        return None;
    }
    if found > 0 && tail[found - 1] == b'\r' {
        Some(found - 1)
    } else {
        Some(found)
    }
}

fn memrfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..].starts_with(needle))
}

/// The footer part's header, empty line and content (no final line break: the delimiter that
/// follows brings it).
fn footer_part(text: &str) -> Vec<u8> {
    let (charset, encoding, content) = if text.is_ascii() {
        ("us-ascii", "7bit", text.to_string())
    } else {
        ("utf-8", "quoted-printable", quoted_printable(text))
    };
    format!(
        "Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: \
         {encoding}\r\nContent-Disposition: inline\r\n\r\n{}",
        content.trim_end_matches("\r\n")
    )
    .into_bytes()
}

/// The post wrapped in a `multipart/mixed` with the footer as its second part.
fn wrap(head: &[u8], c: &Content, text: &str, body_at: u64, size: u64) -> std::io::Result<Plan> {
    let mut random = [0u8; 16];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| std::io::Error::other("no random bytes for a MIME boundary"))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let boundary = format!("=_moat_list_{hex}");
    let mut fields = Vec::new();
    if header::values(head, "MIME-Version").is_empty() {
        fields.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    fields.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n").as_bytes(),
    );
    if matches!(c.encoding.as_str(), "8bit" | "binary") {
        fields
            .extend_from_slice(format!("Content-Transfer-Encoding: {}\r\n", c.encoding).as_bytes());
    }
    let mut first = format!("--{boundary}\r\n").into_bytes();
    for field in header::fields(head) {
        if is_content_field(field) {
            first.extend_from_slice(field);
            if !field.ends_with(b"\n") {
                first.extend_from_slice(b"\r\n");
            }
        }
    }
    first.extend_from_slice(b"\r\n");
    let mut second = format!("\r\n--{boundary}\r\n").into_bytes();
    second.extend_from_slice(&footer_part(text));
    second.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(Plan {
        how: "wrapped with the footer in a multipart/mixed".into(),
        drop_content_fields: true,
        fields,
        body: vec![
            Piece::Bytes(first),
            Piece::File {
                from: body_at,
                to: size,
            },
            Piece::Bytes(second),
        ],
    })
}

/// `Content-*` fields (they describe the body, and move with it into a wrapped part).
pub fn is_content_field(field: &[u8]) -> bool {
    field.len() > 8 && field[..8].eq_ignore_ascii_case(b"content-") && field.contains(&b':')
}

/// `text` (CRLF lines) quoted-printable (RFC 2045 §6.7): CRLF kept as hard breaks, lines cut
/// with soft breaks at 76 characters.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for (n, line) in text.split("\r\n").enumerate() {
        if n > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut width = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece = if literal {
                char::from(b).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
    }
    out
}

/// Sends the body `pieces` into `injection`, reading file pieces `CHUNK` at a time.
pub async fn send(
    injection: &mut Injection,
    file: &Arc<File>,
    pieces: &[Piece],
) -> std::io::Result<()> {
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => {
                for chunk in b.chunks(CHUNK) {
                    injection.write(chunk).await?;
                }
            }
            Piece::File { from, to } => {
                let mut offset = *from;
                while offset < *to {
                    let f = Arc::clone(file);
                    let want = (*to - offset).min(CHUNK as u64);
                    let at = offset;
                    let chunk = tokio::task::spawn_blocking(move || read_at(&f, at, want))
                        .await
                        .map_err(std::io::Error::other)??;
                    if chunk.is_empty() {
                        break;
                    }
                    offset += chunk.len() as u64;
                    injection.write(&chunk).await?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders as _, PartType};

    const FOOTER: &str = "--\nthe dev list\nunsubscribe: dev-unsubscribe@x.test\n";

    /// The message `head` + `body` after the footer: (plan, the whole new message).
    fn apply(head: &str, body: &[u8], footer: &str) -> (Plan, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        let mut raw = head.as_bytes().to_vec();
        raw.extend_from_slice(b"\r\n");
        let body_at = raw.len() as u64;
        raw.extend_from_slice(body);
        std::fs::write(&path, &raw).expect("write");
        let file = File::open(&path).expect("open");
        let size = raw.len() as u64;
        let plan = plan(head.as_bytes(), footer, &file, body_at, size).expect("plan");
        let mut out = Vec::new();
        for field in header::fields(head.as_bytes()) {
            if !(plan.drop_content_fields && is_content_field(field)) {
                out.extend_from_slice(field);
            }
        }
        out.extend_from_slice(&plan.fields);
        out.extend_from_slice(b"\r\n");
        for piece in &plan.body {
            match piece {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::File { from, to } => {
                    out.extend_from_slice(&raw[*from as usize..*to as usize]);
                }
            }
        }
        (plan, out)
    }

    fn text_of(msg: &[u8], part: usize) -> String {
        let m = MessageParser::default().parse(msg).expect("parse");
        m.body_text(part).expect("text part").replace("\r\n", "\n")
    }

    #[test]
    fn appended_to_plain_text() {
        let (plan, out) = apply("From: a@b.test\r\nSubject: s\r\n", b"hello\r\n", FOOTER);
        assert_eq!(plan.how, "appended");
        assert!(
            out.ends_with(
                b"hello\r\n--\r\nthe dev list\r\nunsubscribe: dev-unsubscribe@x.test\r\n"
            )
        );
        // No line end at the end of the body: the footer still starts a line.
        let (_, out) = apply("Subject: s\r\n", b"hello", FOOTER);
        assert!(
            text_of(&out, 0).starts_with("hello\n--\n"),
            "{}",
            text_of(&out, 0)
        );
        // An empty body.
        let (_, out) = apply("Subject: s\r\n", b"", "x\n");
        assert!(out.ends_with(b"\r\n\r\nx\r\n"));
        // UTF-8 8bit: a non-ASCII footer appended as is.
        let head = "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n";
        let (plan, out) = apply(head, "héllo\r\n".as_bytes(), "café\n");
        assert_eq!(plan.how, "appended");
        assert_eq!(text_of(&out, 0), "héllo\ncafé\n");
    }

    #[test]
    fn appended_quoted_printable() {
        let head = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: \
                    quoted-printable\r\n";
        let (plan, out) = apply(head, b"caf=C3=A9 ok=\r\n", "fin é =\n");
        assert_eq!(plan.how, "appended");
        assert_eq!(text_of(&out, 0), "café ok\nfin é =\n");
    }

    #[test]
    fn wrapped_when_appending_cannot_work() {
        // base64 text: the part is left as is, inside a new multipart/mixed.
        let head = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: base64\r\n";
        let (plan, out) = apply(head, b"aMOpbGxvCg==\r\n", FOOTER);
        assert!(plan.drop_content_fields, "{plan:?}");
        let m = MessageParser::default().parse(&out).expect("parse");
        assert_eq!(m.content_type().map(|c| c.subtype()), Some(Some("mixed")));
        assert_eq!(m.body_text(0).as_deref(), Some("héllo\n"));
        assert!(text_of(&out, 1).starts_with("--\nthe dev list"));
        assert_eq!(
            String::from_utf8_lossy(&out)
                .matches("MIME-Version")
                .count(),
            1
        );
        // A non-ASCII footer for a us-ascii text: its own UTF-8 part.
        let (plan, out) = apply("Subject: s\r\n", b"hello\r\n", "café\n");
        assert!(plan.how.starts_with("wrapped"));
        assert_eq!(text_of(&out, 0), "hello\n");
        assert_eq!(text_of(&out, 1), "café");
        // multipart/alternative: both alternatives stay together in the first part.
        let head = "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n";
        let body = b"--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n--alt\r\n\
                     Content-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--\r\n";
        let (_, out) = apply(head, body, FOOTER);
        let m = MessageParser::default().parse(&out).expect("parse");
        assert_eq!(m.content_type().map(|c| c.subtype()), Some(Some("mixed")));
        let alt = m.part(1).expect("alternative part");
        assert_eq!(
            alt.content_type().and_then(|c| c.subtype()),
            Some("alternative")
        );
        assert!(matches!(alt.body, PartType::Multipart(ref p) if p.len() == 2));
        assert!(m.text_bodies().any(|p| p.text_contents() == Some("plain")));
        assert!(m.text_bodies().any(|p| {
            p.text_contents()
                .is_some_and(|t| t.contains("the dev list"))
        }));
    }

    #[test]
    fn part_added_to_mixed() {
        let head = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n";
        let body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\n\
                     Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: \
                     base64\r\n\r\nAAEC\r\n--b1--\r\nepilogue\r\n";
        let (plan, out) = apply(head, body, FOOTER);
        assert_eq!(plan.how, "added as a part");
        let m = MessageParser::default().parse(&out).expect("parse");
        let PartType::Multipart(ref parts) = m.root_part().body else {
            panic!("not multipart");
        };
        assert_eq!(parts.len(), 3, "{}", String::from_utf8_lossy(&out));
        assert_eq!(m.body_text(0).as_deref(), Some("hello"));
        assert_eq!(
            m.attachment(0).map(|a| a.contents()),
            Some(&[0u8, 1, 2][..])
        );
        assert_eq!(
            m.part(parts[2])
                .and_then(|p| p.text_contents())
                .map(|t| t.replace("\r\n", "\n")),
            Some("--\nthe dev list\nunsubscribe: dev-unsubscribe@x.test".to_string())
        );
        assert!(out.ends_with(b"\r\n--b1--\r\nepilogue\r\n"));
        // No closing boundary: left alone.
        let (plan, out) = apply(head, b"--b1\r\n\r\nx\r\n", FOOTER);
        assert!(plan.how.starts_with("none"), "{plan:?}");
        assert!(out.ends_with(b"\r\n\r\n--b1\r\n\r\nx\r\n"));
    }

    #[test]
    fn signed_left_alone() {
        let head = "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; \
                    micalg=pgp-sha256; boundary=\"s\"\r\n";
        let body = b"--s\r\n\r\nsigned\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n\
                     sig\r\n--s--\r\n";
        let (plan, out) = apply(head, body, FOOTER);
        assert!(plan.how.contains("signed"), "{plan:?}");
        assert!(out.ends_with(body));
        let (plan, _) = apply(
            "Content-Type: application/pkcs7-mime\r\n",
            b"AAAA\r\n",
            FOOTER,
        );
        assert!(plan.how.starts_with("none"));
        let (plan, _) = apply("Subject: s\r\n", b"x\r\n", " \n\n");
        assert_eq!(plan.how, "none (no footer)");
    }

    #[test]
    fn qp_lines_are_short() {
        let qp = quoted_printable(&format!("{}\r\n", "é".repeat(60)));
        assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
        assert!(quoted_printable("a \r\nb=").ends_with("a=20\r\nb=3D"));
        assert_eq!(closing(b"x\r\n--b--\r\n", "b"), Some(1));
        assert_eq!(closing(b"x\n--b--", "b"), Some(1));
        assert_eq!(closing(b"x\r\n--b--\r\n--b\r\n", "b"), None);
        assert!(!valid_boundary("") && !valid_boundary("a\r\nb") && valid_boundary("=_a.b"));
    }
}
