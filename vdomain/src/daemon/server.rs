//! moat-auth's server loop: accept connections on `auth.sock`, check who is calling, serve
//! requests until the peer hangs up, and drain on shutdown.
//!
//! SECURITY: the peer is identified by the kernel (SO_PEERCRED), never by anything it says, and
//! checked per request kind: `A` (authenticate) from root, moat-auth's own uid, `peers_smtpd`
//! and `peers_imapd`; `R` (resolve) from root, our own uid, `peers_smtpd` and `peers_local`;
//! `L` (login for a ticket) from root, our own uid and `peers_login` only (the pre-auth login
//! processes may do nothing else); `T` (redeem a ticket) from root, our own uid and
//! `peers_imapd` only (the mail processes, which serve the user the ticket names).
//! Anyone else gets `D` ["permission denied"], a warning in the log, and the connection is
//! closed. Everything a peer can make us hold is bounded: at most [`MAX_CONNECTIONS`]
//! connections (further ones wait in the listen backlog), [`IDLE_TIMEOUT`] for the next request
//! (partial frames included), [`REQUEST_TIMEOUT`] to answer one, [`WRITE_TIMEOUT`] for the peer
//! to take the reply, and frames of at most `wire::MAX_FRAME` bytes.
//!
//! The socket is world-connectable (mode 0666, access control is the uid check), so a local user
//! must not be able to starve the real peers: connections from uids that may ask nothing are
//! sorted out right after accept, never hold one of the [`MAX_CONNECTIONS`] slots, get
//! [`STRANGER_TIMEOUT`] to send the request they will be refused, and at most [`MAX_STRANGERS`]
//! of them are held at once (more are closed unanswered).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_common::conn::Conn;
use moat_common::fdpass::Peer;
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::handlers::Handler;

pub const PERMISSION_DENIED: &str = "permission denied";

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may sit without sending a (complete) request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take to answer before the peer gets `Z`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the peer may take to read a reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections from uids that may ask nothing, held at once to refuse them.
pub const MAX_STRANGERS: usize = 16;
/// How long such a connection may take to send the request it will be refused.
pub const STRANGER_TIMEOUT: Duration = Duration::from_secs(5);
/// On shutdown: how long an idle connection is given for a request already on its way.
pub const DRAIN_GRACE: Duration = Duration::from_millis(250);
/// On shutdown: how long to wait for requests in progress before stopping anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(40);

/// Who may ask what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    /// moat-auth's own uid (the admin CLI run as the same user, and quickstart).
    pub own: u32,
    pub smtpd: Vec<u32>,
    pub local: Vec<u32>,
    pub imapd: Vec<u32>,
    /// moat-lists: the list requests only (`lists::KINDS`).
    pub lists: Vec<u32>,
    /// moat-imap-login and moat-pop3-login: `L` only.
    pub login: Vec<u32>,
}

impl Peers {
    /// Whether `uid` may make a request of `kind`.
    pub fn allows(&self, uid: u32, kind: u8) -> bool {
        if uid == 0 || uid == self.own {
            return true;
        }
        match kind {
            b'A' => self.smtpd.contains(&uid) || self.imapd.contains(&uid),
            b'R' => self.smtpd.contains(&uid) || self.local.contains(&uid),
            b'L' => self.login.contains(&uid),
            b'T' => self.imapd.contains(&uid),
            k if super::lists::KINDS.contains(&k) => self.lists.contains(&uid),
            _ => false,
        }
    }

    /// Whether `uid` may make any request at all.
    pub fn knows(&self, uid: u32) -> bool {
        uid == 0
            || uid == self.own
            || self.smtpd.contains(&uid)
            || self.local.contains(&uid)
            || self.imapd.contains(&uid)
            || self.lists.contains(&uid)
            || self.login.contains(&uid)
    }
}

/// Serves `listener` until `stop` becomes true, then finishes the requests in progress
/// (for at most [`DRAIN_DEADLINE`]) and returns.
pub async fn serve(
    listener: UnixListener,
    peers: Arc<Peers>,
    handler: Arc<Handler>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let strangers = Arc::new(Semaphore::new(MAX_STRANGERS));
    let mut overflow_logged: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            biased;
            _ = stop.wait_for(|stopping| *stopping) => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            _ = stop.wait_for(|stopping| *stopping) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or memory: wait a little rather than spin.
                    warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let conn = Conn::new(stream);
        let peer = match conn.peer() {
            Ok(peer) => peer,
            Err(e) => {
                warn!("cannot read the credentials of a connection: {e}");
                continue;
            }
        };
        if peers.knows(peer.uid) {
            tokio::spawn(connection(
                conn,
                peer,
                peers.clone(),
                handler.clone(),
                stop.clone(),
                permit,
            ));
            continue;
        }
        drop(permit);
        match strangers.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(refuse(conn, peer, permit));
            }
            Err(_) => {
                // Closed unanswered; said at most once a minute.
                let now = Instant::now();
                if overflow_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                {
                    overflow_logged = Some(now);
                    warn!(
                        "permission denied: more than {MAX_STRANGERS} connections from uids that may ask nothing (latest uid {} pid {}); closing them unanswered",
                        peer.uid, peer.pid
                    );
                }
            }
        }
    }
    // New connections are refused from here on; the ones we have finish their request.
    drop(listener);
    let drained = async {
        let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
        let _ = slots.acquire_many(all).await;
        let all = u32::try_from(MAX_STRANGERS).unwrap_or(u32::MAX);
        let _ = strangers.acquire_many(all).await;
    };
    if tokio::time::timeout(DRAIN_DEADLINE, drained).await.is_err() {
        warn!(
            "requests still running after {} s: stopping anyway",
            DRAIN_DEADLINE.as_secs()
        );
    }
}

/// A connection from a uid that may ask nothing: its request is read (briefly) and refused.
///
/// It is read with plain reads rather than `Conn::recv`, so descriptors a stranger attaches are
/// discarded by the kernel instead of piling up in our descriptor table.
async fn refuse(conn: Conn, peer: Peer, _permit: OwnedSemaphorePermit) {
    let mut stream = conn.into_inner();
    let Ok(Some(kind)) = tokio::time::timeout(STRANGER_TIMEOUT, request_kind(&mut stream)).await
    else {
        return;
    };
    warn!(
        "permission denied: {:?} request from uid {} pid {} (not in the peers_* settings)",
        char::from(kind),
        peer.uid,
        peer.pid
    );
    if let Ok(denied) = Status::Permanent(PERMISSION_DENIED.into())
        .to_record()
        .encode()
    {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&denied)).await;
    }
}

/// Reads one whole record (at most `wire::MAX_FRAME` bytes) and returns its kind.
async fn request_kind(stream: &mut UnixStream) -> Option<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((record, _)) = Record::decode(&buf).ok()? {
            return Some(record.kind);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One connection: requests and replies until the peer hangs up, idles out, is refused, or we
/// stop.
async fn connection(
    mut conn: Conn,
    peer: Peer,
    peers: Arc<Peers>,
    handler: Arc<Handler>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut draining = *stop.borrow();
    loop {
        let limit = if draining { DRAIN_GRACE } else { IDLE_TIMEOUT };
        // `Conn::recv` is cancel-safe (bytes read are kept in the connection's buffer).
        let next = tokio::select! {
            next = tokio::time::timeout(limit, conn.recv()) => next,
            _ = stop.wait_for(|stopping| *stopping), if !draining => {
                draining = true;
                continue;
            }
        };
        let request = match next {
            Ok(Ok(Some(request))) => {
                // No request of ours carries descriptors: close any that came along rather
                // than keep them for the life of the connection.
                while conn.take_fd().is_some() {}
                request
            }
            // End of stream, idle too long, or nothing more while draining.
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                warn!("connection from uid {} pid {}: {e}", peer.uid, peer.pid);
                return;
            }
        };
        let (reply, keep) = answer(&peers, &handler, &request, &peer).await;
        match tokio::time::timeout(WRITE_TIMEOUT, conn.send(&reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                info!(
                    "connection from uid {} pid {}: cannot reply: {e}",
                    peer.uid, peer.pid
                );
                return;
            }
            Err(_) => {
                warn!(
                    "connection from uid {} pid {}: reply not taken within {} s",
                    peer.uid,
                    peer.pid,
                    WRITE_TIMEOUT.as_secs()
                );
                return;
            }
        }
        if !keep || draining {
            return;
        }
    }
}

/// The reply to one request, and whether the connection may go on.
async fn answer(peers: &Peers, handler: &Handler, request: &Record, peer: &Peer) -> (Record, bool) {
    if !peers.allows(peer.uid, request.kind) {
        warn!(
            "permission denied: {:?} request from uid {} pid {} (not in the peers_* settings)",
            char::from(request.kind),
            peer.uid,
            peer.pid
        );
        return (
            Status::Permanent(PERMISSION_DENIED.into()).to_record(),
            false,
        );
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, handler.handle(request, peer)).await {
        Ok(reply) => (reply, true),
        Err(_) => {
            warn!(
                "{:?} request from uid {} pid {} not answered within {} s",
                char::from(request.kind),
                peer.uid,
                peer.pid,
                REQUEST_TIMEOUT.as_secs()
            );
            (
                Status::Temporary("request timed out, try later".into()).to_record(),
                true,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_policy() {
        let peers = Peers {
            own: 500,
            smtpd: vec![1001],
            local: vec![1002],
            imapd: vec![1003],
            lists: vec![1005],
            login: vec![1006],
        };
        for uid in [0, 500] {
            assert!(peers.allows(uid, b'A') && peers.allows(uid, b'R'), "{uid}");
        }
        assert!(peers.allows(1001, b'A') && peers.allows(1001, b'R'));
        assert!(!peers.allows(1002, b'A') && peers.allows(1002, b'R'));
        assert!(peers.allows(1003, b'A') && !peers.allows(1003, b'R'));
        assert!(!peers.allows(1004, b'A') && !peers.allows(1004, b'R'));
        assert!(!peers.allows(1001, b'X'));
        assert!(peers.allows(1005, b'G') && !peers.allows(1005, b'R'));
        assert!(!peers.allows(1001, b'G') && !peers.allows(1002, b'S'));
        assert!(peers.allows(0, b'X'), "root gets 'unknown request' instead");
        // Tickets: issued to the login processes only, redeemed by the mail processes only.
        for uid in [0, 500] {
            assert!(peers.allows(uid, b'L') && peers.allows(uid, b'T'), "{uid}");
        }
        assert!(peers.allows(1006, b'L'));
        for kind in *b"ARTGS" {
            assert!(!peers.allows(1006, kind), "{:?}", char::from(kind));
        }
        assert!(peers.allows(1003, b'T') && !peers.allows(1003, b'L'));
        for uid in [1001, 1002, 1004, 1005] {
            assert!(
                !peers.allows(uid, b'L') && !peers.allows(uid, b'T'),
                "{uid}"
            );
        }
        for uid in [0, 500, 1001, 1002, 1003, 1006] {
            assert!(peers.knows(uid), "{uid}");
        }
        assert!(!peers.knows(1004));
    }
}
