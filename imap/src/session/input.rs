//! The client's bytes → complete IMAP messages (a command line with its literals, or a SASL
//! response), framed by imap-codec's `Fragmentizer`, with the limits of docs/IMAP.md.
//!
//! We keep the bytes read in our own buffer and hand the fragmentizer only what its current
//! fragment can use: up to the next LF on a line, up to the announced length in a literal. So
//! at a message's end the fragmentizer holds nothing unparsed, and everything pipelined after
//! it is ours to drop (`clear`, at STARTTLS) or, later, to stream (an APPEND literal into a
//! file instead of memory: take it from `raw` while the fragmentizer waits).
//!
//! Limits (SECURITY):
//! - a message (line + literals) is at most `MAX_MESSAGE` bytes, an APPEND at most
//!   `APPEND_LIMIT` more (RFC 7889; held in memory for now, see docs/IMAP.md); the fragmentizer
//!   never stores more, and a line growing past it without LF ends the connection at once (nothing useful
//!   can follow);
//! - before login, all messages together are at most `PREAUTH_BYTES`;
//! - a literal is announced before it is sent: a synchronising one over the limit is refused
//!   with BAD and never requested (`+` is only sent for acceptable ones), so `{4294967295}`
//!   allocates nothing; a non-synchronising one (LITERAL+) over the limit would arrive
//!   anyway, so it gets BAD and BYE instead of gigabytes of reading;
//! - NUL is refused anywhere in a message (APPEND of `~{...}` BINARY literals will be the
//!   exception, with the selected state).
//!
//! The buffer of bytes read holds at most one read: we read only when it is empty.

use std::collections::VecDeque;

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;

use crate::settings::APPEND_LIMIT;

/// The largest message (command line with its literals): Dovecot's `imap_max_line_length`.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Everything a client may send before logging in.
pub const PREAUTH_BYTES: usize = 8 * 1024;

/// What the next step of the input is.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Read more from the client (after flushing our output).
    NeedMore,
    /// A synchronising literal was accepted: send a continuation request.
    SendContinuation,
    /// A complete message is in `message()`.
    Message,
    /// Input refused before it became a message. `tag` is the command's, when readable.
    Refused {
        tag: Option<String>,
        text: &'static str,
        /// The connection cannot go on (the refused bytes are still coming).
        close: bool,
    },
}

pub struct Input {
    frag: Fragmentizer,
    raw: VecDeque<u8>,
    /// Literal bytes still to hand over, once a literal was accepted.
    literal_left: Option<u32>,
    /// Bytes handed to the fragmentizer for the current message.
    current: usize,
    /// The current message was reported complete; the next call starts another.
    complete: bool,
    /// Bytes of whole messages before login; `None` once logged in.
    preauth: Option<usize>,
}

/// True if the message so far is an APPEND (`<tag> APPEND `): its literal may be as large as
/// `APPEND_LIMIT`.
fn is_append(message: &[u8]) -> bool {
    let mut words = message.splitn(3, |b| *b == b' ');
    words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

impl Default for Input {
    fn default() -> Self {
        Input::new()
    }
}

impl Input {
    pub fn new() -> Input {
        Input {
            frag: Fragmentizer::new(u32::try_from(MAX_MESSAGE + APPEND_LIMIT).unwrap_or(u32::MAX)),
            raw: VecDeque::new(),
            literal_left: None,
            current: 0,
            complete: false,
            preauth: Some(0),
        }
    }

    /// True when everything read was used: the time to read again.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.extend(bytes);
    }

    /// The login succeeded: the pre-login budget no longer applies.
    pub fn authenticated(&mut self) {
        self.preauth = None;
    }

    /// Forgets everything read and not yet used (at STARTTLS); returns how many bytes.
    pub fn clear(&mut self) -> usize {
        let n = self.raw.len();
        self.raw.clear();
        n
    }

    /// The limit for the current message.
    fn limit(&self) -> usize {
        match self.preauth {
            Some(used) => PREAUTH_BYTES.saturating_sub(used).min(MAX_MESSAGE),
            None if is_append(self.frag.message_bytes()) => MAX_MESSAGE + APPEND_LIMIT,
            None => MAX_MESSAGE,
        }
    }

    fn tag(&self) -> Option<String> {
        self.frag.decode_tag().map(|t| t.as_ref().to_string())
    }

    /// Starts the next message's accounting.
    fn finish_message(&mut self) {
        if let Some(used) = &mut self.preauth {
            *used += self.current;
        }
        self.current = 0;
        self.complete = false;
    }

    /// Hands the fragmentizer what its current fragment can use; false if nothing was there.
    fn feed(&mut self) -> bool {
        if self.raw.is_empty() {
            return false;
        }
        let n = match self.literal_left {
            Some(left) => self.raw.len().min(left as usize),
            // At most one byte past the limit, which is then refused: the fragmentizer (whose
            // own maximum allows an APPEND) never holds more than the limit of this message.
            None => self
                .raw
                .iter()
                .position(|b| *b == b'\n')
                .map_or(self.raw.len(), |at| at + 1)
                .min(self.limit().saturating_sub(self.current) + 1),
        };
        let (front, back) = self.raw.as_slices();
        let from_front = n.min(front.len());
        self.frag
            .enqueue_bytes(front.get(..from_front).unwrap_or_default());
        self.frag
            .enqueue_bytes(back.get(..n - from_front).unwrap_or_default());
        self.raw.drain(..n);
        self.current += n;
        if let Some(left) = &mut self.literal_left {
            *left -= n as u32;
        }
        true
    }

    /// The next step.
    pub fn next_event(&mut self) -> Event {
        if self.complete {
            self.finish_message();
        }
        loop {
            match self.frag.progress() {
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    let fits = (length as usize) <= self.limit().saturating_sub(self.current);
                    match (fits, mode) {
                        (true, LiteralMode::Sync) => {
                            self.literal_left = Some(length);
                            return Event::SendContinuation;
                        }
                        (true, LiteralMode::NonSync) => self.literal_left = Some(length),
                        (false, LiteralMode::Sync) => {
                            // Not requested, so not sent: the client goes on with its next
                            // command.
                            let tag = self.tag();
                            self.frag.skip_message();
                            self.finish_message();
                            return Event::Refused {
                                tag,
                                text: "[TOOBIG] literal too large",
                                close: false,
                            };
                        }
                        (false, LiteralMode::NonSync) => {
                            return Event::Refused {
                                tag: self.tag(),
                                text: "[TOOBIG] literal too large",
                                close: true,
                            };
                        }
                    }
                }
                Some(FragmentInfo::Line { .. }) => {
                    self.complete = true;
                    if self.preauth.is_some() && self.current > self.limit() {
                        return Event::Refused {
                            tag: self.tag(),
                            text: "too much input before login",
                            close: true,
                        };
                    }
                    if memchr::memchr(0, self.frag.message_bytes()).is_some() {
                        return Event::Refused {
                            tag: self.tag(),
                            text: "NUL is not allowed in commands",
                            close: false,
                        };
                    }
                    return Event::Message;
                }
                Some(FragmentInfo::Literal { .. }) => self.literal_left = None,
                None => {
                    if self.current > self.limit() {
                        return Event::Refused {
                            tag: self.tag(),
                            text: if self.preauth.is_some() {
                                "too much input before login"
                            } else {
                                "[TOOBIG] command line too long"
                            },
                            close: true,
                        };
                    }
                    if !self.feed() {
                        return Event::NeedMore;
                    }
                }
            }
        }
    }

    /// The fragmentizer, for decoding the complete message (`Event::Message`).
    pub fn fragmentizer(&self) -> &Fragmentizer {
        &self.frag
    }

    /// The complete message's bytes.
    pub fn message(&self) -> &[u8] {
        self.frag.message_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the input yields for `bytes`, until it needs more or refuses for good; a
    /// message is shown as its bytes.
    fn events(input: &mut Input, bytes: &[u8]) -> Vec<String> {
        input.push(bytes);
        let mut out = Vec::new();
        loop {
            match input.next_event() {
                Event::NeedMore => return out,
                Event::Message => out.push(String::from_utf8_lossy(input.message()).into()),
                Event::SendContinuation => out.push("+".into()),
                Event::Refused { tag, text, close } => {
                    out.push(format!("{tag:?} {text} {close}"));
                    if close {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn lines_and_literals() {
        let mut i = Input::new();
        i.authenticated();
        assert_eq!(
            events(&mut i, b"a NOOP\r\nb LOGIN {3}\r\n"),
            ["a NOOP\r\n", "+"]
        );
        assert_eq!(
            events(&mut i, b"bob {4+}\r\npass\r\nc NOOP"),
            ["b LOGIN {3}\r\nbob {4+}\r\npass\r\n"]
        );
        assert_eq!(events(&mut i, b"\r\n"), ["c NOOP\r\n"]);
    }

    #[test]
    fn huge_literals_are_refused_without_allocation() {
        let mut i = Input::new();
        assert_eq!(
            events(&mut i, b"a LOGIN {4294967295}\r\nb NOOP\r\n"),
            ["Some(\"a\") [TOOBIG] literal too large false", "b NOOP\r\n"]
        );
        assert_eq!(
            events(&mut i, b"c LOGIN {99999+}\r\n"),
            ["Some(\"c\") [TOOBIG] literal too large true"]
        );
    }

    #[test]
    fn long_lines_end_the_connection_and_preauth_is_budgeted() {
        let mut i = Input::new();
        i.authenticated();
        let mut got = Vec::new();
        for _ in 0..100 {
            got = events(&mut i, &[b'x'; 4096]);
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got, ["None [TOOBIG] command line too long true"]);
        assert!(i.frag.message_bytes().len() <= MAX_MESSAGE + 1);

        let mut p = Input::new();
        let mut refused = false;
        for n in 0..100 {
            let e = events(
                &mut p,
                format!("a{n} NOOP {}\r\n", "x".repeat(200)).as_bytes(),
            );
            if e.iter()
                .any(|e| e.ends_with("too much input before login true"))
            {
                refused = true;
                break;
            }
        }
        assert!(refused, "8 KiB before login");
    }

    #[test]
    fn nul_and_starttls_clearing() {
        let mut i = Input::new();
        assert_eq!(
            events(&mut i, b"a NO\0OP\r\n"),
            ["Some(\"a\") NUL is not allowed in commands false"]
        );
        i.push(b"b STARTTLS\r\nc LOGIN evil evil\r\n");
        assert_eq!(i.next_event(), Event::Message);
        assert_eq!(i.message(), b"b STARTTLS\r\n");
        assert_eq!(i.clear(), 19);
        assert_eq!(i.next_event(), Event::NeedMore);
    }
}
