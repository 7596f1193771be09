//! The DATA body decoder (RFC 5321 4.1.1.4, 4.5.2): finds the end of the data and removes
//! dot-stuffing, handing the message bytes to a [`ContentChecker`] which writes them to the
//! driver's sink as they arrive.
//!
//! SECURITY (SMTP smuggling, SEC Consult 2023; CVE-2023-51764/51765/51766):
//! - The data ends only at CRLF "." CRLF — the five octets, or ".\r\n" as the very first line.
//!   `\n.\n`, `\r.\r`, `\r\n.\n`, `\n.\r\n`, `\r.\r\n` do not end it; they stay message bytes, the
//!   content checker marks the message as having a bare LF/CR, and the session refuses it once
//!   the real end arrives. What follows a fake end is therefore never read as commands.
//! - The decoder holds back at most the bytes of a possible end marker (". CR") across calls;
//!   everything else goes to the checker at once, so memory does not grow with the message.

use std::io::Write;

use memchr::memchr;

use super::content::{ContentChecker, ContentError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF (or at the start): a "." here is special.
    LineStart,
    /// Inside a line.
    InLine,
    /// After a CR inside a line.
    Cr,
    /// After "." at a line start (the dot is dropped).
    Dot,
    /// After "." CR at a line start (the CR is held back: it may be part of the end marker).
    DotCr,
    /// End marker seen.
    Done,
}

/// Decoder for one DATA body.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    content: ContentChecker,
}

impl DataDecoder {
    pub fn new(content: ContentChecker) -> DataDecoder {
        DataDecoder {
            state: State::LineStart,
            content,
        }
    }

    /// True once CRLF.CRLF has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes wire bytes up to and including the end marker; returns how many were consumed.
    /// Bytes after the marker are left for the caller (they are commands).
    pub fn feed(&mut self, input: &[u8], sink: &mut dyn Write) -> usize {
        let mut i = 0;
        let mut run = 0; // start of bytes not yet handed to the checker
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::LineStart => {
                    if b == b'.' {
                        self.content.feed(&input[run..i], sink);
                        i += 1;
                        run = i;
                        self.state = State::Dot;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::InLine => match memchr(b'\r', &input[i..]) {
                    Some(k) => {
                        i += k + 1;
                        self.state = State::Cr;
                    }
                    None => i = input.len(),
                },
                State::Cr => {
                    self.state = match b {
                        b'\n' => State::LineStart,
                        b'\r' => State::Cr,
                        _ => State::InLine,
                    };
                    i += 1;
                }
                State::Dot => {
                    if b == b'\r' {
                        // Hold the CR back; `run == i` here (the dot was dropped).
                        i += 1;
                        run = i;
                        self.state = State::DotCr;
                    } else {
                        // "..x" or ".x": the first dot is dropped and the rest is text
                        // (a bare LF here is caught by the content checker).
                        self.state = State::InLine;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        i += 1;
                        run = i;
                        self.state = State::Done;
                    } else {
                        // Not the end: the held CR is text, and `b` follows a CR.
                        self.content.feed(b"\r", sink);
                        self.state = State::Cr;
                    }
                }
                State::Done => {}
            }
        }
        self.content.feed(&input[run..i], sink);
        i
    }

    /// The verdict on the body, once [`is_done`](Self::is_done). Returns the content size.
    pub fn finish(&mut self, sink: &mut dyn Write) -> Result<u64, ContentError> {
        // A DATA body always ends with CRLF (or is empty): nothing to complete.
        self.content.finish(false, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::content::ContentMode;

    fn decoder() -> DataDecoder {
        DataDecoder::new(ContentChecker::new(ContentMode::Text, 1 << 20, 1000))
    }

    /// Feeds `input` in pieces of `step` bytes; returns (consumed, done, verdict, output).
    fn run(input: &[u8], step: usize) -> (usize, bool, Option<Result<u64, ContentError>>, Vec<u8>) {
        let mut d = decoder();
        let mut out = Vec::new();
        let mut used = 0;
        while used < input.len() && !d.is_done() {
            let end = (used + step).min(input.len());
            let n = d.feed(&input[used..end], &mut out);
            assert!(
                n == end - used || d.is_done(),
                "decoder must consume all until done"
            );
            used += n;
        }
        let done = d.is_done();
        let verdict = done.then(|| d.finish(&mut out));
        (used, done, verdict, out)
    }

    #[test]
    fn simple_message() {
        let input = b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
        for step in 1..input.len() {
            let (used, done, verdict, out) = run(input, step);
            assert!(done);
            assert_eq!(used, input.len() - 6, "QUIT is left over");
            assert_eq!(verdict, Some(Ok(21)));
            assert_eq!(out, b"Subject: x\r\n\r\nhello\r\n");
        }
    }

    #[test]
    fn empty_message() {
        let (used, done, verdict, out) = run(b".\r\nNOOP\r\n", 100);
        assert!(done);
        assert_eq!(used, 3);
        assert_eq!(verdict, Some(Ok(0)));
        assert!(out.is_empty());
    }

    #[test]
    fn dot_unstuffing() {
        let input = b"..\r\n...x\r\n.y\r\nz.\r\n. \r\n.\r\n";
        for step in 1..=input.len() {
            let (_, done, verdict, out) = run(input, step);
            assert!(done);
            assert!(matches!(verdict, Some(Ok(_))));
            assert_eq!(out, b".\r\n..x\r\ny\r\nz.\r\n \r\n");
        }
    }

    #[test]
    fn smuggling_variants_do_not_end_the_data() {
        for fake in [
            &b"\n.\n"[..],
            b"\r.\r",
            b"\r\n.\n",
            b"\n.\r\n",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r\n.\rX",
        ] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(fake);
            input.extend_from_slice(
                b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<x@y>\r\nDATA\r\nSmuggled\r\n.\r\n",
            );
            for step in [1, 2, 3, 7, input.len()] {
                let (used, done, verdict, _) = run(&input, step);
                assert!(done, "{fake:?}");
                assert_eq!(used, input.len(), "{fake:?} ended early");
                assert_eq!(verdict, Some(Err(ContentError::BareNewline)), "{fake:?}");
            }
        }
    }

    #[test]
    fn cr_before_real_end_is_bare() {
        let (used, done, verdict, _) = run(b"a\r\r\n.\r\n", 1);
        assert!(done);
        assert_eq!(used, 7);
        assert_eq!(verdict, Some(Err(ContentError::BareNewline)));
    }

    #[test]
    fn no_end_means_not_done() {
        let (used, done, verdict, out) = run(b"abc\r\n.\r", 2);
        assert!(!done);
        assert_eq!(used, 7);
        assert_eq!(verdict, None);
        assert_eq!(out, b"abc\r\n", "the held-back CR is not written yet");
    }
}
