//! The body of a RETR or TOP answer, encoded as it streams from the message file: line ends
//! become CRLF (a bare LF gets its CR; a CR not followed by LF is kept as it is), a line
//! starting with `.` gets a second one (RFC 1939 section 3), and the answer ends with
//! `CRLF.CRLF`. For TOP, output stops after the header, the blank line and `n` body lines.
//!
//! SECURITY: the encoder holds no message data between chunks, only a few flags, so a
//! message of any size is sent in constant memory; whatever the file contains, the client
//! can only see the terminating `.` line at the real end.

#[derive(Debug)]
pub struct Encoder {
    at_line_start: bool,
    /// A CR was read and not yet written: is it a line end (LF follows) or content?
    pending_cr: bool,
    /// Content octets in the current line (0 at the end = a blank line).
    line_len: u64,
    in_header: bool,
    /// For TOP: body lines still to send (`None` = everything).
    body_lines_left: Option<u64>,
    done: bool,
}

impl Encoder {
    /// `top`: for TOP, how many body lines; `None` for RETR.
    pub fn new(top: Option<u64>) -> Encoder {
        Encoder {
            at_line_start: true,
            pending_cr: false,
            line_len: 0,
            in_header: true,
            body_lines_left: top,
            done: false,
        }
    }

    /// True once TOP has all it wants (the caller may stop reading the file).
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn content(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        self.at_line_start = false;
        self.line_len += 1;
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        let blank = self.line_len == 0;
        self.at_line_start = true;
        self.line_len = 0;
        if self.in_header {
            if blank {
                self.in_header = false;
                if self.body_lines_left == Some(0) {
                    self.done = true;
                }
            }
        } else if let Some(left) = self.body_lines_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.done = true;
            }
        }
    }

    /// Encodes one chunk of the file into `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while let Some((&b, tail)) = rest.split_first() {
            if self.done {
                return;
            }
            // Fast path: copy the run of ordinary bytes up to the next CR or LF at once.
            if !self.pending_cr && b != b'\r' && b != b'\n' {
                let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                let (text, after) = rest.split_at(run);
                if self.at_line_start && b == b'.' {
                    out.push(b'.');
                }
                out.extend_from_slice(text);
                self.at_line_start = false;
                self.line_len += text.len() as u64;
                rest = after;
                continue;
            }
            rest = tail;
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.end_line(out);
                    continue;
                }
                self.content(b'\r', out);
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.end_line(out),
                other => self.content(other, out),
            }
        }
    }

    /// Ends the answer: completes a last line without its end, then `.CRLF`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            if self.pending_cr {
                self.pending_cr = false;
                self.content(b'\r', out);
            }
            if !self.at_line_start {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Encodes a whole message (tests and small answers).
pub fn encode_all(message: &[u8], top: Option<u64>, chunk: usize) -> Vec<u8> {
    let mut e = Encoder::new(top);
    let mut out = Vec::new();
    for piece in message.chunks(chunk.max(1)) {
        e.encode(piece, &mut out);
    }
    e.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Subject: x\r\nFrom: a@b\r\n\r\n.hidden\r\nline 2\r\n..two\r\n.\r\nend";

    #[test]
    fn stuffs_dots_and_terminates() {
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(
                encode_all(MSG, None, chunk),
                b"Subject: x\r\nFrom: a@b\r\n\r\n..hidden\r\nline 2\r\n...two\r\n..\r\nend\r\n.\r\n"
            );
        }
    }

    #[test]
    fn bare_lf_gets_cr_and_bare_cr_stays() {
        assert_eq!(
            encode_all(b"A: 1\n\n.x\ny\rz\n", None, 1),
            b"A: 1\r\n\r\n..x\r\ny\rz\r\n.\r\n"
        );
        assert_eq!(encode_all(b"", None, 4), b".\r\n");
        assert_eq!(encode_all(b"a\r", None, 4), b"a\r\r\n.\r\n");
    }

    #[test]
    fn top_stops_after_n_body_lines() {
        for chunk in [1, 5, 1000] {
            assert_eq!(
                encode_all(MSG, Some(0), chunk),
                b"Subject: x\r\nFrom: a@b\r\n\r\n.\r\n"
            );
            assert_eq!(
                encode_all(MSG, Some(2), chunk),
                b"Subject: x\r\nFrom: a@b\r\n\r\n..hidden\r\nline 2\r\n.\r\n"
            );
            assert_eq!(
                encode_all(MSG, Some(100), chunk),
                encode_all(MSG, None, chunk)
            );
        }
        // A message without a body: TOP gives the header.
        assert_eq!(encode_all(b"A: 1\r\n", Some(3), 2), b"A: 1\r\n.\r\n");
    }
}
