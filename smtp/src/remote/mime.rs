//! What a message needs from the receiving server: 8BITMIME (RFC 6152) when any byte is
//! 8-bit, SMTPUTF8 (RFC 6531) when an envelope address is not ASCII, or when the sender asked
//! for SMTPUTF8 and the header is not ASCII (RFC 6532 UTF-8 headers).
//!
//! The bytes decide rather than the BODY= the sender declared: mail from sendmail, forwards and
//! bounces carries no declaration, and a declaration of 8BITMIME over 7-bit bytes needs nothing.
//! A raw 8-bit header from a sender that did not ask for SMTPUTF8 is treated as 8-bit content
//! (sent as it is), and a sender that asked for SMTPUTF8 over an all-ASCII message needs
//! nothing special; Postfix decides both the same way.
//!
//! SECURITY: the message is read in 64 KiB pieces (at most once; the scan stops as soon as the
//! answer is known), never held whole.

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// What the bytes hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    /// A byte with the high bit set anywhere.
    pub eight_bit: bool,
    /// Such a byte in the header (before the first empty line).
    pub header_non_ascii: bool,
}

/// What the server must offer (or be told on MAIL FROM).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Send `BODY=8BITMIME` when offered; without it the bytes go as they are (RFC 6152 leaves
    /// the choice to the client; qmail and Postfix's non-MIME path do the same; bouncing mail
    /// that nearly every server accepts anyway would lose more than it protects).
    pub eight_bit: bool,
    /// Send `SMTPUTF8`; a server without it cannot take the message (5.6.7).
    pub smtputf8: bool,
}

impl Needs {
    /// `asked`: the original MAIL FROM carried SMTPUTF8.
    pub fn of(content: Content, asked: bool, sender: &str, recipients: &[String]) -> Needs {
        let addresses = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        Needs {
            eight_bit: content.eight_bit,
            smtputf8: addresses || (asked && content.header_non_ascii),
        }
    }
}

/// Incremental scan, fed piece by piece.
#[derive(Debug, Default)]
pub struct Scanner {
    in_body: bool,
    /// Bytes other than CR on the current header line so far.
    line: usize,
    content: Content,
}

impl Scanner {
    /// True once nothing more can change the answer.
    pub fn settled(&self) -> bool {
        self.in_body && self.content.eight_bit
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        while !self.in_body {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            if b >= 0x80 {
                self.content.eight_bit = true;
                self.content.header_non_ascii = true;
            }
            match b {
                b'\n' if self.line == 0 => self.in_body = true,
                b'\n' => self.line = 0,
                b'\r' => {}
                _ => self.line += 1,
            }
        }
        if !self.content.eight_bit && bytes.iter().any(|b| *b >= 0x80) {
            self.content.eight_bit = true;
        }
    }

    pub fn finish(self) -> Content {
        self.content
    }
}

/// Scans the message open at `message` (from offset 0; the descriptor is cloned, its offset
/// is shared, and the sender seeks again before sending).
pub async fn scan(message: &std::fs::File) -> std::io::Result<Content> {
    let mut file = tokio::fs::File::from_std(message.try_clone()?);
    file.seek(std::io::SeekFrom::Start(0)).await?;
    let mut scanner = Scanner::default();
    let mut chunk = vec![0u8; 64 * 1024];
    while !scanner.settled() {
        let got = file.read(&mut chunk).await?;
        if got == 0 {
            break;
        }
        scanner.push(&chunk[..got]);
    }
    Ok(scanner.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_pieces(pieces: &[&[u8]]) -> Content {
        let mut s = Scanner::default();
        for p in pieces {
            s.push(p);
        }
        s.finish()
    }

    #[test]
    fn the_header_ends_at_the_first_empty_line_even_across_pieces() {
        let plain = scan_pieces(&[b"Subject: hi\r\n\r\nbody\r\n"]);
        assert_eq!(plain, Content::default());
        let body = scan_pieces(&[b"Subject: hi\r\n\r", b"\nb\xc3\xa9\r\n"]);
        assert_eq!(
            body,
            Content {
                eight_bit: true,
                header_non_ascii: false
            }
        );
        let header = scan_pieces(&[b"Subject: h\xc3\xa9\r\n", b"\r\nbody\r\n"]);
        assert_eq!(
            header,
            Content {
                eight_bit: true,
                header_non_ascii: true
            }
        );
        // No empty line: all header. A bare LF also ends a line.
        assert!(scan_pieces(&[b"A: b\r\nC: \xff"]).header_non_ascii);
        assert!(!scan_pieces(&[b"A: b\n\n\xff"]).header_non_ascii);
        assert!(
            !scan_pieces(&[b"\r\n\xff"]).header_non_ascii,
            "no header at all"
        );
    }

    #[test]
    fn smtputf8_is_needed_for_addresses_or_an_asked_for_utf8_header() {
        let utf8_header = Content {
            eight_bit: true,
            header_non_ascii: true,
        };
        let ascii = Content::default();
        let rcpt = |r: &str| vec![r.to_string()];
        assert!(Needs::of(ascii, false, "a@b", &rcpt("ü@c.example")).smtputf8);
        assert!(Needs::of(ascii, false, "ä@b", &rcpt("u@c.example")).smtputf8);
        assert!(Needs::of(utf8_header, true, "a@b", &rcpt("u@c.example")).smtputf8);
        assert!(!Needs::of(utf8_header, false, "a@b", &rcpt("u@c.example")).smtputf8);
        assert!(!Needs::of(ascii, true, "a@b", &rcpt("u@c.example")).smtputf8);
        assert!(Needs::of(utf8_header, false, "", &rcpt("u@c.example")).eight_bit);
    }

    #[tokio::test]
    async fn scans_a_file_from_its_start() {
        use std::io::{Seek as _, Write as _};
        let mut f = tempfile::tempfile().expect("tempfile");
        let mut big = b"Subject: x\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', 200_000));
        big.extend_from_slice("é\r\n".as_bytes());
        f.write_all(&big).expect("write");
        f.seek(std::io::SeekFrom::End(0)).expect("seek");
        let c = scan(&f).await.expect("scan");
        assert!(c.eight_bit && !c.header_non_ascii);
    }
}
