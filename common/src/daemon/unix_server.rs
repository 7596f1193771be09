//! The accept loop of an internal Unix socket served one request per connection (moat-local's
//! `local.sock`, moat-remote's `remote.sock`), and reading that one request with the peer's
//! credentials.
//!
//! SECURITY: the peer's uid comes from SO_PEERCRED (never from what it says) and is handed to
//! the caller, which checks it before anything is done with the request. A peer gets a
//! timeout to send its one bounded record (`wire::MAX_FRAME`). At most `max` connections are
//! served at once; the rest wait in the listen backlog. On stop the listener closes first,
//! then the requests in flight finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conn::{Conn, with_timeout};
use crate::fdpass::Peer;
use crate::wire::Record;
use crate::{error, info, warn};

/// Serves `listener` until `shutdown` resolves (to the reason), each connection in its own task
/// (`handle`), at most `max` at once; then closes the listener and waits for the requests in
/// flight, which the log calls `in_flight` (e.g. "request(s) in flight").
pub async fn serve<F>(
    listener: UnixListener,
    max: usize,
    shutdown: impl Future<Output = &'static str>,
    in_flight: &str,
    handle: impl Fn(UnixStream) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    let limit = Arc::new(Semaphore::new(max));
    let mut tasks = JoinSet::new();
    let why = loop {
        let permit = tokio::select! {
            why = &mut shutdown => break why,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break "the connection limit was closed",
            },
        };
        tokio::select! {
            why = &mut shutdown => break why,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let request = handle(stream);
                    tasks.spawn(async move {
                        request.await;
                        drop(permit);
                    });
                    while let Some(done) = tasks.try_join_next() {
                        if let Err(e) = done {
                            error!("a request handler failed: {e}");
                        }
                    }
                }
                Err(e) => {
                    error!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    drop(listener);
    info!("stopping ({why}); finishing {} {in_flight}", tasks.len());
    while tasks.join_next().await.is_some() {}
    info!("stopped");
}

/// Learns the peer and reads its one request, within `timeout`. `None` when the peer cannot
/// be identified, sends nothing, or sends something bad (all but the silent end are logged).
pub async fn read_request(conn: &mut Conn, timeout: Duration) -> Option<(Peer, Record)> {
    let peer = match conn.peer() {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot identify a peer: {e}");
            return None;
        }
    };
    match with_timeout(timeout, conn.recv()).await {
        Ok(Some(record)) => Some((peer, record)),
        Ok(None) => None,
        Err(e) => {
            warn!("bad request from uid {} pid {}: {e}", peer.uid, peer.pid);
            None
        }
    }
}
