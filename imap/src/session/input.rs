//! The client's bytes → complete IMAP messages (a command line with its literals, or a SASL
//! response), framed by imap-codec's `Fragmentizer`, with the limits of docs/IMAP.md; and an
//! APPEND's message literal handed through in pieces instead (`Event::Append`).
//!
//! We keep the bytes read in our own buffer and hand the fragmentizer only what its current
//! fragment can use: up to the next LF on a line, up to the announced length in a literal. So
//! at a message's end the fragmentizer holds nothing unparsed, and everything pipelined after
//! it is ours to drop (`clear`, at STARTTLS) or to stream: when an APPEND's line announces its
//! message literal (`parse::append_head` decides which literal that is), the fragmentizer's
//! message is skipped and the literal's bytes are taken from our buffer by the caller
//! (`take_literal`, into a file); the rest of the line after it (CRLF) is framed as a message
//! of its own and ends the APPEND (`Event::AppendDone`).
//!
//! Limits (SECURITY):
//! - a message (line + literals) is at most `MAX_MESSAGE` bytes; the fragmentizer never stores
//!   more, and a line growing past it without LF ends the connection at once (nothing useful
//!   can follow); an APPEND's message literal is never held (its size is the session's
//!   APPENDLIMIT check, before the literal is requested);
//! - before login, all messages together are at most `PREAUTH_BYTES` (and no APPEND streams);
//! - a literal is announced before it is sent: a synchronising one over the limit is refused
//!   and never requested (`+` is only sent for acceptable ones), so `{4294967295}` allocates
//!   nothing; a non-synchronising one (LITERAL+) over the limit would arrive anyway, so it gets
//!   BAD and BYE instead of gigabytes of reading. A refused non-synchronising APPEND literal of
//!   at most `DISCARD_MAX` bytes is read and dropped (one read at a time), so the client gets
//!   its `NO [TOOBIG]`/`[OVERQUOTA]` and the session goes on; a larger one ends the session;
//! - NUL is refused anywhere in a message, and in an APPEND's `{n}` literal; only BINARY's
//!   `~{n}` literal8 carries it (RFC 3516).
//!
//! The buffer of bytes read holds at most one read: we read only when it is empty.

use std::collections::VecDeque;

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;

use super::parse::{self, AppendHead};

/// The largest message (command line with its literals): Dovecot's `imap_max_line_length`.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Everything a client may send before logging in.
pub const PREAUTH_BYTES: usize = 8 * 1024;
/// The largest refused non-synchronising APPEND literal read and dropped rather than ending the
/// session: a client a little over APPENDLIMIT or the quota hears why, a flood does not cost
/// more than this much reading.
pub const DISCARD_MAX: u32 = 64 * 1024 * 1024;

const NUL_TEXT: &str = "NUL is not allowed in commands";

/// What the next step of the input is.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Read more from the client (after flushing our output).
    NeedMore,
    /// A synchronising literal was accepted: send a continuation request.
    SendContinuation,
    /// A complete message is in `message()`.
    Message,
    /// Input refused before it became a message, or an APPEND whose literal was taken or
    /// dropped ended badly. `tag` is the command's, when readable.
    Refused {
        tag: Option<String>,
        text: &'static str,
        /// The connection cannot go on (the refused bytes are still coming).
        close: bool,
    },
    /// An APPEND announced its message literal: answer with `accept_append` (then its bytes
    /// come as `LiteralData`) or `refuse_append`.
    Append(AppendHead),
    /// Bytes of the accepted APPEND literal are waiting: `take_literal`.
    LiteralData,
    /// The APPEND's literal (taken or dropped) and the rest of its line have arrived.
    AppendDone,
}

/// What happens to a refused APPEND literal (`refuse_append`).
#[derive(Debug, PartialEq, Eq)]
pub enum Refuse {
    /// Synchronising: never requested; answer now.
    Now,
    /// Non-synchronising: it is being read and dropped; answer at `AppendDone` (or the
    /// `Refused` that ends it badly).
    Discard,
    /// Non-synchronising and larger than `DISCARD_MAX`: answer and close.
    Close,
}

/// Where the current message's literal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Literal {
    None,
    /// Framed (kept in the message): bytes still to hand the fragmentizer.
    Framed(u32),
    /// An APPEND's message literal was announced (`Event::Append`): the caller decides.
    Announced {
        length: u32,
        sync: bool,
        binary: bool,
    },
    /// Taken by the caller (`take_literal`): bytes still to come; `nul`: one was seen.
    Streamed {
        left: u32,
        binary: bool,
        nul: bool,
    },
    /// Refused after all: read and dropped.
    Discarded {
        left: u32,
    },
    /// The literal is over; the rest of the APPEND's line is being framed. `nul`: a NUL came
    /// in a `{n}` literal.
    Tail {
        nul: bool,
    },
}

pub struct Input {
    frag: Fragmentizer,
    raw: VecDeque<u8>,
    literal: Literal,
    /// The tag of the APPEND whose literal is announced, taken or dropped.
    append_tag: Option<String>,
    /// Bytes handed to the fragmentizer for the current message.
    current: usize,
    /// The current message was reported complete; the next call starts another.
    complete: bool,
    /// Bytes of whole messages before login; `None` once logged in.
    preauth: Option<usize>,
}

/// True if the message so far is an APPEND (`<tag> APPEND `): a cheap test before decoding.
fn is_append(message: &[u8]) -> bool {
    let mut words = message.splitn(3, |b| *b == b' ');
    words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// The announcement at the end of a line is `~{n}` (RFC 3516 literal8).
fn is_literal8(line: &[u8]) -> bool {
    memchr::memrchr(b'{', line)
        .and_then(|brace| brace.checked_sub(1))
        .and_then(|at| line.get(at))
        == Some(&b'~')
}

impl Default for Input {
    fn default() -> Self {
        Input::new()
    }
}

impl Input {
    pub fn new() -> Input {
        Input {
            frag: Fragmentizer::new(u32::try_from(MAX_MESSAGE).unwrap_or(u32::MAX)),
            raw: VecDeque::new(),
            literal: Literal::None,
            append_tag: None,
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

    /// Takes everything read and not yet used: the bytes a client pipelined after its login
    /// command, which the login process hands to the mail process with the connection
    /// (`connection.rs`). At a message's end the fragmentizer holds none of them.
    pub fn take_pending(&mut self) -> Vec<u8> {
        self.raw.drain(..).collect()
    }

    /// The limit for the current message.
    fn limit(&self) -> usize {
        match self.preauth {
            Some(used) => PREAUTH_BYTES.saturating_sub(used).min(MAX_MESSAGE),
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

    /// Drops the current message without its announced literal (which was not requested, or
    /// is taken elsewhere): the fragmentizer starts a new line.
    fn skip_message(&mut self) {
        self.frag.skip_message();
        self.finish_message();
    }

    /// Refuses the literal just announced: a synchronising one is never requested (the client
    /// goes on with its next command); a non-synchronising one is coming anyway.
    fn refuse_announced(
        &mut self,
        mode: LiteralMode,
        tag: Option<String>,
        text: &'static str,
    ) -> Event {
        let close = mode == LiteralMode::NonSync;
        if !close {
            self.skip_message();
        }
        self.literal = Literal::None;
        Event::Refused { tag, text, close }
    }

    /// Hands the fragmentizer what its current fragment can use; false if nothing was there.
    fn feed(&mut self) -> bool {
        if self.raw.is_empty() {
            return false;
        }
        let n = match self.literal {
            Literal::Framed(left) => self.raw.len().min(left as usize),
            // At most one byte past the limit, which is then refused: the fragmentizer never
            // holds more than the limit of this message.
            _ => self
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
        if let Literal::Framed(left) = &mut self.literal {
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
            match self.literal {
                // The caller did not decide (a bug): the literal is not wanted.
                Literal::Announced { .. } => {
                    let tag = self.append_tag.clone();
                    match self.refuse_append() {
                        Refuse::Discard => continue,
                        refuse => {
                            return Event::Refused {
                                tag,
                                text: "APPEND refused",
                                close: refuse == Refuse::Close,
                            };
                        }
                    }
                }
                Literal::Streamed { left: 0, nul, .. } => self.literal = Literal::Tail { nul },
                Literal::Streamed { .. } if self.raw.is_empty() => return Event::NeedMore,
                Literal::Streamed { .. } => return Event::LiteralData,
                Literal::Discarded { left: 0 } => self.literal = Literal::Tail { nul: false },
                Literal::Discarded { left } => {
                    if self.raw.is_empty() {
                        return Event::NeedMore;
                    }
                    let n = self.raw.len().min(left as usize);
                    self.raw.drain(..n);
                    self.literal = Literal::Discarded {
                        left: left - n as u32,
                    };
                    continue;
                }
                Literal::None | Literal::Framed(_) | Literal::Tail { .. } => {}
            }
            match self.frag.progress() {
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    if let Some(event) = self.announced(mode, length) {
                        return event;
                    }
                }
                Some(FragmentInfo::Line { .. }) => {
                    self.complete = true;
                    if let Literal::Tail { nul } = self.literal {
                        return self.tail_done(nul);
                    }
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
                            text: NUL_TEXT,
                            close: false,
                        };
                    }
                    return Event::Message;
                }
                Some(FragmentInfo::Literal { .. }) => self.literal = Literal::None,
                None => {
                    if self.current > self.limit() {
                        let tag = match self.literal {
                            Literal::Tail { .. } => self.append_tag.take(),
                            _ => self.tag(),
                        };
                        self.literal = Literal::None;
                        return Event::Refused {
                            tag,
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

    /// A line announced a literal: `None` to go on framing it, else the event.
    fn announced(&mut self, mode: LiteralMode, length: u32) -> Option<Event> {
        if let Literal::Tail { .. } = self.literal {
            // A second message (MULTIAPPEND, RFC 3502) or CATENATE: not offered.
            let tag = self.append_tag.take();
            return Some(self.refuse_announced(mode, tag, "APPEND takes one message"));
        }
        let line = self.frag.message_bytes();
        if memchr::memchr(0, line).is_some() {
            let tag = self.tag();
            return Some(self.refuse_announced(mode, tag, NUL_TEXT));
        }
        if self.preauth.is_none()
            && is_append(line)
            && let Some(head) = parse::append_head(line, length, is_literal8(line))
        {
            self.append_tag = Some(head.tag.clone());
            self.literal = Literal::Announced {
                length,
                sync: mode == LiteralMode::Sync,
                binary: head.binary,
            };
            return Some(Event::Append(head));
        }
        let fits = (length as usize) <= self.limit().saturating_sub(self.current);
        match (fits, mode) {
            (true, LiteralMode::Sync) => {
                self.literal = Literal::Framed(length);
                Some(Event::SendContinuation)
            }
            (true, LiteralMode::NonSync) => {
                self.literal = Literal::Framed(length);
                None
            }
            (false, mode) => {
                let tag = self.tag();
                Some(self.refuse_announced(mode, tag, "[TOOBIG] literal too large"))
            }
        }
    }

    /// The line after an APPEND's literal is complete: it must be empty.
    fn tail_done(&mut self, nul: bool) -> Event {
        self.literal = Literal::None;
        let tag = self.append_tag.take();
        let text = match self.frag.message_bytes() {
            b"\r\n" | b"\n" if nul => NUL_TEXT,
            b"\r\n" | b"\n" => return Event::AppendDone,
            _ => "Unexpected data after the APPEND message",
        };
        Event::Refused {
            tag,
            text,
            close: false,
        }
    }

    /// Takes the announced APPEND literal (`Event::Append`): its bytes come as `LiteralData`.
    /// True if a continuation request must be sent first (a synchronising literal).
    pub fn accept_append(&mut self) -> bool {
        let Literal::Announced {
            length,
            sync,
            binary,
        } = self.literal
        else {
            return false;
        };
        self.skip_message();
        self.literal = Literal::Streamed {
            left: length,
            binary,
            nul: false,
        };
        sync
    }

    /// Refuses the announced APPEND literal (`Event::Append`); the answer is the caller's.
    pub fn refuse_append(&mut self) -> Refuse {
        let Literal::Announced { length, sync, .. } = self.literal else {
            return Refuse::Now;
        };
        if sync {
            self.skip_message();
            self.literal = Literal::None;
            self.append_tag = None;
            Refuse::Now
        } else if length <= DISCARD_MAX {
            self.skip_message();
            self.literal = Literal::Discarded { left: length };
            Refuse::Discard
        } else {
            self.literal = Literal::None;
            Refuse::Close
        }
    }

    /// Moves bytes of the accepted APPEND literal into `into`, until it holds `max` bytes;
    /// returns how many were moved.
    pub fn take_literal(&mut self, into: &mut Vec<u8>, max: usize) -> usize {
        let Literal::Streamed { left, binary, nul } = self.literal else {
            return 0;
        };
        let n = self
            .raw
            .len()
            .min(left as usize)
            .min(max.saturating_sub(into.len()));
        let start = into.len();
        into.extend(self.raw.drain(..n));
        let nul = nul
            || (!binary
                && into
                    .get(start..)
                    .is_some_and(|taken| memchr::memchr(0, taken).is_some()));
        self.literal = Literal::Streamed {
            left: left - n as u32,
            binary,
            nul,
        };
        n
    }

    /// Bytes of the accepted APPEND literal still to come.
    pub fn literal_left(&self) -> u32 {
        match self.literal {
            Literal::Streamed { left, .. } => left,
            _ => 0,
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
    /// message is shown as its bytes; APPEND literals are accepted and taken 5 bytes at a
    /// time.
    fn events(input: &mut Input, bytes: &[u8]) -> Vec<String> {
        input.push(bytes);
        let mut out = Vec::new();
        loop {
            match input.next_event() {
                Event::NeedMore => return out,
                Event::Message => out.push(String::from_utf8_lossy(input.message()).into()),
                Event::SendContinuation => out.push("+".into()),
                Event::Append(head) => {
                    let sync = input.accept_append();
                    out.push(format!(
                        "append {} {} {} binary={} sync={sync}",
                        head.tag,
                        String::from_utf8_lossy(parse::mailbox_bytes(&head.mailbox)),
                        head.length,
                        head.binary
                    ));
                }
                Event::LiteralData => {
                    let mut chunk = Vec::new();
                    input.take_literal(&mut chunk, 5);
                    out.push(format!("data {}", String::from_utf8_lossy(&chunk)));
                }
                Event::AppendDone => out.push("done".into()),
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

    #[test]
    fn pending_bytes_after_a_login_are_taken_whole() {
        let mut i = Input::new();
        i.push(b"a LOGIN {5}\r\n");
        assert_eq!(i.next_event(), Event::SendContinuation);
        i.push(b"alice pw\r\nb SELECT INBOX\r\nc FET");
        assert_eq!(i.next_event(), Event::Message);
        assert_eq!(i.message(), b"a LOGIN {5}\r\nalice pw\r\n");
        assert_eq!(i.take_pending(), b"b SELECT INBOX\r\nc FET");
        assert!(i.is_empty());
        // A fresh framing (the mail process's) reads them as the client sent them.
        let mut j = Input::new();
        j.authenticated();
        assert_eq!(
            events(&mut j, b"b SELECT INBOX\r\nc FET"),
            ["b SELECT INBOX\r\n"]
        );
    }

    #[test]
    fn append_literals_are_handed_through_in_pieces() {
        let mut i = Input::new();
        i.authenticated();
        // Synchronising: the caller sends `+`; the line after the literal ends the APPEND.
        assert_eq!(
            events(&mut i, b"a APPEND INBOX (\\Seen) {7}\r\n"),
            ["append a INBOX 7 binary=false sync=true"]
        );
        assert_eq!(events(&mut i, b"hello w"), ["data hello", "data  w"]);
        assert_eq!(events(&mut i, b"\r\nb NOOP\r\n"), ["done", "b NOOP\r\n"]);
        // Non-synchronising literal8 with NUL, and a mailbox sent as a (framed) literal.
        assert_eq!(
            events(&mut i, b"c APPEND {4}\r\nWork ~{3+}\r\n\0x\0\r\n"),
            [
                "+",
                "append c Work 3 binary=true sync=false",
                "data \0x\0",
                "done"
            ]
        );
        assert_eq!(i.literal_left(), 0);
        // LF-only line endings are framed as the fragmentizer does.
        assert_eq!(
            events(&mut i, b"d APPEND INBOX {2+}\nhi\n"),
            [
                "append d INBOX 2 binary=false sync=false",
                "data hi",
                "done"
            ]
        );
    }

    #[test]
    fn append_ends_badly_without_crlf_with_nul_or_a_second_message() {
        let mut i = Input::new();
        i.authenticated();
        let got = events(&mut i, b"a APPEND INBOX {2+}\r\nhiXX\r\nb NOOP\r\n");
        assert_eq!(
            got[2],
            "Some(\"a\") Unexpected data after the APPEND message false"
        );
        assert_eq!(got[3], "b NOOP\r\n");
        // NUL only in a literal8.
        let got = events(&mut i, b"c APPEND INBOX {3+}\r\na\0b\r\n");
        assert_eq!(
            got.last().map(String::as_str),
            Some("Some(\"c\") NUL is not allowed in commands false")
        );
        // MULTIAPPEND: the second literal is refused (synchronising: never requested).
        let got = events(&mut i, b"d APPEND INBOX {1+}\r\nx {5}\r\ne NOOP\r\n");
        assert_eq!(
            &got[2..],
            ["Some(\"d\") APPEND takes one message false", "e NOOP\r\n"]
        );
        // ... and non-synchronising: it is coming, so the connection ends.
        let got = events(&mut i, b"f APPEND INBOX {1+}\r\nx {5+}\r\n");
        assert_eq!(
            got.last().map(String::as_str),
            Some("Some(\"f\") APPEND takes one message true")
        );
    }

    #[test]
    fn refused_appends_are_skipped_dropped_or_closed() {
        let mut i = Input::new();
        i.authenticated();
        // Synchronising: never requested, the next command follows.
        i.push(b"a APPEND INBOX {50}\r\nb NOOP\r\n");
        assert!(matches!(i.next_event(), Event::Append(h) if h.tag == "a" && h.length == 50));
        assert_eq!(i.refuse_append(), Refuse::Now);
        assert_eq!(i.next_event(), Event::Message);
        assert_eq!(i.message(), b"b NOOP\r\n");
        // Non-synchronising within DISCARD_MAX: read and dropped, without being held.
        i.push(b"c APPEND INBOX {100000+}\r\n");
        assert!(matches!(i.next_event(), Event::Append(_)));
        assert_eq!(i.refuse_append(), Refuse::Discard);
        for _ in 0..25 {
            assert_eq!(i.next_event(), Event::NeedMore);
            i.push(&[b'x'; 4000]);
        }
        i.push(b"\r\nd NOOP\r\n");
        assert_eq!(i.next_event(), Event::AppendDone);
        assert!(i.frag.message_bytes().len() < 10);
        assert_eq!(i.next_event(), Event::Message);
        assert_eq!(i.message(), b"d NOOP\r\n");
        // Larger: the caller answers and closes.
        i.push(b"e APPEND INBOX {4294967295+}\r\n");
        assert!(matches!(i.next_event(), Event::Append(_)));
        assert_eq!(i.refuse_append(), Refuse::Close);
        // Before login, an APPEND is framed like any command (and too large).
        let mut p = Input::new();
        assert_eq!(
            events(&mut p, b"a APPEND INBOX {9000}\r\n"),
            ["Some(\"a\") [TOOBIG] literal too large false"]
        );
    }
}
