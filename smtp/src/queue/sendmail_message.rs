//! What `sendmail` does to the message on its way in: lines from standard input with LF turned
//! into CRLF (a lone `.` ends the message unless `-i`), the header parsed to take recipients for
//! `-t`, `Bcc:` removed, and `Received:`, `From:`, `Date:`, `Message-ID:` added (the last three
//! only when missing).
//!
//! SECURITY: the input is whatever the local user typed; it only ever becomes message bytes and
//! envelope addresses, which the queue checks again. Memory is bounded: lines are read in pieces
//! of at most `MAX_PIECE` bytes and the header kept in memory is at most `MAX_HEADER` bytes (the
//! rest is treated as body). Names and addresses we add are cleaned of control characters.

use std::io::BufRead;

use base64::Engine;

use super::envelope::clean;
use super::sendmail_args::{Options, strip_angles};
use moat_common::date::rfc5322;

/// The longest piece of a line read at once (longer lines pass through in pieces).
pub const MAX_PIECE: usize = 64 * 1024;
/// The most header bytes examined; beyond, the rest of the message is body.
pub const MAX_HEADER: usize = 1024 * 1024;

/// One piece of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its line ending (LF or CRLF): write it then CRLF.
    Whole(Vec<u8>),
    /// Part of a line longer than `MAX_PIECE`: write it as is.
    Part(Vec<u8>),
}

/// Reads `Line`s until end of input or a lone `.` (unless dots are ignored).
pub struct Lines<R> {
    input: R,
    ignore_dots: bool,
    mid_line: bool,
    carry_cr: bool,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R, ignore_dots: bool) -> Lines<R> {
        Lines {
            input,
            ignore_dots,
            mid_line: false,
            carry_cr: false,
            done: false,
        }
    }

    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::new();
        if std::mem::take(&mut self.carry_cr) {
            buf.push(b'\r');
        }
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                self.done = true;
                if buf.is_empty() && !self.mid_line {
                    return Ok(None);
                }
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', available) {
                let take = i.min(MAX_PIECE.saturating_sub(buf.len()));
                buf.extend_from_slice(&available[..take]);
                if take == i {
                    self.input.consume(i + 1);
                    break;
                }
                self.input.consume(take);
            } else {
                let take = available.len().min(MAX_PIECE.saturating_sub(buf.len()));
                buf.extend_from_slice(&available[..take]);
                self.input.consume(take);
            }
            if buf.len() >= MAX_PIECE {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                    self.carry_cr = true;
                }
                self.mid_line = true;
                return Ok(Some(Line::Part(buf)));
            }
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let was_mid_line = std::mem::take(&mut self.mid_line);
        if !was_mid_line && !self.ignore_dots && buf == b"." {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(Line::Whole(buf)))
    }
}

/// Who is sending, for the headers sendmail adds.
#[derive(Debug, Clone)]
pub struct Identity {
    pub login: String,
    pub full_name: Option<String>,
    pub uid: u32,
    pub hostname: String,
}

/// The header as it will be queued (ending with the empty line, and any body bytes read past
/// it), and the recipients found for `-t`.
#[derive(Debug)]
pub struct Prepared {
    pub head: Vec<u8>,
    pub extracted: Vec<String>,
}

struct Field {
    name: String,
    raw: Vec<u8>,
}

fn field_name(line: &[u8]) -> Option<String> {
    let colon = memchr::memchr(b':', line)?;
    let name = &line[..colon];
    let ok = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
    ok.then(|| String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// `addr` with `@hostname` added when it has no domain.
pub fn qualify(addr: &str, hostname: &str) -> String {
    if addr.is_empty() || addr.contains('@') {
        addr.to_string()
    } else {
        format!("{addr}@{hostname}")
    }
}

/// The addresses of an RFC 5322 address list (`a@b, "X, Y" <c@d>, team: e@f;`), comments and
/// display names dropped. Lenient: this is a convenience for `-t`, the queue checks the result.
pub fn address_list(value: &str) -> Vec<String> {
    let (mut items, mut current) = (Vec::new(), String::new());
    let (mut quoted, mut angle, mut comment, mut escaped) = (false, false, 0usize, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if comment == 0 {
                current.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => {
                escaped = true;
                if comment == 0 {
                    current.push(c);
                }
            }
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '<' if !quoted => {
                angle = true;
                current.push(c);
            }
            '>' if !quoted => {
                angle = false;
                current.push(c);
            }
            ':' if !quoted && !angle => current.clear(),
            ',' | ';' if !quoted && !angle => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .iter()
        .filter_map(|item| {
            let item = item.trim();
            let addr = match (item.rfind('<'), item.rfind('>')) {
                (Some(open), Some(close)) if open < close => &item[open + 1..close],
                _ => item,
            };
            // A source route (`<@a,@b:c@d>`) keeps only the mailbox.
            let addr = addr.rsplit(':').next().unwrap_or(addr).trim();
            (!addr.is_empty()).then(|| addr.to_string())
        })
        .collect()
}

/// A display name as a phrase: plain if it is simple, quoted if it has specials, RFC 2047
/// encoded if it is not ASCII.
fn phrase(name: &str) -> String {
    let name = clean(name, 200);
    if !name.is_ascii() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        return format!("=?UTF-8?B?{b64}?=");
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        name
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Reads the header from `lines` and builds the one to queue. `sender` is the envelope sender.
pub fn prepare<R: BufRead>(
    lines: &mut Lines<R>,
    opts: &Options,
    who: &Identity,
    sender: &str,
    now: u64,
    token: u64,
) -> std::io::Result<Prepared> {
    let mut fields: Vec<Field> = Vec::new();
    let mut total = 0usize;
    let mut first = true;
    let mut rest: Vec<u8> = Vec::new();
    let mut blank = false;
    while let Some(line) = lines.next_line()? {
        let line = match line {
            Line::Whole(l) => l,
            Line::Part(p) => {
                rest = p;
                break;
            }
        };
        if std::mem::take(&mut first) && line.starts_with(b"From ") {
            continue; // an mbox separator, not a header field
        }
        if line.is_empty() {
            blank = true;
            break;
        }
        total += line.len() + 2;
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if total <= MAX_HEADER {
            if let (true, Some(last)) = (continuation, fields.last_mut()) {
                last.raw.extend_from_slice(&line);
                last.raw.extend_from_slice(b"\r\n");
                continue;
            }
            if let Some(name) = field_name(&line) {
                let mut raw = line;
                raw.extend_from_slice(b"\r\n");
                fields.push(Field { name, raw });
                continue;
            }
        }
        rest = line;
        rest.extend_from_slice(b"\r\n");
        break;
    }
    let mut extracted = Vec::new();
    if opts.extract {
        for f in fields
            .iter()
            .filter(|f| matches!(f.name.as_str(), "to" | "cc" | "bcc"))
        {
            let raw = String::from_utf8_lossy(&f.raw);
            let value = raw.split_once(':').map_or("", |(_, v)| v);
            let unfolded = value.replace("\r\n", "");
            extracted.extend(
                address_list(&unfolded)
                    .iter()
                    .map(|a| qualify(a, &who.hostname)),
            );
        }
    }
    // Bcc is never shown to the recipients (with or without -t).
    fields.retain(|f| f.name != "bcc");
    let has = |name: &str| fields.iter().any(|f| f.name == name);
    let date = rfc5322(now);
    let host = clean(&who.hostname, 253);
    let mut head = format!(
        "Received: by {host} (moat sendmail, from userid {});\r\n\t{date}\r\n",
        who.uid
    )
    .into_bytes();
    for f in &fields {
        head.extend_from_slice(&f.raw);
    }
    if !has("from") {
        let addr = if sender.is_empty() {
            qualify(&clean(&who.login, 64), &host)
        } else {
            clean(sender, 320)
        };
        let from = match opts.full_name.as_ref().or(who.full_name.as_ref()) {
            Some(name) if !name.trim().is_empty() => format!("{} <{addr}>", phrase(name.trim())),
            _ => addr,
        };
        head.extend_from_slice(format!("From: {from}\r\n").as_bytes());
    }
    if !has("date") {
        head.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has("message-id") {
        head.extend_from_slice(format!("Message-ID: <{now}.{token:016x}@{host}>\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    if !blank {
        head.extend_from_slice(&rest);
    }
    Ok(Prepared { head, extracted })
}

/// The envelope sender: `-f` (qualified), or the login at the host name.
pub fn envelope_sender(opts: &Options, who: &Identity) -> String {
    match &opts.sender {
        Some(s) => qualify(&strip_angles(s), &who.hostname),
        None => qualify(&who.login, &who.hostname),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Identity {
        Identity {
            login: "joe".into(),
            full_name: Some("Joe Q. Public".into()),
            uid: 1000,
            hostname: "host.example.test".into(),
        }
    }

    fn all(input: &[u8], ignore_dots: bool) -> Vec<u8> {
        let mut lines = Lines::new(input, ignore_dots);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().expect("read") {
            match line {
                Line::Whole(l) => {
                    out.extend(l);
                    out.extend(b"\r\n");
                }
                Line::Part(p) => out.extend(p),
            }
        }
        out
    }

    #[test]
    fn line_endings_and_dots() {
        assert_eq!(all(b"a\nb\r\nc", false), b"a\r\nb\r\nc\r\n");
        assert_eq!(all(b"a\n.\nb\n", false), b"a\r\n");
        assert_eq!(all(b"a\n.\nb\n", true), b"a\r\n.\r\nb\r\n");
        assert_eq!(all(b"a\n..\n", false), b"a\r\n..\r\n");
        assert_eq!(all(b"", false), b"");
        let long = vec![b'x'; MAX_PIECE * 2 + 5];
        let mut input = long.clone();
        input.extend(b"\r\nend\n");
        let mut expect = long;
        expect.extend(b"\r\nend\r\n");
        assert_eq!(all(&input, false), expect);
        let mut cr_at_cut = vec![b'y'; MAX_PIECE - 1];
        cr_at_cut.extend(b"\r\n");
        let mut expect = vec![b'y'; MAX_PIECE - 1];
        expect.extend(b"\r\n");
        assert_eq!(all(&cr_at_cut, false), expect);
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            address_list(r#"a@x, "Doe, John" <b@x> (comment, here), team: c@x, d@x;, <@r:e@x>"#),
            vec!["a@x", "b@x", "c@x", "d@x", "e@x"]
        );
        assert_eq!(
            address_list("undisclosed-recipients:;"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn headers_are_completed_and_bcc_removed() {
        let input = b"To: a@x.test,\n b@x.test\nBcc: secret@x.test\nSubject: hi\n\nbody\n";
        let opts = Options {
            extract: true,
            ..Options::default()
        };
        let mut lines = Lines::new(&input[..], false);
        let p = prepare(
            &mut lines,
            &opts,
            &who(),
            "joe@host.example.test",
            1_700_000_000,
            1,
        )
        .expect("prepare");
        assert_eq!(p.extracted, vec!["a@x.test", "b@x.test", "secret@x.test"]);
        let head = String::from_utf8(p.head).expect("utf8");
        assert!(head.starts_with(
            "Received: by host.example.test (moat sendmail, from userid 1000);\r\n\t"
        ));
        assert!(head.contains("To: a@x.test,\r\n b@x.test\r\nSubject: hi\r\n"));
        assert!(!head.contains("secret"));
        assert!(head.contains("From: \"Joe Q. Public\" <joe@host.example.test>\r\n"));
        assert!(head.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
        assert!(
            head.ends_with("Message-ID: <1700000000.0000000000000001@host.example.test>\r\n\r\n")
        );
        assert_eq!(
            lines.next_line().expect("body"),
            Some(Line::Whole(b"body".to_vec()))
        );
    }

    #[test]
    fn a_message_without_header_gets_one() {
        let mut lines = Lines::new(
            &b"From joe Mon\nhello: world is not\nthis line\n"[..],
            false,
        );
        let p = prepare(&mut lines, &Options::default(), &who(), "", 0, 0).expect("prepare");
        let head = String::from_utf8(p.head).expect("utf8");
        assert!(head.contains("hello: world is not\r\n"));
        assert!(head.ends_with("\r\n\r\nthis line\r\n"));
        assert!(head.contains("From: \"Joe Q. Public\" <joe@host.example.test>"));
        assert_eq!(phrase("Jörg"), "=?UTF-8?B?SsO2cmc=?=");
        assert_eq!(phrase("Plain Name"), "Plain Name");
    }
}
