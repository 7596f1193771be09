//! A record connection over a tokio Unix socket: read and write `wire::Record`s, optionally
//! with file descriptors attached. Servers and clients of every internal protocol use this.
//!
//! SECURITY: reads are bounded by `wire::MAX_FRAME`; a peer that stops mid-frame is cut off by
//! the caller's timeout (`with_timeout`), never waited on forever; descriptors received are owned
//! (closed on drop) and only handed out when the record that asked for them arrives.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use crate::fdpass::{MAX_FDS, Peer, peer_of, recv_with_fds, send_with_fds};
use crate::wire::{Record, Status, WireError};

/// How long an internal peer may take to answer one request before we give up (temporary).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes read from the socket at a time.
const RECV_CHUNK: usize = 16 * 1024;

/// One end of an internal connection.
pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// Connects to a server's socket by path.
    pub async fn connect(path: &Path) -> std::io::Result<Conn> {
        let stream = UnixStream::connect(path).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", path.display()),
            )
        })?;
        Ok(Conn::new(stream))
    }

    /// The kernel's word on who the peer is.
    pub fn peer(&self) -> std::io::Result<Peer> {
        peer_of(&self.stream)
    }

    /// Sends one record.
    pub async fn send(&mut self, record: &Record) -> std::io::Result<()> {
        let bytes = record.encode().map_err(invalid)?;
        self.stream.write_all(&bytes).await
    }

    /// Sends one record with descriptors attached to its first byte.
    pub async fn send_with_fds(
        &mut self,
        record: &Record,
        fds: &[BorrowedFd<'_>],
    ) -> std::io::Result<()> {
        let bytes = record.encode().map_err(invalid)?;
        let sent = loop {
            self.stream.writable().await?;
            match self.stream.try_io(Interest::WRITABLE, || {
                send_with_fds(&self.stream, &bytes, fds)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        self.stream.write_all(&bytes[sent..]).await
    }

    /// Receives the next record; `Ok(None)` on a clean end of stream between records.
    pub async fn recv(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            if let Some((record, used)) = Record::decode(&self.buf).map_err(invalid)? {
                self.buf.drain(..used);
                return Ok(Some(record));
            }
            self.stream.readable().await?;
            // The chunk is on the heap, allocated only once the socket is readable: a 16 KiB
            // array here would sit in every future awaiting a record (one per idle IMAP/POP3
            // connection waiting on a login) and cost its size for as long as it waits.
            let mut chunk = vec![0u8; RECV_CHUNK];
            let got = self.stream.try_io(Interest::READABLE, || {
                recv_with_fds(self.stream.as_fd(), &mut chunk)
            });
            match got {
                Ok((0, _)) if self.buf.is_empty() => return Ok(None),
                Ok((0, _)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "peer closed the connection in the middle of a record",
                    ));
                }
                Ok((n, fds)) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    self.fds.extend(fds);
                    // Bound what a peer can make us hold: a legitimate record carries at
                    // most MAX_FDS descriptors, and they are taken as soon as it arrives.
                    if self.fds.len() > MAX_FDS {
                        self.fds.clear();
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "peer sent more descriptors than one record may carry",
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives the next record, which must exist (end of stream is an error).
    pub async fn expect(&mut self) -> std::io::Result<Record> {
        self.recv().await?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection without answering",
            )
        })
    }

    /// Takes the oldest descriptor received so far (descriptors arrive with their record).
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        if self.fds.is_empty() {
            None
        } else {
            Some(self.fds.remove(0))
        }
    }

    /// Reads a `K`/`Z`/`D` status reply.
    pub async fn status(&mut self) -> std::io::Result<(Status, Record)> {
        let record = self.expect().await?;
        let status = Status::from_record(&record).map_err(invalid)?;
        Ok((status, record))
    }

    pub fn into_inner(self) -> UnixStream {
        self.stream
    }
}

fn invalid(e: WireError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Runs `fut` with a deadline; a timeout becomes an `io::ErrorKind::TimedOut` error.
pub async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs()),
        )),
    }
}

/// Turns a listening descriptor from the setup channel into a tokio listener.
pub fn unix_listener(fd: OwnedFd) -> std::io::Result<tokio::net::UnixListener> {
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    std_listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(std_listener)
}

/// Turns a listening descriptor from the setup channel into a tokio TCP listener.
pub fn tcp_listener(fd: OwnedFd) -> std::io::Result<tokio::net::TcpListener> {
    let std_listener = std::net::TcpListener::from(fd);
    std_listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std_listener)
}

/// Parses a `peers_*` setting ("1000,1001") into uids; garbage is an error, not "nobody".
pub fn parse_uids(text: &str) -> Result<Vec<u32>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad uid {s:?} in peer list")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[tokio::test]
    async fn records_and_descriptors_round_trip() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (mut a, mut b) = (Conn::new(a), Conn::new(b));
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"message").expect("write");
        file.rewind().expect("rewind");
        a.send_with_fds(
            &Record::new(b'L').field("id").field("rcpt"),
            &[file.as_fd()],
        )
        .await
        .expect("send");
        a.send(&Status::Ok("fine".into()).to_record())
            .await
            .expect("send");
        let r = b.expect().await.expect("recv");
        assert_eq!(r.kind, b'L');
        let mut text = String::new();
        std::fs::File::from(b.take_fd().expect("fd"))
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "message");
        let (status, _) = b.status().await.expect("status");
        assert_eq!(status, Status::Ok("fine".into()));
        drop(a);
        assert!(b.recv().await.expect("eof").is_none());
        assert_eq!(b.peer().expect("peer").pid, std::process::id() as i32);
    }

    #[tokio::test]
    async fn a_half_record_then_close_is_an_error() {
        let (a, b) = UnixStream::pair().expect("pair");
        let mut b = Conn::new(b);
        let bytes = Record::new(b'R').field("x@y").encode().expect("encode");
        let mut a = a;
        a.write_all(&bytes[..5]).await.expect("write");
        drop(a);
        assert!(b.recv().await.is_err());
    }

    #[test]
    fn uid_lists() {
        assert_eq!(parse_uids("1000, 1001,"), Ok(vec![1000, 1001]));
        assert_eq!(parse_uids(""), Ok(vec![]));
        assert!(parse_uids("root").is_err());
    }
}
