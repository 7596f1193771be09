//! The message as it goes on the wire after DATA: CRLF line ends only (a bare LF or bare CR
//! becomes CRLF), a leading `.` doubled (RFC 5321 §4.5.2), and the final `.` line.
//!
//! SECURITY: whatever the queue file holds, the peer sees exactly one end-of-data sequence, at
//! the end: no line the message holds can end the DATA early (SMTP smuggling).

/// A streaming transformer: feed chunks with `push`, end with `finish`.
#[derive(Debug)]
pub struct DotStuffer {
    line_start: bool,
    cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            line_start: true,
            cr: false,
        }
    }
}

impl DotStuffer {
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 4);
        for &b in input {
            if self.cr {
                self.cr = false;
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                }
                _ => {
                    if self.line_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.line_start = false;
                }
            }
        }
    }

    /// Ends the last line if needed and adds `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.cr {
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
        }
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut d = DotStuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn stuffs_dots_and_fixes_line_ends() {
        assert_eq!(stuff(&[b"a\r\n.b\r\n"]), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuff(&[b".\r\n"]), b"..\r\n.\r\n");
        assert_eq!(stuff(&[b"a\r", b"\n.", b"x"]), b"a\r\n..x\r\n.\r\n");
        assert_eq!(stuff(&[b"a\n.\nb\rc"]), b"a\r\n..\r\nb\r\nc\r\n.\r\n");
        assert_eq!(stuff(&[b"x\r"]), b"x\r\n.\r\n");
        assert_eq!(stuff(&[b""]), b".\r\n");
        assert_eq!(
            stuff(&[b"a\r\n\r\n.\r\n.\r\n"]),
            b"a\r\n\r\n..\r\n..\r\n.\r\n"
        );
    }
}
