//! A post's new header: the list's fields (RFC 2919 List-Id, RFC 2369 List-*, `Precedence:
//! list`), the subject prefix (RFC 2047-encoded when it is not ASCII, never twice), the
//! Reply-To policy, DMARC From: rewriting (`dmarc.rs`, Mailman's munge_from) and the MIME fields
//! a footer wrap needs (`footer.rs`).
//!
//! Reply-To (`ListInfo.reply_to`): `list` replaces any Reply-To with the list's address;
//! `poster` with the poster's From:; `none` leaves the poster's. When the From: is rewritten
//! (`From: "Name via LIST" <list@domain>`, the original kept in `X-Original-From:`), replies
//! must still be able to reach the poster: with `list` the poster's address is added to `Cc:`
//! (Mailman 2.1's choice: "reply" goes to the list as configured, "reply all" includes the
//! poster); with `poster` it is the Reply-To anyway; with `none` it becomes the Reply-To unless
//! the poster set a Reply-To of their own, which is kept.
//!
//! SECURITY: the header is hostile input: it is handled as whole fields (`header::fields`, a
//! field's folded lines stay together), and what moves from one field to another (the From:
//! value into Reply-To, Cc, X-Original-From) is a whole field body, so nothing can start a new
//! field. The prefix and the display name have their control characters removed and are
//! quoted or RFC 2047-encoded.

use std::fs::File;
use std::sync::Arc;

use base64::Engine as _;
use mail_parser::MessageParser;
use moat_common::client::list_store::ListInfo;
use moat_common::info;
use moat_common::wire::Status;

use crate::context::Ctx;
use crate::dmarc::{self, Verdict};
use crate::footer::{self, Piece, Plan};
use crate::header;
use crate::request::Request;

/// Header fields of the poster's that the list replaces with its own.
const REPLACED: &[&str] = &[
    "Return-Path",
    "Precedence",
    "List-Id",
    "List-Help",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
];

/// The most From: addresses whose domains are looked up.
const MAX_FROM: usize = 5;
/// The longest display name kept in a rewritten From: (characters).
const MAX_NAME: usize = 100;

/// The list's Reply-To policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    List,
    Poster,
    None,
}

impl ReplyTo {
    pub fn parse(text: &str) -> ReplyTo {
        match text {
            "list" => ReplyTo::List,
            "poster" => ReplyTo::Poster,
            _ => ReplyTo::None,
        }
    }
}

/// What `rewrite` does besides the list's fields.
pub struct Options<'a> {
    pub list: &'a str,
    pub prefix: &'a str,
    pub reply_to: ReplyTo,
    /// Rewrite the From: (its domain's DMARC policy would have the post refused).
    pub munge: bool,
    /// Drop the poster's `Content-*` fields (the footer wrapped the body).
    pub drop_content_fields: bool,
    /// Fields added at the end (the footer's MIME fields).
    pub extra: &'a [u8],
    /// The list keeps an archive: RFC 2369 `List-Archive` names its index command.
    pub archive: bool,
}

/// The new header and body of a post: the DMARC lookup, the footer's plan and the rewrite.
pub async fn prepare(
    ctx: &Ctx,
    req: &Request,
    info: &ListInfo,
    head: &[u8],
    file: &Arc<File>,
    body_at: u64,
) -> Result<(Vec<u8>, Vec<Piece>), Status> {
    let qid = req.queue_id.as_str();
    let mut munge = None;
    let (_, list_domain) = req.list_parts();
    for domain in from_domains(head) {
        // The list's own domain, one under it or one it is under: the post's SPF
        // (list-return-…@) and DKIM (d=the list's domain) align with that From:, so DMARC
        // passes as it is. Any other domain is looked up (`dmarc::aligned_with_list`).
        if dmarc::aligned_with_list(&domain, list_domain) {
            continue;
        }
        if let Verdict::Munge(why) = dmarc::check(ctx.nameserver.as_deref(), qid, &domain).await {
            munge = Some(why);
            break;
        }
    }
    let size = file.metadata().map(|m| m.len()).unwrap_or(body_at);
    let plan = {
        let (head, text, f) = (head.to_vec(), info.footer.clone(), Arc::clone(file));
        tokio::task::spawn_blocking(move || footer::plan(&head, &text, &f, body_at, size)).await
    };
    let plan = match plan {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            moat_common::warn!(id = qid; "list=<{}>: cannot read the post's body: {e}", req.list);
            return Err(Status::Temporary("4.3.0 cannot read the message".into()));
        }
        Err(e) => {
            moat_common::warn!(id = qid; "list=<{}>: {e}", req.list);
            return Err(Status::Temporary("4.3.0 internal error".into()));
        }
    };
    let Plan {
        how,
        drop_content_fields,
        fields,
        body,
    } = plan;
    let new_head = rewrite(
        head,
        &Options {
            list: &req.list,
            prefix: &info.subject_prefix,
            reply_to: ReplyTo::parse(&info.reply_to),
            munge: munge.is_some(),
            drop_content_fields,
            extra: &fields,
            archive: info.archive,
        },
    );
    info!(id = qid; "list=<{}> post from=<{}>: From: {}; Reply-To policy {}; footer {how}",
        req.list, req.sender,
        munge.map_or_else(|| "kept".to_string(), |why| format!("rewritten ({why})")),
        info.reply_to);
    Ok((new_head, body))
}

/// The longest field handed to mail-parser (its header decoder is quadratic on crafted values,
/// docs/ARCHITECTURE.md): a longer Subject is not decoded, a longer From: not rewritten, a
/// longer Content-Type gets no footer.
pub const MAX_PARSED: usize = 4096;

/// The first field named `name`, alone, when it is at most `MAX_PARSED` bytes: what mail-parser
/// is given instead of the whole header.
pub fn bounded_field<'h>(head: &'h [u8], name: &str) -> Option<&'h [u8]> {
    header::fields(head)
        .into_iter()
        .find(|f| header::is_named(f, name))
        .filter(|f| f.len() <= MAX_PARSED)
}

/// The first `name` field parsed by mail-parser (bounded, see `MAX_PARSED`).
pub fn parse_field<'h>(head: &'h [u8], name: &str) -> Option<mail_parser::Message<'h>> {
    MessageParser::default().parse_headers(bounded_field(head, name)?)
}

/// The lower-case domains of the From: addresses (at most `MAX_FROM`).
fn from_domains(head: &[u8]) -> Vec<String> {
    let Some(parsed) = parse_field(head, "From") else {
        return Vec::new();
    };
    let Some(from) = parsed.from() else {
        return Vec::new();
    };
    let mut out: Vec<String> = from
        .iter()
        .filter_map(|a| a.address())
        .filter_map(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty() && d.len() <= 253)
        .take(MAX_FROM)
        .collect();
    out.dedup();
    out
}

/// The poster's display name, else address, for "NAME via LIST".
fn poster_name(head: &[u8]) -> String {
    let parsed = parse_field(head, "From");
    let first = parsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|f| f.first());
    let name = first
        .and_then(|a| a.name())
        .filter(|n| !n.trim().is_empty())
        .or_else(|| first.and_then(|a| a.address()))
        .unwrap_or("");
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The post's new header (CRLF line ends): the list's fields first, then the poster's without
/// the ones the list replaces or rewrites, then the new ones.
pub fn rewrite(head: &[u8], o: &Options) -> Vec<u8> {
    let list = o.list;
    let (local, domain) = list.rsplit_once('@').unwrap_or((list, ""));
    let mut out = Vec::with_capacity(head.len() + 2048);
    for line in [
        format!("Delivered-To: {list}"),
        format!("List-Id: <{local}.{domain}>"),
        format!("List-Help: <mailto:{local}-help@{domain}>"),
        format!("List-Subscribe: <mailto:{local}-subscribe@{domain}>"),
        format!("List-Unsubscribe: <mailto:{local}-unsubscribe@{domain}>"),
        format!("List-Post: <mailto:{list}>"),
        format!("List-Owner: <mailto:{local}-owner@{domain}>"),
        "Precedence: list".to_string(),
    ] {
        push_line(&mut out, line.as_bytes());
    }
    if o.archive {
        let line = format!("List-Archive: <mailto:{local}-index@{domain}>");
        push_line(&mut out, line.as_bytes());
    }
    let fields = header::fields(head);
    let from = fields
        .iter()
        .find(|f| header::is_named(f, "From"))
        .map(|f| field_body(f));
    let munge = o.munge && from.is_some();
    let poster_reply_to = fields.iter().any(|f| header::is_named(f, "Reply-To"));
    // The Reply-To we set, as a field body (" value\r\n"), or None to keep the poster's.
    let reply_to: Option<Vec<u8>> = match o.reply_to {
        ReplyTo::List => Some(format!(" <{list}>\r\n").into_bytes()),
        ReplyTo::Poster => from.clone(),
        ReplyTo::None if munge && !poster_reply_to => from.clone(),
        ReplyTo::None => None,
    };
    let cc_poster = munge && o.reply_to == ReplyTo::List;
    let prefix: String = o.prefix.chars().filter(|c| !c.is_control()).collect();
    let prefix = prefix.trim();
    let subject = parse_field(head, "Subject").and_then(|m| m.subject().map(str::to_string));
    let mut subject_seen = false;
    let mut cc_done = false;
    for field in &fields {
        let named = |name: &str| header::is_named(field, name);
        if REPLACED.iter().any(|name| named(name))
            || (o.drop_content_fields && footer::is_content_field(field))
            || (reply_to.is_some() && named("Reply-To"))
            || (munge && (named("X-Original-From") || named("From")))
        {
            continue;
        }
        if named("Subject") && !subject_seen {
            subject_seen = true;
            out.extend_from_slice(&prefixed(field, prefix, subject.as_deref().unwrap_or("")));
        } else if cc_poster && named("Cc") && !cc_done {
            cc_done = true;
            let body = field_body(field);
            let mut line = b"Cc:".to_vec();
            line.extend_from_slice(trim_line_end(&body));
            line.extend_from_slice(b",\r\n");
            if let Some(f) = &from {
                line.extend_from_slice(f);
            }
            out.extend_from_slice(&line);
        } else {
            push_line(&mut out, field);
        }
    }
    if !subject_seen && !prefix.is_empty() {
        push_line(
            &mut out,
            format!("Subject: {}", encode_text(prefix)).as_bytes(),
        );
    }
    if let (true, Some(original)) = (munge, &from) {
        let name = format!("{} via {local}", poster_name(head));
        push_line(
            &mut out,
            format!("From: {} <{list}>", phrase(name.trim())).as_bytes(),
        );
        out.extend_from_slice(b"X-Original-From:");
        out.extend_from_slice(original);
        if cc_poster && !cc_done {
            out.extend_from_slice(b"Cc:");
            out.extend_from_slice(original);
        }
    }
    if let Some(value) = &reply_to {
        out.extend_from_slice(b"Reply-To:");
        out.extend_from_slice(value);
    }
    out.extend_from_slice(o.extra);
    out
}

/// `line`, with CRLF added when it has no line end.
fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// A field's body after the colon, with its folding, ending with a line end.
fn field_body(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    let mut body = field[colon..].to_vec();
    if !body.ends_with(b"\n") {
        body.extend_from_slice(b"\r\n");
    }
    if !body.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        body.insert(0, b' ');
    }
    body
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// The Subject field with `tag` in front, unless the subject (decoded: RFC 2047 words
/// included) already holds it, compared without case ("Re: [dev] …").
fn prefixed(field: &[u8], tag: &str, decoded: &str) -> Vec<u8> {
    if tag.is_empty() || decoded.to_lowercase().contains(&tag.to_lowercase()) {
        let mut out = field.to_vec();
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        return out;
    }
    let colon = field.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    let mut at = colon;
    while field.get(at).is_some_and(|b| *b == b' ' || *b == b'\t') {
        at += 1;
    }
    let rest = &field[at..];
    let rest_blank = trim_line_end(rest).iter().all(|b| b.is_ascii_whitespace());
    let mut out = b"Subject: ".to_vec();
    if tag.is_ascii() {
        out.extend_from_slice(tag.as_bytes());
    } else if rest.starts_with(b"=?") {
        // Blanks between two encoded words are dropped by decoders: the space goes inside.
        out.extend_from_slice(encode_words(&format!("{tag} ")).as_bytes());
    } else {
        out.extend_from_slice(encode_words(tag).as_bytes());
    }
    if !rest_blank {
        out.push(b' ');
        out.extend_from_slice(rest);
    }
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `text` as is when it is ASCII, else as RFC 2047 encoded words.
fn encode_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        encode_words(text)
    }
}

/// A display name: an RFC 5322 quoted string when ASCII, else RFC 2047 encoded words.
fn phrase(name: &str) -> String {
    if name.is_ascii() {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        encode_words(name)
    }
}

/// RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters (45 bytes of text each, cut on
/// character boundaries), folded onto continuation lines.
pub fn encode_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\r\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(prefix: &'a str, reply_to: ReplyTo, munge: bool) -> Options<'a> {
        Options {
            list: "dev@x.test",
            prefix,
            reply_to,
            munge,
            drop_content_fields: false,
            extra: b"",
            archive: false,
        }
    }

    fn run(head: &[u8], o: &Options) -> String {
        String::from_utf8(rewrite(head, o)).expect("utf8")
    }

    fn parsed_subject(head: &str) -> String {
        let msg = format!("{head}\r\nbody\r\n");
        MessageParser::default()
            .parse(msg.as_bytes())
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn headers_added_and_subject_prefixed_once() {
        let head = b"From: a@b.example\r\nSubject: hello\r\n world\r\nList-Id: <evil>\r\n\
                     Precedence: bulk\r\n";
        let out = run(head, &opts("[dev]", ReplyTo::None, false));
        assert!(out.starts_with("Delivered-To: dev@x.test\r\nList-Id: <dev.x.test>\r\n"));
        assert!(out.contains("List-Unsubscribe: <mailto:dev-unsubscribe@x.test>\r\n"));
        assert!(out.contains("List-Post: <mailto:dev@x.test>\r\n"));
        assert!(out.contains("Subject: [dev] hello\r\n world\r\n"), "{out}");
        assert!(!out.contains("<evil>") && !out.contains("bulk"), "{out}");
        assert_eq!(out.matches("Precedence:").count(), 1);
        assert!(!out.contains("Reply-To"), "{out}");
        assert!(!out.contains("List-Archive"), "{out}");
        let archived = run(
            head,
            &Options {
                archive: true,
                ..opts("", ReplyTo::None, false)
            },
        );
        assert!(
            archived.contains("List-Archive: <mailto:dev-index@x.test>\r\n"),
            "{archived}"
        );
        assert_eq!(archived.matches("List-Archive").count(), 1);
        let reply = run(
            b"Subject: Re: [DEV] hello\r\n",
            &opts("[dev] ", ReplyTo::None, false),
        );
        assert!(reply.contains("Subject: Re: [DEV] hello\r\n"), "{reply}");
        let evil = run(
            b"Subject: x\r\n",
            &opts("[a]\r\nBcc: e@vil", ReplyTo::None, false),
        );
        assert!(!evil.contains("\r\nBcc:"), "{evil}");
        let none = run(b"From: a@b\r\n", &opts("[dev]", ReplyTo::None, false));
        assert!(none.ends_with("From: a@b\r\nSubject: [dev]\r\n"), "{none}");
    }

    #[test]
    fn non_ascii_prefix_encoded_once() {
        let out = run(b"Subject: hello\r\n", &opts("[dév]", ReplyTo::None, false));
        assert!(out.is_ascii(), "{out}");
        assert_eq!(parsed_subject(&out), "[dév] hello");
        // The encoded result, posted again (a reply), is not prefixed twice.
        let subject = out
            .split("\r\n")
            .find(|l| l.starts_with("Subject:"))
            .expect("subject");
        let again = run(
            format!("{}\r\n", subject.replacen("Subject: ", "Subject: Re: ", 1)).as_bytes(),
            &opts("[dév]", ReplyTo::None, false),
        );
        assert_eq!(parsed_subject(&again), "Re: [dév] hello");
        // An encoded subject: the space between the prefix and it survives decoding.
        let enc = run(
            b"Subject: =?UTF-8?B?w6l0w6k=?=\r\n",
            &opts("[dév]", ReplyTo::None, false),
        );
        assert_eq!(parsed_subject(&enc), "[dév] été");
        let enc = run(
            b"Subject: =?UTF-8?B?w6l0w6k=?=\r\n",
            &opts("[dev]", ReplyTo::None, false),
        );
        assert_eq!(parsed_subject(&enc), "[dev] été");
        // Already holding the prefix, encoded.
        let has = run(
            b"Subject: =?UTF-8?Q?Re:_[d=C3=A9v]_x?=\r\n",
            &opts("[dév]", ReplyTo::None, false),
        );
        assert!(
            has.contains("Subject: =?UTF-8?Q?Re:_[d=C3=A9v]_x?=\r\n"),
            "{has}"
        );
        let long = encode_words(&"é".repeat(100));
        assert!(long.split("\r\n ").all(|w| w.len() <= 75), "{long}");
    }

    #[test]
    fn reply_to_policies() {
        let head = b"From: Ann <ann@a.test>\r\nReply-To: other@a.test\r\nSubject: s\r\n";
        let list = run(head, &opts("", ReplyTo::List, false));
        assert!(list.ends_with("Reply-To: <dev@x.test>\r\n"), "{list}");
        assert_eq!(list.matches("Reply-To").count(), 1);
        let poster = run(head, &opts("", ReplyTo::Poster, false));
        assert!(
            poster.ends_with("Reply-To: Ann <ann@a.test>\r\n"),
            "{poster}"
        );
        assert_eq!(poster.matches("Reply-To").count(), 1);
        let none = run(head, &opts("", ReplyTo::None, false));
        assert!(none.contains("Reply-To: other@a.test\r\n"), "{none}");
        assert!(none.contains("From: Ann <ann@a.test>\r\n"), "{none}");
    }

    #[test]
    fn from_munged() {
        let head = b"From: Ann Lee <ann@strict.test>\r\nSubject: s\r\n";
        let out = run(head, &opts("", ReplyTo::None, true));
        assert!(
            out.contains("From: \"Ann Lee via dev\" <dev@x.test>\r\n"),
            "{out}"
        );
        assert!(
            out.contains("X-Original-From: Ann Lee <ann@strict.test>\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Reply-To: Ann Lee <ann@strict.test>\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("\r\nFrom:").count(), 1, "{out}");
        let own = run(
            b"From: ann@strict.test\r\nReply-To: r@strict.test\r\n",
            &opts("", ReplyTo::None, true),
        );
        assert!(own.contains("Reply-To: r@strict.test\r\n"), "{own}");
        assert!(
            own.contains("From: \"ann@strict.test via dev\" <dev@x.test>\r\n"),
            "{own}"
        );
        let list = run(
            "From: \"Zoë \\\"Z\\\"\" <z@strict.test>\r\nCc: c@d.test\r\n".as_bytes(),
            &opts("", ReplyTo::List, true),
        );
        assert!(list.contains("Reply-To: <dev@x.test>\r\n"), "{list}");
        assert!(list.contains("Cc: c@d.test,\r\n \"Zoë"), "{list}");
        let msg = format!("{list}\r\nbody\r\n");
        let parsed = MessageParser::default()
            .parse(msg.as_bytes())
            .expect("parse");
        let from = parsed.from().and_then(|f| f.first()).expect("from");
        assert_eq!(from.name(), Some("Zoë \"Z\" via dev"));
        assert_eq!(from.address(), Some("dev@x.test"));
        let cc: Vec<_> = parsed
            .cc()
            .expect("cc")
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(cc, ["c@d.test", "z@strict.test"]);
        assert_eq!(
            from_domains(b"From: a@Strict.Test, b@o.test\r\n"),
            ["strict.test", "o.test"]
        );
        // No From: nothing to rewrite.
        let none = run(b"Subject: s\r\n", &opts("", ReplyTo::None, true));
        assert!(
            !none.contains("From") && !none.contains("Reply-To"),
            "{none}"
        );
    }

    #[test]
    fn content_fields_moved() {
        let head = b"From: a@b.test\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: \
                     base64\r\nMIME-Version: 1.0\r\n";
        let out = run(
            head,
            &Options {
                drop_content_fields: true,
                extra: b"Content-Type: multipart/mixed; boundary=\"b\"\r\n",
                ..opts("", ReplyTo::None, false)
            },
        );
        assert!(
            !out.contains("text/html") && !out.contains("base64"),
            "{out}"
        );
        assert!(
            out.ends_with("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n")
        );
    }
}
