//! Header lines: reading the fields of a message's header section (for the loop check) and
//! building the lines moat-local prepends (`Return-Path:`, `Delivered-To:`).
//!
//! SECURITY: the header section is attacker-written. Parsing never fails and never allocates
//! more than the (bounded) input: malformed lines are skipped, folded lines are unfolded. The
//! lines we write refuse any value containing CR, LF or NUL, so an address can never smuggle a
//! second header line in, even if a check upstream were missing.

/// One header field: its name and its unfolded value, both as found (not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: Vec<u8>,
}

impl Field<'_> {
    /// Whether the field is called `name` (ASCII case-insensitive, as RFC 5322 says).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The fields of a header section (without the empty line that ends it).
pub fn fields(header: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut continuing = false;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continuing = false;
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if continuing && let Some(last) = out.last_mut() {
                last.value.extend_from_slice(line);
            }
            continue;
        }
        continuing = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            continue;
        }
        out.push(Field {
            name,
            value: line[colon + 1..].to_vec(),
        });
        continuing = true;
    }
    out
}

/// `bytes` without leading and trailing spaces and tabs.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The line ending a message uses: CRLF (the queue's format) unless its header has bare LFs.
pub fn line_ending(header: &[u8]) -> &'static [u8] {
    if header.contains(&b'\n') && !header.windows(2).any(|w| w == b"\r\n") {
        b"\n"
    } else {
        b"\r\n"
    }
}

/// A value refused for a header line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to write a header line containing CR, LF or NUL")]
pub struct BadValue;

/// Lines to put in front of a message, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepend {
    eol: &'static [u8],
    bytes: Vec<u8>,
}

impl Prepend {
    pub fn new(eol: &'static [u8]) -> Prepend {
        Prepend {
            eol,
            bytes: Vec::new(),
        }
    }

    /// Adds `Name: value`.
    pub fn field(mut self, name: &str, value: &str) -> Result<Prepend, BadValue> {
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(BadValue);
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b": ");
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.extend_from_slice(self.eol);
        Ok(self)
    }

    /// `Return-Path: <sender>` ("" = the null sender `<>`).
    pub fn return_path(self, sender: &str) -> Result<Prepend, BadValue> {
        self.field("Return-Path", &format!("<{sender}>"))
    }

    /// `Delivered-To: address`, as qmail and Postfix write it.
    pub fn delivered_to(self, address: &str) -> Result<Prepend, BadValue> {
        self.field("Delivered-To", address)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unfold_and_skip_garbage() {
        let h = b"Received: from a\r\n\tby b\r\nnot a header\r\n continuation of garbage\r\n\
                  DELIVERED-TO:  x@y \r\n: no name\r\nSub ject: x\r\n  folded onto nothing\r\n";
        let f = fields(h);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].is("received"));
        assert_eq!(f[0].value, b" from a\tby b");
        assert!(f[1].is("Delivered-To"));
        assert_eq!(trim(&f[1].value), b"x@y");
        assert!(fields(b"").is_empty());
        assert!(fields(b"\xff\xfe:\x00\r\n\t\r\n").is_empty());
    }

    #[test]
    fn prepended_lines() {
        let p = Prepend::new(b"\r\n")
            .return_path("")
            .and_then(|p| p.delivered_to("a@example.test"))
            .expect("lines");
        assert_eq!(
            p.bytes(),
            b"Return-Path: <>\r\nDelivered-To: a@example.test\r\n"
        );
        let p = Prepend::new(b"\n").return_path("s@x").expect("line");
        assert_eq!(p.into_bytes(), b"Return-Path: <s@x>\n");
        assert_eq!(
            Prepend::new(b"\r\n").delivered_to("a@x\r\nBcc: evil@x"),
            Err(BadValue)
        );
    }

    #[test]
    fn line_endings() {
        assert_eq!(line_ending(b"A: 1\r\nB: 2\r\n"), b"\r\n");
        assert_eq!(line_ending(b"A: 1\nB: 2\n"), b"\n");
        assert_eq!(line_ending(b""), b"\r\n");
    }

    #[test]
    fn trimming() {
        assert_eq!(trim(b" \t a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }
}
