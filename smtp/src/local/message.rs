//! The message handed over by the queue as an open file descriptor: positional reads only,
//! bounded in size, with the header section read separately for the loop check.
//!
//! SECURITY: the descriptor's file offset is shared with the queue (and with any other delivery
//! of the same file running now), so it is never moved: every read is a `pread` at an offset we
//! keep ourselves, starting from 0. Nothing trusts the size the file claims: the descriptor must
//! be a regular file, and reads stop with `FileTooLarge` once `limit` bytes are passed, however
//! large the file grows. The header section is read into memory up to `MAX_HEADER` only; the
//! rest of the message is streamed and never held whole.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

/// The largest message delivered (smtpd's default limit is 35 MiB; leave room for forwards and
/// bounces).
pub const MAX_MESSAGE: u64 = 100 * 1024 * 1024;
/// The most header bytes read for the loop check; a longer header is looked at up to here.
pub const MAX_HEADER: usize = 1024 * 1024;
/// The size of one read.
const CHUNK: usize = 64 * 1024;

/// Why a descriptor cannot be used as a message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message descriptor is not a regular file")]
    NotAFile,
    #[error("message too large ({0} bytes, limit {MAX_MESSAGE})")]
    TooLarge(u64),
    #[error("cannot read the message: {0}")]
    Io(#[from] io::Error),
}

/// One message, read-only, by position.
#[derive(Debug)]
pub struct Message {
    file: File,
    limit: u64,
}

impl Message {
    /// Takes the descriptor received with an `L` request.
    pub fn from_fd(fd: OwnedFd, limit: u64) -> Result<Message, MessageError> {
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(MessageError::NotAFile);
        }
        if meta.len() > limit {
            return Err(MessageError::TooLarge(meta.len()));
        }
        Ok(Message { file, limit })
    }

    /// Reads at `offset` into `buf` (fewer bytes near the end; 0 at the end). Past `limit` it
    /// fails with `ErrorKind::FileTooLarge` if there is anything more to read.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(offset);
        if room == 0 {
            let mut probe = [0u8; 1];
            return match self.read_raw(offset, &mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("message larger than {} bytes", self.limit),
                )),
            };
        }
        let want = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        self.read_raw(offset, buf.get_mut(..want).unwrap_or_default())
    }

    fn read_raw(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Up to `max` bytes from `offset` (fewer at the end of the message).
    pub fn chunk(&self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let mut got = 0;
        while got < max {
            let n = self.read_at(offset + got as u64, buf.get_mut(got..).unwrap_or_default())?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// The header section: everything before the first empty line (not included), or the first
    /// `max` bytes when there is no empty line that early.
    pub fn header(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut head: Vec<u8> = Vec::new();
        while head.len() < max {
            let from = head.len().saturating_sub(3);
            let piece = self.chunk(head.len() as u64, CHUNK.min(max - head.len()))?;
            if piece.is_empty() {
                break;
            }
            head.extend_from_slice(&piece);
            // A message that starts with an empty line has an empty header.
            if head.starts_with(b"\r\n") || head.starts_with(b"\n") {
                return Ok(Vec::new());
            }
            if let Some(end) = header_end(&head, from) {
                head.truncate(end);
                return Ok(head);
            }
        }
        head.truncate(max);
        Ok(head)
    }

    /// The open message, to hand on to another process (moat-lists) as a descriptor.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }

    /// A `Read` over the whole message from offset 0 (the descriptor's offset is not touched).
    pub fn reader(&self) -> MessageReader<'_> {
        MessageReader {
            message: self,
            offset: 0,
        }
    }
}

/// Where the header ends: the index just past the last header line's line end, when an empty
/// line follows it (searching from `from`).
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    let crlf = memchr::memmem::find(tail, b"\n\r\n");
    let lf = memchr::memmem::find(tail, b"\n\n");
    let at = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(from + at + 1)
}

/// Sequential reads over a `Message`, each one a `pread`.
pub struct MessageReader<'a> {
    message: &'a Message,
    offset: u64,
}

impl Read for MessageReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.message.read_at(self.offset, buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn message(bytes: &[u8], limit: u64) -> (File, Result<Message, MessageError>) {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(bytes).expect("write");
        let fd = OwnedFd::from(f.try_clone().expect("dup"));
        (f, Message::from_fd(fd, limit))
    }

    #[test]
    fn reads_from_zero_whatever_the_shared_offset() {
        let text = b"Subject: x\r\n\r\nbody\r\n";
        let (mut f, m) = message(text, MAX_MESSAGE);
        let m = m.expect("message");
        f.seek(SeekFrom::Start(5)).expect("seek");
        let mut all = Vec::new();
        m.reader().read_to_end(&mut all).expect("read");
        assert_eq!(all, text);
        assert_eq!(f.stream_position().expect("pos"), 5, "offset untouched");
        assert_eq!(m.header(MAX_HEADER).expect("header"), b"Subject: x\r\n");
    }

    #[test]
    fn the_limit_holds_even_if_the_file_grows() {
        let (mut f, m) = message(b"0123456789", 10);
        let m = m.expect("exactly at the limit");
        f.write_all(b"more").expect("grow");
        let err = m
            .reader()
            .read_to_end(&mut Vec::new())
            .expect_err("too big");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(matches!(
            message(b"01234567890", 10).1,
            Err(MessageError::TooLarge(11))
        ));
    }

    #[test]
    fn not_a_regular_file() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert!(matches!(
            Message::from_fd(OwnedFd::from(a), MAX_MESSAGE),
            Err(MessageError::NotAFile)
        ));
    }

    #[test]
    fn header_sections() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"A: 1\r\nB: 2\r\n\r\nbody", b"A: 1\r\nB: 2\r\n"),
            (b"A: 1\nB: 2\n\nbody\n\n", b"A: 1\nB: 2\n"),
            (b"\r\nbody only", b""),
            (b"A: 1\r\nno body", b"A: 1\r\nno body"),
            (b"", b""),
            (b"A: 1\r\n\r\n", b"A: 1\r\n"),
        ];
        for (input, want) in cases {
            let (_f, m) = message(input, MAX_MESSAGE);
            assert_eq!(
                m.expect("m").header(MAX_HEADER).expect("header"),
                want,
                "{input:?}"
            );
        }
        // A header longer than the bound is cut, and a blank line across a chunk edge is found.
        let mut long = b"X: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 3 * CHUNK));
        let (_f, m) = message(&long, MAX_MESSAGE);
        assert_eq!(m.expect("m").header(1000).expect("header").len(), 1000);
        let mut edge = vec![b'a'; CHUNK - 2];
        edge.extend_from_slice(b"\r\n\r\nbody");
        let (_f, m) = message(&edge, MAX_MESSAGE);
        assert_eq!(
            m.expect("m").header(MAX_HEADER).expect("header").len(),
            CHUNK
        );
    }
}
