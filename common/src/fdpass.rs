//! Passing open file descriptors and checking who is on the other end of a Unix socket.
//!
//! Messages travel between Moat's processes as open files (the queue hands moat-local a read-only
//! descriptor of the message, never a path), and every server checks its peer's uid with
//! SO_PEERCRED before it believes a word.
//!
//! SECURITY: a received descriptor arrives close-on-exec; a message carrying more descriptors than
//! asked for has the extra ones closed, and a truncated control message is an error, so a peer
//! cannot make us leak or mistake descriptors.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

/// The most descriptors one message may carry.
pub const MAX_FDS: usize = 4;

/// Who is connected: from the kernel, not from anything the peer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// The credentials of the process on the other end of a connected Unix socket.
pub fn peer_of(socket: impl AsFd) -> std::io::Result<Peer> {
    let cred = rustix::net::sockopt::socket_peercred(socket)?;
    Ok(Peer {
        pid: cred.pid.as_raw_nonzero().get(),
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    })
}

/// Sends `bytes` with `fds` attached (one sendmsg; the descriptors ride with the first byte).
/// Returns how many bytes were sent; the caller sends any rest without descriptors.
pub fn send_with_fds(
    socket: impl AsFd,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "too many descriptors for one message",
        ));
    }
    if bytes.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "descriptors must travel with at least one byte",
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("control buffer too small"));
    }
    Ok(sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?)
}

/// Receives into `buf`; returns the byte count (0 = the peer closed) and any descriptors.
/// Non-blocking sockets return `WouldBlock` as usual.
pub fn recv_with_fds(socket: impl AsFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = recvmsg(
        socket,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            // Every received descriptor is owned (and so closed on drop) even past the limit.
            fds.extend(received);
        }
    }
    if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "peer sent more descriptors than accepted",
        ));
    }
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "peer sent more descriptors than accepted",
        ));
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_file_crosses_a_socket() {
        let (a, b) = UnixStream::pair().expect("pair");
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"Subject: hi\r\n\r\nbody\r\n")
            .expect("write");
        file.rewind().expect("rewind");
        let sent = send_with_fds(&a, b"M", &[file.as_fd()]).expect("send");
        assert_eq!(sent, 1);
        drop(file);
        let mut buf = [0u8; 16];
        let (n, mut fds) = recv_with_fds(&b, &mut buf).expect("recv");
        assert_eq!((n, buf[0], fds.len()), (1, b'M', 1));
        let mut got = String::new();
        std::fs::File::from(fds.remove(0))
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "Subject: hi\r\n\r\nbody\r\n");
    }

    #[test]
    fn peer_credentials_come_from_the_kernel() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let peer = peer_of(&a).expect("peercred");
        assert_eq!(peer.uid, rustix::process::getuid().as_raw());
        assert_eq!(peer.pid, std::process::id() as i32);
    }

    #[test]
    fn plain_bytes_and_limits() {
        let (a, b) = UnixStream::pair().expect("pair");
        assert!(send_with_fds(&a, b"", &[]).is_err());
        let files: Vec<std::fs::File> = (0..=MAX_FDS)
            .map(|_| tempfile::tempfile().expect("tempfile"))
            .collect();
        let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        assert!(send_with_fds(&a, b"x", &fds).is_err());
        assert_eq!(send_with_fds(&a, b"xyz", &[]).expect("send"), 3);
        let mut buf = [0u8; 8];
        let (n, fds) = recv_with_fds(&b, &mut buf).expect("recv");
        assert_eq!((n, fds.len()), (3, 0));
    }
}
