//! Splits the client's bytes into command lines, each bounded in length.
//!
//! A line ends at LF (a CR before it is dropped; RFC 1939 wants CRLF, and lenience costs
//! nothing here: POP3 commands carry no message data). A line longer than the limit is not
//! stored: the splitter throws bytes away until the next LF and then yields one
//! [`Line::TooLong`], so the reply comes after the client finished its line.
//!
//! SECURITY: the buffer never holds more than the limit plus one read (or, in moat-pop3d after a
//! hand-over, the `MAX_PENDING` bytes moat-pop3-login passed on); `clear` forgets everything at
//! STLS, so no plaintext byte sent after the STLS command is read as a command once TLS is up
//! (RFC 2595 section 4). `take` hands the bytes pipelined after the login command to
//! moat-pop3d, which `push`es them back, so they are answered there in order.

use std::collections::VecDeque;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    TooLong,
}

#[derive(Default)]
pub struct Lines {
    buf: VecDeque<u8>,
    /// Inside an over-long line: drop bytes until LF.
    discarding: bool,
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    /// Takes bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }

    /// The next line of at most `limit` octets (CRLF included), if one is complete.
    pub fn next(&mut self, limit: usize) -> Option<Line> {
        loop {
            let lf = self.buf.iter().position(|b| *b == b'\n');
            if self.discarding {
                match lf {
                    Some(at) => {
                        self.buf.drain(..=at);
                        self.discarding = false;
                        return Some(Line::TooLong);
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            match lf {
                Some(at) if at < limit => {
                    let mut line: Vec<u8> = self.buf.drain(..=at).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(Line::Complete(line));
                }
                Some(_) => self.discarding = true,
                None if self.buf.len() >= limit => self.discarding = true,
                None => return None,
            }
        }
    }

    /// Takes everything buffered after the last line returned: what the client pipelined after
    /// the login command, for moat-pop3d. Called right after `next` returned that line, so no
    /// over-long line is being discarded.
    pub fn take(&mut self) -> Vec<u8> {
        self.discarding = false;
        self.buf.drain(..).collect()
    }

    /// Forgets everything buffered (at STLS).
    pub fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        self.discarding = false;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_bounds() {
        let mut l = Lines::new();
        l.push(b"STAT\r\nLIST 1\nNO");
        assert_eq!(l.next(255), Some(Line::Complete(b"STAT".to_vec())));
        assert_eq!(l.next(255), Some(Line::Complete(b"LIST 1".to_vec())));
        assert_eq!(l.next(255), None);
        l.push(b"OP\r\n");
        assert_eq!(l.next(255), Some(Line::Complete(b"NOOP".to_vec())));
    }

    #[test]
    fn ten_kilobytes_is_one_too_long_line_then_normal_again() {
        let mut l = Lines::new();
        for _ in 0..10 {
            l.push(&[b'A'; 1024]);
            assert_eq!(l.next(255), None);
        }
        assert!(l.buf.len() < 1024);
        l.push(b"\r\nQUIT\r\n");
        assert_eq!(l.next(255), Some(Line::TooLong));
        assert_eq!(l.next(255), Some(Line::Complete(b"QUIT".to_vec())));
        // Exactly at the limit: 253 octets + CRLF = 255 is fine, one more is not.
        l.push(&[b'B'; 253]);
        l.push(b"\r\n");
        assert!(matches!(l.next(255), Some(Line::Complete(v)) if v.len() == 253));
        l.push(&[b'B'; 254]);
        l.push(b"\r\n");
        assert_eq!(l.next(255), Some(Line::TooLong));
    }

    #[test]
    fn take_hands_over_what_follows_the_login_line() {
        let mut l = Lines::new();
        l.push(b"PASS pw\r\nSTAT\r\nLI");
        assert_eq!(l.next(255), Some(Line::Complete(b"PASS pw".to_vec())));
        let pending = l.take();
        assert_eq!(pending, b"STAT\r\nLI");
        assert_eq!(l.next(255), None);
        // The other side feeds them into its own framing.
        let mut other = Lines::new();
        other.push(&pending);
        other.push(b"ST\r\n");
        assert_eq!(other.next(255), Some(Line::Complete(b"STAT".to_vec())));
        assert_eq!(other.next(255), Some(Line::Complete(b"LIST".to_vec())));
    }

    #[test]
    fn clear_forgets_pipelined_plaintext() {
        let mut l = Lines::new();
        l.push(b"STLS\r\nUSER evil\r\n");
        assert_eq!(l.next(255), Some(Line::Complete(b"STLS".to_vec())));
        assert_eq!(l.clear(), 11);
        assert_eq!(l.next(255), None);
    }
}
