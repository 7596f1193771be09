//! Checks message content on its way to the queue and writes it to the driver's sink.
//! DATA (after dot-unstuffing) and BDAT chunks both pass through one [`ContentChecker`].
//!
//! Checks, for text bodies (7BIT, 8BITMIME): every line ends in CRLF — a bare LF or bare CR
//! anywhere is refused (SMTP smuggling: a message we accepted with `\n.\n` inside would end
//! early at a laxer next hop); no NUL (RFC 5321 2.3.8 / 4.5.2); text lines of at most 1000
//! octets with CRLF (RFC 5321 4.5.3.1.6). For every body: the size limit (RFC 1870).
//!
//! SECURITY: after the first problem nothing more is written to the sink, but the checker
//! keeps counting, so the caller can still find the real end of the data and the session stays
//! in step with the client. It never buffers: bytes go straight to the sink or nowhere.

use std::io::Write;

use super::reply::Reply;

/// Text (CRLF lines, no NUL) or binary (BODY=BINARYMIME over BDAT: only the size is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentMode {
    Text,
    Binary,
}

/// Why a message body was refused; see [`ContentError::reply`] for the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentError {
    /// A bare LF or bare CR: 550 5.6.0.
    BareNewline,
    /// Over the size limit: 552 5.3.4.
    TooBig,
    /// A NUL octet in a text body: 554 5.6.0.
    Nul,
    /// A text line over the limit: 500 5.5.2.
    LineTooLong,
    /// The sink failed (disk, queue socket): 451 4.3.0.
    Sink,
}

impl ContentError {
    pub fn reply(self) -> Reply {
        match self {
            ContentError::BareNewline => Reply::new(
                550,
                Some((5, 6, 0)),
                "Bare LF or bare CR in message data not allowed; lines must end with CRLF",
            ),
            ContentError::TooBig => Reply::too_big(),
            ContentError::Nul => Reply::new(
                554,
                Some((5, 6, 0)),
                "NUL octets not allowed in message data",
            ),
            ContentError::LineTooLong => Reply::new(
                500,
                Some((5, 5, 2)),
                "Message has a line longer than 1000 octets",
            ),
            ContentError::Sink => {
                Reply::temp_failure("Local error writing the message; try again later")
            }
        }
    }
}

/// Streaming content checker. Feed it bytes in any split; `finish` gives the verdict.
#[derive(Debug, Clone)]
pub struct ContentChecker {
    mode: ContentMode,
    max_size: u64,
    max_line: usize,
    size: u64,
    line_len: usize,
    prev_cr: bool,
    last: Option<u8>,
    bare: bool,
    too_big: bool,
    nul: bool,
    long_line: bool,
    sink_failed: bool,
}

impl ContentChecker {
    /// `max_size` in octets of content; `max_text_line` includes the CRLF (RFC: 1000).
    pub fn new(mode: ContentMode, max_size: u64, max_text_line: usize) -> ContentChecker {
        ContentChecker {
            mode,
            max_size,
            max_line: max_text_line.saturating_sub(2),
            size: 0,
            line_len: 0,
            prev_cr: false,
            last: None,
            bare: false,
            too_big: false,
            nul: false,
            long_line: false,
            sink_failed: false,
        }
    }

    /// Octets seen so far (also those not written after an error).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The error to answer with, if any yet. Priority: bare CR/LF (the smuggling defence must
    /// be visible), then size, NUL, line length, and a sink failure last (it is temporary, the
    /// others are permanent).
    pub fn error(&self) -> Option<ContentError> {
        if self.bare {
            Some(ContentError::BareNewline)
        } else if self.too_big {
            Some(ContentError::TooBig)
        } else if self.nul {
            Some(ContentError::Nul)
        } else if self.long_line {
            Some(ContentError::LineTooLong)
        } else if self.sink_failed {
            Some(ContentError::Sink)
        } else {
            None
        }
    }

    /// Checks `bytes` and writes them to `sink` unless an error has been seen.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut dyn Write) {
        if bytes.is_empty() {
            return;
        }
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.max_size {
            self.too_big = true;
        }
        if self.mode == ContentMode::Text {
            self.scan(bytes);
        }
        self.last = bytes.last().copied();
        if self.error().is_none() && sink.write_all(bytes).is_err() {
            self.sink_failed = true;
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        self.bare = true;
                    }
                    self.prev_cr = false;
                    self.line_len = 0;
                }
                b'\r' => {
                    if self.prev_cr {
                        self.bare = true;
                    }
                    self.prev_cr = true;
                }
                _ => {
                    if self.prev_cr {
                        self.bare = true;
                        self.prev_cr = false;
                    }
                    if b == 0 {
                        self.nul = true;
                    }
                    self.line_len += 1;
                    if self.line_len > self.max_line {
                        self.long_line = true;
                    }
                }
            }
        }
    }

    /// Ends the body. With `complete_last_line` (BDAT text bodies), a last line without CRLF
    /// gets one, so every stored message ends in CRLF as one received with DATA does.
    /// Returns the content size, or the error to answer with.
    pub fn finish(
        &mut self,
        complete_last_line: bool,
        sink: &mut dyn Write,
    ) -> Result<u64, ContentError> {
        if self.mode == ContentMode::Text && self.prev_cr {
            self.bare = true;
        }
        let unterminated = self.last.is_some_and(|b| b != b'\n');
        if let Some(e) = self.error() {
            return Err(e);
        }
        if complete_last_line && self.mode == ContentMode::Text && unterminated {
            sink.write_all(b"\r\n").map_err(|_| ContentError::Sink)?;
        }
        Ok(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[&[u8]]) -> (Result<u64, ContentError>, Vec<u8>) {
        let mut c = ContentChecker::new(ContentMode::Text, 100, 10);
        let mut out = Vec::new();
        for part in input {
            c.feed(part, &mut out);
        }
        (c.finish(true, &mut out), out)
    }

    #[test]
    fn clean_text_passes_through() {
        let (r, out) = check(&[b"ab\r", b"\ncd\r\n"]);
        assert_eq!(r, Ok(8));
        assert_eq!(out, b"ab\r\ncd\r\n");
    }

    #[test]
    fn bare_lf_and_cr() {
        assert_eq!(check(&[b"a\nb\r\n"]).0, Err(ContentError::BareNewline));
        assert_eq!(check(&[b"a\rb\r\n"]).0, Err(ContentError::BareNewline));
        assert_eq!(check(&[b"a\r\r\n"]).0, Err(ContentError::BareNewline));
        assert_eq!(check(&[b"a\r"]).0, Err(ContentError::BareNewline));
        assert_eq!(check(&[b"\n"]).0, Err(ContentError::BareNewline));
        // Nothing after the error reaches the sink.
        let (_, out) = check(&[b"ok\r\n", b"x\ny\r\n", b"more\r\n"]);
        assert_eq!(out, b"ok\r\n");
    }

    #[test]
    fn nul_size_and_line_length() {
        assert_eq!(check(&[b"a\0b\r\n"]).0, Err(ContentError::Nul));
        assert_eq!(check(&[b"12345678\r\n"]).0, Ok(10));
        assert_eq!(check(&[b"123456789\r\n"]).0, Err(ContentError::LineTooLong));
        let big = vec![b'a'; 8];
        let mut parts: Vec<&[u8]> = Vec::new();
        for _ in 0..11 {
            parts.push(&big);
            parts.push(b"\r\n");
        }
        assert_eq!(check(&parts).0, Err(ContentError::TooBig));
    }

    #[test]
    fn bare_newline_wins_over_other_errors() {
        assert_eq!(
            check(&[b"a\0\r\n", b"x\n", b"123456789012\r\n"]).0,
            Err(ContentError::BareNewline)
        );
    }

    #[test]
    fn last_line_completed_for_bdat() {
        assert_eq!(check(&[b"abc"]), (Ok(3), b"abc\r\n".to_vec()));
        assert_eq!(check(&[]), (Ok(0), Vec::new()));
    }

    #[test]
    fn binary_only_counts() {
        let mut c = ContentChecker::new(ContentMode::Binary, 4, 1000);
        let mut out = Vec::new();
        c.feed(b"\0\n\r", &mut out);
        assert_eq!(c.finish(true, &mut out), Ok(3));
        assert_eq!(out, b"\0\n\r");
        c.feed(b"xx", &mut out);
        assert_eq!(c.finish(true, &mut out), Err(ContentError::TooBig));
    }

    #[test]
    fn sink_failure_is_temporary() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut c = ContentChecker::new(ContentMode::Text, 100, 1000);
        c.feed(b"a\r\n", &mut Broken);
        let e = c.finish(false, &mut Broken).expect_err("fails");
        assert_eq!(e, ContentError::Sink);
        assert_eq!(e.reply().code(), 451);
    }
}
