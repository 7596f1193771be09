//! The little HTTP/1.1 the one-click endpoint speaks (RFC 9112): one request per connection,
//! read with hard bounds, parsed from bytes; answers always `Connection: close`.
//!
//! Hand-written on purpose: the endpoint needs the request line, `Content-Length` and
//! `Content-Type`, and a small body. A general HTTP stack (hyper) would add far more code and
//! dependencies than this file, for features (keep-alive, chunked bodies, HTTP/2, upgrades)
//! that are all refused here anyway.
//!
//! SECURITY: everything here is hostile input. The request line and header together are at
//! most `MAX_HEAD` bytes and `MAX_HEADERS` fields, the body at most `MAX_BODY` bytes and only
//! with a `Content-Length` (no chunked bodies: `Transfer-Encoding` is refused, as are two
//! differing lengths, which is how request smuggling starts); lines end in CRLF; field names
//! are tokens; no value may hold a control character but tab. Parsing never allocates beyond
//! the bounded input.

/// The most bytes of request line and header section, with the empty line.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most body bytes.
pub const MAX_BODY: usize = 4 * 1024;
/// The most header fields.
pub const MAX_HEADERS: usize = 64;

/// A request's head, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target's path (origin form), without the query.
    pub path: String,
    pub content_length: Option<usize>,
    /// The media type, lower-cased, with its parameters as sent (`multipart/form-data;
    /// boundary=...`).
    pub content_type: Option<String>,
}

/// Why a request is refused, with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    LengthRequired,
    TooLarge,
    HeaderTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Refusal {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::BadRequest => (400, "Bad Request"),
            Refusal::LengthRequired => (411, "Length Required"),
            Refusal::TooLarge => (413, "Content Too Large"),
            Refusal::HeaderTooLarge => (431, "Request Header Fields Too Large"),
            Refusal::NotImplemented => (501, "Not Implemented"),
            Refusal::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }
}

/// Where the head ends in `buf` (just after the empty line), if it does.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Parses the head (the bytes up to and including the empty line).
pub fn parse_head(head: &[u8]) -> Result<Head, Refusal> {
    if head.len() > MAX_HEAD {
        return Err(Refusal::HeaderTooLarge);
    }
    // Without the empty line's CRLF and the last LF: every line then ends in CR.
    let text = head.strip_suffix(b"\n\r\n").ok_or(Refusal::BadRequest)?;
    let mut lines = text.split(|&b| b == b'\n').map(|l| {
        l.strip_suffix(b"\r")
            .filter(|l| !l.contains(&b'\r'))
            .ok_or(Refusal::BadRequest)
    });
    let request_line = lines.next().ok_or(Refusal::BadRequest)??;
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest);
    };
    if !is_token(method) {
        return Err(Refusal::BadRequest);
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => {}
        v if v.starts_with(b"HTTP/") => return Err(Refusal::VersionNotSupported),
        _ => return Err(Refusal::BadRequest),
    }
    if !target.starts_with(b"/") || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest);
    }
    let path = target
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or_default();
    let mut out = Head {
        method: String::from_utf8_lossy(method).into_owned(),
        path: String::from_utf8_lossy(path).into_owned(),
        content_length: None,
        content_type: None,
    };
    let mut count = 0;
    for line in lines {
        let line = line?;
        count += 1;
        if count > MAX_HEADERS {
            return Err(Refusal::HeaderTooLarge);
        }
        // Obsolete line folding (RFC 9112 §5.2) is refused, not unfolded.
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Refusal::BadRequest)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if !is_token(name) || value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
            return Err(Refusal::BadRequest);
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Refusal::NotImplemented);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let ok = !value.is_empty() && value.len() <= 10 && value.iter().all(u8::is_ascii_digit);
            let n: usize = std::str::from_utf8(value)
                .ok()
                .filter(|_| ok)
                .and_then(|v| v.parse().ok())
                .ok_or(Refusal::BadRequest)?;
            if out.content_length.is_some_and(|m| m != n) {
                return Err(Refusal::BadRequest);
            }
            out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            if out.content_type.is_some() {
                return Err(Refusal::BadRequest);
            }
            out.content_type = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    if out.content_length.is_some_and(|n| n > MAX_BODY) {
        return Err(Refusal::TooLarge);
    }
    Ok(out)
}

/// Whether a POST body carries RFC 8058's `List-Unsubscribe=One-Click`, in either encoding
/// the RFC allows: `application/x-www-form-urlencoded` (also assumed when no type is given)
/// or `multipart/form-data`.
pub fn is_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("application/x-www-form-urlencoded") => body
            .trim_ascii()
            .split(|&b| b == b'&')
            .any(|pair| pair == b"List-Unsubscribe=One-Click"),
        Some("multipart/form-data") => content_type
            .and_then(boundary)
            .is_some_and(|b| multipart_one_click(body, &b)),
        Some(_) => false,
    }
}

/// The `boundary` parameter of a multipart content type (quotes removed), 1 to 70 characters.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (1..=70).contains(&value.len()).then(|| value.to_string())
    })
}

/// Whether a multipart/form-data body has a part named `List-Unsubscribe` whose value is
/// `One-Click` (RFC 7578).
fn multipart_one_click(body: &[u8], boundary: &str) -> bool {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            return false;
        }
        let Some(part_end) = find(rest, delimiter) else {
            return false;
        };
        let part = rest[..part_end]
            .strip_prefix(b"\r\n")
            .unwrap_or(&rest[..part_end]);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let (headers, value) = (&part[..split], &part[split + 4..]);
        let value = value.strip_suffix(b"\r\n").unwrap_or(value);
        let named = headers.split(|&b| b == b'\n').any(|line| {
            let line = String::from_utf8_lossy(line).to_ascii_lowercase();
            line.starts_with("content-disposition:")
                && line.contains("form-data")
                && line
                    .split(';')
                    .any(|p| p.trim() == "name=\"list-unsubscribe\"")
        });
        if named && value == b"One-Click" {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A whole response: status line, the fields, `Content-Length`, `Connection: close`, and the
/// body unless `head_only` (a HEAD request).
pub fn response(
    status: (u16, &str),
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n",
        status.0,
        status.1,
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(
            b"POST /u/dev@x.test/a=b/00?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 26\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\r\n",
        )
        .expect("parses");
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/u/dev@x.test/a=b/00");
        assert_eq!(h.content_length, Some(26));
        assert_eq!(
            h.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn hostile_heads_are_refused() {
        for (bad, why) in [
            (
                &b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                Refusal::NotImplemented,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n",
                Refusal::TooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Refusal::BadRequest,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                Refusal::BadRequest,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                Refusal::BadRequest,
            ),
            (b"GET / HTTP/2.0\r\n\r\n", Refusal::VersionNotSupported),
            (b"GET /  HTTP/1.1\r\n\r\n", Refusal::BadRequest),
            (b"GET x HTTP/1.1\r\n\r\n", Refusal::BadRequest),
            (b"GET / HTTP/1.1\r\nX\r\n\r\n", Refusal::BadRequest),
            (
                b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                Refusal::BadRequest,
            ),
            (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", Refusal::BadRequest),
            (b"GET / HTTP/1.1\nX: a\r\n\r\n", Refusal::BadRequest),
            (
                b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
                Refusal::BadRequest,
            ),
            (b"G(T / HTTP/1.1\r\n\r\n", Refusal::BadRequest),
        ] {
            assert_eq!(
                parse_head(bad),
                Err(why),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), Err(Refusal::HeaderTooLarge));
        let long = [
            b"GET / HTTP/1.1\r\nX: ".to_vec(),
            vec![b'a'; MAX_HEAD],
            b"\r\n\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(parse_head(&long), Err(Refusal::HeaderTooLarge));
    }

    #[test]
    fn one_click_bodies() {
        let form = Some("application/x-www-form-urlencoded");
        assert!(is_one_click(form, b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(None, b"a=b&List-Unsubscribe=One-Click\r\n"));
        assert!(!is_one_click(form, b"List-Unsubscribe=one-click"));
        assert!(!is_one_click(form, b""));
        assert!(!is_one_click(
            Some("text/plain"),
            b"List-Unsubscribe=One-Click"
        ));
        let multi = Some("multipart/form-data; boundary=\"xyz\"");
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
                     One-Click\r\n--xyz--\r\n";
        assert!(is_one_click(multi, body));
        let other = b"--xyz\r\nContent-Disposition: form-data; name=\"Other\"\r\n\r\n\
                      One-Click\r\n--xyz--\r\n";
        assert!(!is_one_click(multi, other));
        assert!(!is_one_click(Some("multipart/form-data"), body));
    }

    #[test]
    fn responses_close() {
        let r = String::from_utf8(response((200, "OK"), "text/plain", &[], "done\n", false))
            .expect("utf8");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("Content-Length: 5\r\nConnection: close\r\n"),
            "{r}"
        );
        assert!(r.ends_with("\r\n\r\ndone\n"), "{r}");
        let h = response((200, "OK"), "text/plain", &[], "done\n", true);
        assert!(h.ends_with(b"\r\n\r\n"));
    }
}
