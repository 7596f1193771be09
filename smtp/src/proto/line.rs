//! Bounded command-line framing: finds CRLF-terminated lines in a byte buffer.
//!
//! The reader never owns bytes; it looks at the caller's buffer and says how many bytes it
//! consumed and what it found: a line, "line too long", "bare CR or LF", or "need more bytes".
//!
//! SECURITY:
//! - Only CRLF ends a line (RFC 5321 2.3.8). A bare LF or bare CR makes the whole line, up to the
//!   next CRLF, one invalid line: treating LF as a line end would let a proxy in front of us
//!   and this server disagree about where commands start (the command-side cousin of SMTP
//!   smuggling).
//! - Memory is bounded by the limit: once a line is known to be longer than the limit, the
//!   reader switches to discarding and consumes everything up to the next CRLF without keeping
//!   it; the caller can drop consumed bytes at once. The answer "too long" comes when that CRLF
//!   arrives, so replies stay one per line.

use memchr::memmem;

/// What the reader found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line, without its CRLF.
    Line(&'a [u8]),
    /// A line longer than the limit ended (its bytes were consumed and dropped).
    TooLong,
    /// A line containing a bare CR or bare LF ended.
    BareNewline,
    /// No complete line yet; feed more bytes.
    NeedMore,
}

/// A command-line reader. `limit` counts the CRLF (RFC 5321: 512 octets for a command line).
#[derive(Debug, Clone)]
pub struct LineReader {
    limit: usize,
    discarding: bool,
}

impl LineReader {
    /// A reader for lines of at most `limit` octets including CRLF (at least 3).
    pub fn new(limit: usize) -> LineReader {
        LineReader {
            limit: limit.max(3),
            discarding: false,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit for the following lines (AUTH continuation lines have their own).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(3);
    }

    /// True while the rest of an over-long line is being thrown away.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Forgets any partial state (after STARTTLS).
    pub fn reset(&mut self) {
        self.discarding = false;
    }

    /// Looks at `buf` (the unconsumed input) and returns how many bytes to consume and what was
    /// found. `NeedMore` may consume bytes too (the discarded part of an over-long line).
    pub fn read<'a>(&mut self, buf: &'a [u8]) -> (usize, LineEvent<'a>) {
        if !self.discarding {
            let window = &buf[..buf.len().min(self.limit)];
            if let Some(i) = memmem::find(window, b"\r\n") {
                let line = &buf[..i];
                if line.iter().any(|&b| b == b'\r' || b == b'\n') {
                    return (i + 2, LineEvent::BareNewline);
                }
                return (i + 2, LineEvent::Line(line));
            }
            if buf.len() < self.limit {
                return (0, LineEvent::NeedMore);
            }
            // No CRLF within the limit: whatever comes, this line is too long.
            self.discarding = true;
        }
        match memmem::find(buf, b"\r\n") {
            Some(i) => {
                self.discarding = false;
                (i + 2, LineEvent::TooLong)
            }
            None => {
                // Keep a trailing CR: it may be the first half of the CRLF we wait for.
                let keep = usize::from(buf.last() == Some(&b'\r'));
                (buf.len() - keep, LineEvent::NeedMore)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_one_by_one() {
        let mut r = LineReader::new(512);
        let buf = b"EHLO a\r\nNOOP\r\nQU";
        assert_eq!(r.read(buf), (8, LineEvent::Line(b"EHLO a")));
        assert_eq!(r.read(&buf[8..]), (6, LineEvent::Line(b"NOOP")));
        assert_eq!(r.read(&buf[14..]), (0, LineEvent::NeedMore));
        assert_eq!(r.read(b""), (0, LineEvent::NeedMore));
        assert_eq!(r.read(b"\r\n"), (2, LineEvent::Line(b"")));
    }

    #[test]
    fn bare_lf_and_cr_poison_the_line_until_crlf() {
        let mut r = LineReader::new(512);
        assert_eq!(
            r.read(b"EHLO a\nMAIL FROM:<>\r\nX"),
            (21, LineEvent::BareNewline)
        );
        assert_eq!(r.read(b"A\rB\r\n"), (5, LineEvent::BareNewline));
        // A lone LF does not end a line.
        assert_eq!(r.read(b"QUIT\n"), (0, LineEvent::NeedMore));
    }

    #[test]
    fn exact_limit_is_allowed() {
        let mut r = LineReader::new(10);
        assert_eq!(r.read(b"12345678\r\n"), (10, LineEvent::Line(b"12345678")));
        assert_eq!(r.read(b"123456789\r\n"), (11, LineEvent::TooLong));
        assert!(!r.is_discarding());
    }

    #[test]
    fn over_long_line_is_discarded_not_buffered() {
        let mut r = LineReader::new(10);
        // Ten bytes and no CRLF: the line is known too long; everything is consumed.
        assert_eq!(r.read(b"0123456789"), (10, LineEvent::NeedMore));
        assert!(r.is_discarding());
        assert_eq!(r.read(b"abc\r"), (3, LineEvent::NeedMore));
        assert_eq!(r.read(b"\r"), (0, LineEvent::NeedMore));
        assert_eq!(r.read(b"\r\nNOOP\r\n"), (2, LineEvent::TooLong));
        assert_eq!(r.read(b"NOOP\r\n"), (6, LineEvent::Line(b"NOOP")));
    }

    #[test]
    fn crlf_straddling_the_limit_is_too_long() {
        let mut r = LineReader::new(10);
        assert_eq!(r.read(b"123456789\r\nX"), (11, LineEvent::TooLong));
    }
}
