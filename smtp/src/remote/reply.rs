//! Reading SMTP replies from a server we do not trust, with hard bounds: a line longer than
//! `MAX_LINE`, a reply of more than `MAX_LINES` lines or `MAX_REPLY` bytes, or a malformed line
//! is an error (the caller gives up on the connection: a temporary failure). The buffer never
//! holds more than `MAX_LINE` + one read, so a 10 MB reply or an endless line costs kilobytes.
//!
//! SECURITY: reply texts end up in logs, done marks and bounces: `Reply::text` keeps printable
//! ASCII only and cuts it short.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512 with CRLF; be lenient).
pub const MAX_LINE: usize = 2048;
/// The most lines in one reply (EHLO lists a dozen or two).
pub const MAX_LINES: usize = 100;
/// The most bytes in one reply.
pub const MAX_REPLY: usize = 64 * 1024;
/// The longest text kept from a reply.
const MAX_TEXT: usize = 400;

/// One reply: its code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// 2, 3, 4 or 5.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// `code text` on one line, printable ASCII only, at most `MAX_TEXT` characters.
    pub fn text(&self) -> String {
        let mut out = format!("{} {}", self.code, self.lines.join(" "));
        out.retain(|c| c.is_ascii_graphic() || c == ' ');
        if out.len() > MAX_TEXT {
            out.truncate(MAX_TEXT);
        }
        out.trim_end().to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("reply longer than {MAX_LINES} lines or {MAX_REPLY} bytes")]
    TooLong,
    #[error("malformed reply line")]
    Malformed,
}

/// The bounded line buffer of one connection (kept across replies: pipelined replies may
/// arrive in one read).
#[derive(Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
}

impl ReplyReader {
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Bytes received and not yet used (after a STARTTLS 220 this must be empty).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Reads one whole reply.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Reply, ReplyError> {
        let mut code = None;
        let mut lines = Vec::new();
        let mut total = 0usize;
        loop {
            let line = self.line(io).await?;
            total += line.len() + 2;
            let (c, last, text) = parse_line(&line)?;
            if *code.get_or_insert(c) != c {
                return Err(ReplyError::Malformed);
            }
            lines.push(text);
            if last {
                return Ok(Reply { code: c, lines });
            }
            if lines.len() >= MAX_LINES || total > MAX_REPLY {
                return Err(ReplyError::TooLong);
            }
        }
    }

    async fn line<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Vec<u8>, ReplyError> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_LINE {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            let mut chunk = [0u8; 4096];
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(ReplyError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `250-text`, `250 text` or `250`: (code, last line?, text).
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let digits = line.get(..3).ok_or(ReplyError::Malformed)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::Malformed);
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(200..=599).contains(&code) {
        return Err(ReplyError::Malformed);
    }
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(ReplyError::Malformed),
    };
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
    Ok((code, last, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields `total` bytes of `pattern` and counts what was taken.
    struct Endless {
        pattern: &'static [u8],
        given: usize,
    }

    impl AsyncRead for Endless {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            while buf.remaining() > 0 {
                let at = self.given % self.pattern.len();
                buf.put_slice(&self.pattern[at..at + 1]);
                self.given += 1;
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn replies_multi_line_and_pipelined() {
        let mut input: &[u8] =
            b"250-mx.example\r\n250-SIZE 1000\r\n250 PIPELINING\r\n550 5.1.1 no\r\n";
        let mut r = ReplyReader::new();
        let first = r.read(&mut input).await.expect("ehlo");
        assert_eq!(first.code, 250);
        assert_eq!(first.lines, vec!["mx.example", "SIZE 1000", "PIPELINING"]);
        let second = r.read(&mut input).await.expect("rcpt");
        assert_eq!(second.text(), "550 5.1.1 no");
        assert!(matches!(r.read(&mut input).await, Err(ReplyError::Closed)));
        for bad in [
            &b"25x ok\r\n"[..],
            b"250-a\r\n251 b\r\n",
            b"250xok\r\n",
            b"099 x\r\n",
        ] {
            let mut input = bad;
            assert!(ReplyReader::new().read(&mut input).await.is_err());
        }
    }

    #[tokio::test]
    async fn hostile_replies_cost_bounded_reads() {
        // An endless multi-line reply: refused after MAX_LINES lines.
        let mut io = Endless {
            pattern: b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
            given: 0,
        };
        let mut r = ReplyReader::new();
        assert!(matches!(r.read(&mut io).await, Err(ReplyError::TooLong)));
        assert!(io.given < 64 * 1024, "read {} bytes", io.given);
        // A line without an end: refused once longer than MAX_LINE.
        let mut io = Endless {
            pattern: b"x",
            given: 0,
        };
        let mut r = ReplyReader::new();
        assert!(matches!(
            r.read(&mut io).await,
            Err(ReplyError::LineTooLong)
        ));
        assert!(io.given <= MAX_LINE + 8192, "read {} bytes", io.given);
    }
}
