//! Handing a logged-in client from a pre-auth login process (moat-imap-login, moat-pop3-login)
//! to its mail process (moat-imapd, moat-pop3d): Dovecot's split, docs/PROTOCOLS.md "handoff".
//!
//! The login process connects to the mail process's `handoff` socket and sends one record
//! `H` [token, client address, `plain`/`tls`, tag, pending bytes] with one descriptor attached:
//! - plain: the client's TCP socket itself. The login process closes its copy as soon as the
//!   mail process has taken it, so after the login the data path is exactly what it was
//!   before the split: one process, one socket, no copy.
//! - TLS: the login process keeps the TLS session (the key never leaves it) and passes one
//!   end of a socketpair; it then relays plaintext between that and the client until either
//!   side ends (Dovecot's `login_proxy` without `login_process_per_connection`).
//!
//! The mail process (`receive`) checks the sender's uid, reads the record, redeems the token
//! with moat-auth (in `daemon::access`) and answers `K` (ready to take it) or `Z` [reason]
//! (refused: the login process still holds the client and tells it to try again later). After
//! a `K` the login process commits with `G` and lets go of the client; only then does the mail
//! process start serving it. A login process that gave up waiting (its deadline passed, or it
//! died) never sends the `G`, so a client is never served by both processes at once, even when
//! a restarted mail process finds stale handoffs queued on its socket.
//!
//! SECURITY: the mail process believes nothing the login process says about the user: the
//! token is redeemed with moat-auth, which issued it for one service, once, for 30 s. For a
//! plain client the address is read from the socket (getpeername), not from the record. The
//! descriptor must be what the record says (SO_TYPE and SO_DOMAIN: a connected TCP socket, or
//! a Unix stream socket for a relay). Records are bounded by `wire::MAX_FRAME`, the pending bytes by `MAX_PENDING`, and
//! a sender that stalls is cut off after `HANDOFF_TIMEOUT`. A compromised login process can
//! read and change the TLS sessions it relays (as Dovecot's shared login processes can); it
//! cannot log in as anyone without their password.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketType, sockopt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::client::auth::valid_token;
use crate::conn::{Conn, with_timeout};
use crate::daemon::stream::Stream;
use crate::fdpass::peer_of;
use crate::wire::{Record, Status};

/// The most bytes a client may have pipelined after its login command that travel with it.
pub const MAX_PENDING: usize = 32 * 1024;
/// The longest tag handed over (IMAP tags are short; the session bounds them far below this).
pub const MAX_TAG: usize = 256;
/// How long either side waits for the other during a handoff.
pub const HANDOFF_TIMEOUT: Duration = Duration::from_secs(10);
/// After the mail process ends a relayed session, how long the client gets to take our TLS
/// close_notify before the connection is dropped.
const RELAY_LINGER: Duration = Duration::from_secs(2);
/// Bytes copied at a time by a relay: a TLS record's worth of plaintext.
const RELAY_CHUNK: usize = 16 * 1024;

/// What travels with a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// moat-auth's one-time login token.
    pub token: String,
    /// The client's address (for a TLS client; a plain one's is read from its socket).
    pub peer: SocketAddr,
    /// TLS is up: the descriptor is the login process's relay, not the client's socket.
    pub tls: bool,
    /// The tag of the command that logged in (IMAP), "" for POP3.
    pub tag: String,
    /// Bytes the client sent after that command (pipelining), not yet parsed.
    pub pending: Vec<u8>,
}

impl Handoff {
    fn record(&self) -> Record {
        Record::new(b'H')
            .field(&self.token)
            .field(self.peer.to_string())
            .field(if self.tls { "tls" } else { "plain" })
            .field(&self.tag)
            .field(&self.pending)
    }

    fn from_record(r: &Record) -> Result<Handoff, String> {
        if r.kind != b'H' || r.fields.len() != 5 {
            return Err(format!(
                "expected a handoff record H with 5 fields, got {:?} with {}",
                char::from(r.kind),
                r.fields.len()
            ));
        }
        let text = |i: usize| r.text(i).map_err(|e| e.to_string());
        let token = text(0)?;
        if !valid_token(token) {
            return Err("the token is not a token".into());
        }
        let peer = text(1)?
            .parse()
            .map_err(|_| "the client address is not an address".to_string())?;
        let tls = match text(2)? {
            "tls" => true,
            "plain" => false,
            other => return Err(format!("unknown transport {other:?}")),
        };
        let tag = text(3)?;
        if tag.len() > MAX_TAG || tag.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("the tag is not an IMAP tag".into());
        }
        let pending = r.fields.get(4).cloned().unwrap_or_default();
        if pending.len() > MAX_PENDING {
            return Err(format!("more than {MAX_PENDING} pending bytes"));
        }
        Ok(Handoff {
            token: token.to_string(),
            peer,
            tls,
            tag: tag.to_string(),
            pending,
        })
    }
}

/// Login side: hands `stream` (a logged-in client) to the mail process listening on `socket`.
/// A plain client is passed and this returns at once; a TLS client is relayed until its session
/// ends, each write to it within `idle` (the protocol's idle timeout, which bounds the mail
/// process's own writes: a client that stops reading must not hold the relay forever). `Ok`
/// says how, for the log. On failure the client comes back untouched with the reason, to be
/// told to try again later.
pub async fn hand_off(
    socket: &Path,
    stream: Stream,
    handoff: &Handoff,
    idle: Duration,
) -> Result<String, (Stream, String)> {
    if handoff.pending.len() > MAX_PENDING {
        return Err((
            stream,
            format!("the client pipelined more than {MAX_PENDING} bytes after its login"),
        ));
    }
    let record = handoff.record();
    match stream {
        Stream::Plain(tcp) => match pass(socket, &record, tcp.as_fd()).await {
            Ok(()) => Ok("handed to the mail process".into()),
            Err(why) => Err((Stream::Plain(tcp), why)),
        },
        Stream::Tls(tls) => {
            let (ours, theirs) = match UnixStream::pair() {
                Ok(pair) => pair,
                Err(e) => return Err((Stream::Tls(tls), format!("cannot make a relay: {e}"))),
            };
            if let Err(why) = pass(socket, &record, theirs.as_fd()).await {
                return Err((Stream::Tls(tls), why));
            }
            drop(theirs);
            let (up, down) = relay(*tls, ours, idle).await;
            Ok(format!(
                "handed to the mail process, TLS relayed ({up} bytes from the client, {down} to it)"
            ))
        }
        other => Err((
            other,
            "only a plain or TLS client can be handed over".into(),
        )),
    }
}

/// Sends the record with `fd` and waits for the mail process's answer.
async fn pass(
    socket: &Path,
    record: &Record,
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<(), String> {
    let answer = with_timeout(HANDOFF_TIMEOUT, async {
        let mut conn = Conn::connect(socket).await?;
        conn.send_with_fds(record, &[fd]).await?;
        let (status, _) = conn.status().await?;
        Ok((status, conn))
    })
    .await;
    match answer {
        Ok((Status::Ok(_), mut conn)) => {
            // The commit: from here on the client is the mail process's.
            conn.send(&Record::new(b'G'))
                .await
                .map_err(|e| format!("cannot hand the client to the mail process: {e}"))
        }
        Ok((Status::Permanent(why) | Status::Temporary(why), _)) => {
            Err(format!("the mail process refused the client: {why}"))
        }
        Err(e) => Err(format!("cannot hand the client to the mail process: {e}")),
    }
}

/// Copies plaintext both ways between the client's TLS session and the mail process until one
/// side ends; returns the bytes from and to the client. When the mail process ends the session
/// the client gets our close_notify; when the client leaves, the mail process sees end-of-file.
async fn relay<C>(client: C, mail: UnixStream, idle: Duration) -> (u64, u64)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut mail_read, mut mail_write) = mail.into_split();
    let (up_bytes, down_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut up = std::pin::pin!(async {
        // The mail process reads with its own idle deadline; a write here waits at most that.
        copy_counting(&mut client_read, &mut mail_write, &up_bytes, idle).await;
        let _ = mail_write.shutdown().await;
    });
    let mut down = std::pin::pin!(async {
        copy_counting(&mut mail_read, &mut client_write, &down_bytes, idle).await;
        let _ = tokio::time::timeout(RELAY_LINGER, client_write.shutdown()).await;
    });
    tokio::select! {
        () = &mut down => {
            // The mail process is done (logout, timeout, stop): whatever the client still sends
            // has nobody to read it.
            let _ = tokio::time::timeout(RELAY_LINGER, &mut up).await;
        }
        () = &mut up => {
            // The client left or broke the TLS session; the mail process has seen end-of-file
            // and ends too (its idle timeout bounds this in any case).
            down.await;
        }
    }
    (
        up_bytes.load(Ordering::Relaxed),
        down_bytes.load(Ordering::Relaxed),
    )
}

/// Copies until end-of-file, an error on either side, or a write that takes longer than
/// `write_limit`, adding what it copied to `count` as it goes (so the count is right even when
/// the copy is abandoned).
async fn copy_counting<R, W>(from: &mut R, to: &mut W, count: &AtomicU64, write_limit: Duration)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let write = to.write_all(buf.get(..n).unwrap_or_default());
        if !matches!(tokio::time::timeout(write_limit, write).await, Ok(Ok(()))) {
            return;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Mail side: a client a login process is handing over, read from one connection to the
/// `handoff` socket.
pub struct Arrival {
    pub handoff: Handoff,
    client: OwnedFd,
    conn: Conn,
}

impl Arrival {
    /// Reads the handoff from `stream`, whose peer must have one of the uids in `senders`.
    pub async fn receive(stream: UnixStream, senders: &[u32]) -> Result<Arrival, String> {
        let sender = peer_of(&stream).map_err(|e| format!("cannot identify the sender: {e}"))?;
        if !senders.contains(&sender.uid) {
            return Err(format!(
                "permission denied: a handoff from uid {} pid {} (not in handoff_peers)",
                sender.uid, sender.pid
            ));
        }
        let mut conn = Conn::new(stream);
        let record = with_timeout(HANDOFF_TIMEOUT, conn.expect())
            .await
            .map_err(|e| format!("handoff from pid {}: {e}", sender.pid))?;
        let client = conn
            .take_fd()
            .ok_or_else(|| format!("handoff from pid {} without a client", sender.pid))?;
        let mut handoff = Handoff::from_record(&record)
            .map_err(|e| format!("bad handoff from pid {}: {e}", sender.pid))?;
        // The descriptor must be what the record says: a stream socket of the right family.
        let (want, what) = if handoff.tls {
            (&[AddressFamily::UNIX][..], "a Unix stream socket (a relay)")
        } else {
            (
                &[AddressFamily::INET, AddressFamily::INET6][..],
                "a TCP socket",
            )
        };
        let stream_kind = sockopt::socket_type(&client).ok() == Some(SocketType::STREAM);
        let family = sockopt::socket_domain(&client).ok();
        if !stream_kind || !family.is_some_and(|f| want.contains(&f)) {
            return Err(format!(
                "handoff from pid {}: the client is not {what}",
                sender.pid
            ));
        }
        if !handoff.tls {
            // The socket says who the client is; the record only repeats it.
            let tcp = std::net::TcpStream::from(client.try_clone().map_err(|e| e.to_string())?);
            handoff.peer = tcp.peer_addr().map_err(|e| {
                format!(
                    "handoff from pid {}: the client is not a connected TCP socket: {e}",
                    sender.pid
                )
            })?;
        }
        Ok(Arrival {
            handoff,
            client,
            conn,
        })
    }

    /// Takes the client: tells the login process so, waits for its commit (`G`), and returns
    /// the client's stream. `Err` (the login process gave up, or died): the client is not ours.
    pub async fn accept(mut self) -> Result<(Handoff, Stream), String> {
        let stream = if self.handoff.tls {
            let unix = std::os::unix::net::UnixStream::from(self.client);
            // A relay is a connected Unix stream socket; anything else is refused here.
            unix.peer_addr()
                .map_err(|e| format!("the relay is not a Unix stream socket: {e}"))?;
            unix.set_nonblocking(true).map_err(|e| e.to_string())?;
            Stream::Relayed(UnixStream::from_std(unix).map_err(|e| e.to_string())?)
        } else {
            let tcp = std::net::TcpStream::from(self.client);
            tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
            let tcp = TcpStream::from_std(tcp).map_err(|e| e.to_string())?;
            // Replies are small and interactive: no Nagle delay.
            let _ = tcp.set_nodelay(true);
            Stream::Plain(tcp)
        };
        let commit = with_timeout(HANDOFF_TIMEOUT, async {
            self.conn
                .send(&Status::Ok("ready".into()).to_record())
                .await?;
            self.conn.expect().await
        })
        .await
        .map_err(|e| format!("the login process did not commit the handoff: {e}"))?;
        if commit.kind != b'G' {
            return Err(format!(
                "the login process answered {:?} instead of committing the handoff",
                char::from(commit.kind)
            ));
        }
        Ok((self.handoff, stream))
    }

    /// Refuses the client (the login process keeps it and tells it to try later).
    pub async fn refuse(mut self, why: &str) {
        let _ = with_timeout(
            HANDOFF_TIMEOUT,
            self.conn.send(&Status::Temporary(why.into()).to_record()),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn sample(tls: bool) -> Handoff {
        Handoff {
            token: "0123456789abcdef".repeat(4),
            peer: "192.0.2.7:40000".parse().expect("addr"),
            tls,
            tag: "a1".into(),
            pending: b"b SELECT INBOX\r\n".to_vec(),
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let h = sample(true);
        assert_eq!(Handoff::from_record(&h.record()), Ok(h.clone()));
        let mut bad = h.clone();
        bad.token = "../../etc".into();
        assert!(Handoff::from_record(&bad.record()).is_err());
        bad = h.clone();
        bad.tag = "a b".into();
        assert!(Handoff::from_record(&bad.record()).is_err());
        bad = h.clone();
        bad.pending = vec![b'x'; MAX_PENDING + 1];
        assert!(Handoff::from_record(&bad.record()).is_err());
        let r = h.record().field("extra");
        assert!(Handoff::from_record(&r).is_err());
        let wrong = Record::new(b'H')
            .field(&h.token)
            .field("here")
            .field("tls")
            .field("a")
            .field("");
        assert!(Handoff::from_record(&wrong).is_err());
    }

    #[tokio::test]
    async fn a_relay_carries_both_ways_and_ends_with_the_mail_side() {
        let (client_side, mut client) = UnixStream::pair().expect("pair");
        let (ours, mut mail) = UnixStream::pair().expect("pair");
        let relaying = tokio::spawn(relay(client_side, ours, Duration::from_secs(5)));
        client.write_all(b"a NOOP\r\n").await.expect("write");
        let mut buf = [0u8; 8];
        mail.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"a NOOP\r\n");
        mail.write_all(b"* BYE\r\n").await.expect("write");
        drop(mail);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read to end");
        assert_eq!(got, b"* BYE\r\n");
        drop(client);
        let (up, down) = relaying.await.expect("relay");
        assert_eq!((up, down), (8, 7));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_does_not_hold_the_relay() {
        let (client_side, _client) = UnixStream::pair().expect("pair");
        let (ours, mut mail) = UnixStream::pair().expect("pair");
        let relaying = tokio::spawn(relay(client_side, ours, Duration::from_millis(200)));
        // More than the socket buffers hold; the client never reads a byte.
        let writing = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..256 {
                if mail.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let ended = tokio::time::timeout(Duration::from_secs(10), relaying).await;
        assert!(
            ended.is_ok(),
            "the relay must give up on a client that does not read"
        );
        writing.abort();
    }

    /// A client on loopback TCP: (the client's end, the server's end as a `Stream`).
    async fn tcp_client() -> (TcpStream, Stream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, Stream::Plain(server))
    }

    #[tokio::test]
    async fn a_plain_client_changes_process_and_a_refused_one_comes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("handoff.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let me = rustix::process::getuid().as_raw();
        let mail = tokio::spawn(async move {
            // The first client is taken and greeted, the second refused.
            let (unix, _) = listener.accept().await.expect("accept");
            let arrival = Arrival::receive(unix, &[me]).await.expect("receive");
            let (handoff, mut stream) = arrival.accept().await.expect("accept");
            stream
                .write_all(b"+OK resumed\r\n", Duration::from_secs(5))
                .await
                .expect("write");
            let (unix, _) = listener.accept().await.expect("accept");
            let arrival = Arrival::receive(unix, &[me]).await.expect("receive");
            arrival.refuse("no").await;
            handoff
        });
        let (mut client, stream) = tcp_client().await;
        let mut h = sample(false);
        h.peer = "192.0.2.1:1".parse().expect("addr");
        let idle = Duration::from_secs(5);
        let how = hand_off(&socket, stream, &h, idle)
            .await
            .map_err(|(_, e)| e);
        assert_eq!(how.as_deref(), Ok("handed to the mail process"));
        let mut line = [0u8; 13];
        client.read_exact(&mut line).await.expect("read");
        assert_eq!(&line, b"+OK resumed\r\n");
        let (_client2, stream) = tcp_client().await;
        let Err((Stream::Plain(_), why)) = hand_off(&socket, stream, &h, idle).await else {
            panic!("a refused client must come back");
        };
        assert!(why.contains("refused"), "{why}");
        let taken = mail.await.expect("mail side");
        // The address comes from the socket, not from what the login process said.
        assert_eq!(taken.peer, client.local_addr().expect("addr"));
        assert_eq!(taken.pending, h.pending);
    }

    #[tokio::test]
    async fn no_commit_no_client() {
        let (login, mail) = UnixStream::pair().expect("pair");
        let (_client, Stream::Plain(tcp)) = tcp_client().await else {
            panic!("plain");
        };
        let mut conn = Conn::new(login);
        conn.send_with_fds(&sample(false).record(), &[tcp.as_fd()])
            .await
            .expect("send");
        let me = rustix::process::getuid().as_raw();
        let arrival = Arrival::receive(mail, &[me]).await.expect("receive");
        // The login process reads the K, then gives up (dies, or its deadline passed).
        let taking = tokio::spawn(arrival.accept());
        let _ = conn.expect().await.expect("K");
        drop(conn);
        let refused = taking.await.expect("task");
        assert!(refused.is_err());
    }

    #[tokio::test]
    async fn only_the_named_uids_may_hand_over() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let me = rustix::process::getuid().as_raw();
        let refused = Arrival::receive(a, &[me.wrapping_add(1)]).await;
        assert!(
            refused
                .err()
                .is_some_and(|e| e.contains("permission denied"))
        );
    }
}
