//! The queue socket: accepts connections, learns the peer from the kernel, and hands the first
//! record to the injection (`H`) or admin (`L`, `S`, `F`, `X`) handler.
//!
//! SECURITY: the peer's uid comes from SO_PEERCRED, never from what it says. Connections are
//! bounded (`MAX_CONNECTIONS`, extra ones are closed at once) and every record must arrive within
//! `IDLE`, so a stalled or hostile client holds a slot for a bounded time only. On shutdown the
//! listener closes first; injections in progress get `DRAIN` to finish, then are dropped, which
//! leaves nothing behind (they were not committed, so they were never answered `K`).

use std::sync::Arc;
use std::time::Duration;

use moat_common::conn::{Conn, with_timeout};
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Ctx, admin, inject};

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 1000;
/// How long a peer may take to send its next record.
pub const IDLE: Duration = Duration::from_secs(120);
/// How long injections in progress may take to finish after a stop was asked for.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `listener` until `stop` turns true.
pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        warn!("too many connections: closing one");
                        continue;
                    };
                    let ctx = Arc::clone(&ctx);
                    sessions.spawn(async move {
                        session(&ctx, Conn::new(stream)).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if !sessions.is_empty() {
        info!("waiting for {} connection(s) to finish", sessions.len());
    }
    let drained = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "dropping {} unfinished connection(s): nothing of them was queued",
            sessions.len()
        );
        sessions.shutdown().await;
    }
}

async fn session(ctx: &Arc<Ctx>, mut conn: Conn) {
    let peer = match conn.peer() {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot learn who connected: {e}");
            return;
        }
    };
    let first = match with_timeout(IDLE, conn.recv()).await {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(e) => {
            warn!("connection from uid {}: {e}", peer.uid);
            return;
        }
    };
    let result = match first.kind {
        b'H' => inject::run(ctx, &mut conn, peer, &first).await,
        b'L' | b'S' | b'F' | b'X' => admin::run(ctx, &mut conn, peer, &first).await,
        other => {
            let text = format!("unknown request {:?}", char::from(other).escape_default());
            send(&mut conn, &Status::Permanent(text)).await
        }
    };
    if let Err(e) = result {
        info!(
            "connection from uid {} pid {} ended: {e}",
            peer.uid, peer.pid
        );
    }
}

/// Sends a reply record.
pub async fn send(conn: &mut Conn, status: &Status) -> std::io::Result<()> {
    send_record(conn, &status.to_record()).await
}

pub async fn send_record(conn: &mut Conn, record: &Record) -> std::io::Result<()> {
    with_timeout(IDLE, conn.send(record)).await
}
