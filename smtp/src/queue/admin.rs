//! Admin requests on the queue socket (the server side of `moat queue`):
//!
//! - `L` list → `K` [count], then per message `Q` [id, arrival unix time, size, sender, the
//!   recipients not yet done joined by ","], then `K` ["end"].
//! - `S` [id] show → `D` [no such message], or `K` ["message"], then one
//!   `Q` [id, arrival, size, sender, origin, client, uid, attempts, next try unix time ("" = now),
//!   last temporary error, `VERP` or ""], then per recipient `R` [index, address, state, text] with state
//!   `pending`, `delivered` or `failed` (text: the last result, or "" for pending), then `K` ["end"].
//! - `F` flush → `K`: every waiting message is tried now.
//! - `X` [id] delete → `K` (removed without a bounce) or `D` [no such message].
//!
//! SECURITY: only root and the queue's own uid may ask (SO_PEERCRED); anyone else gets `D`. An
//! id is checked with `id::is_valid` before it names a file. Long recipient lists are cut so that
//! each record stays within the wire format's frame size.

use std::sync::Arc;

use moat_common::conn::Conn;
use moat_common::fdpass::Peer;
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::sync::oneshot;

use super::scheduler::Command;
use super::server::{send, send_record};
use super::state::Mark;
use super::{Ctx, blocking, id};

/// The most bytes of joined recipients in one `Q` record.
const MAX_JOINED: usize = 16 * 1024;

pub async fn run(ctx: &Arc<Ctx>, conn: &mut Conn, peer: Peer, req: &Record) -> std::io::Result<()> {
    if peer.uid != 0 && peer.uid != ctx.own_uid {
        warn!("admin request from uid {} refused", peer.uid);
        let text = "permission denied: queue administration is for root and the queue's user";
        return send(conn, &Status::Permanent(text.into())).await;
    }
    match req.kind {
        b'L' => list(ctx, conn).await,
        b'S' => show(ctx, conn, req).await,
        b'F' => {
            info!("flush requested by uid {}", peer.uid);
            let _ = ctx.scheduler.send(Command::Flush);
            send(
                conn,
                &Status::Ok("every queued message will be tried now".into()),
            )
            .await
        }
        _ => delete(ctx, conn, peer, req).await,
    }
}

fn valid_id(req: &Record) -> Option<String> {
    req.text(0)
        .ok()
        .filter(|id| id::is_valid(id))
        .map(str::to_string)
}

fn join_limited(items: &[&str]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if out.len() + item.len() + 1 > MAX_JOINED {
            out.push_str(&format!(",...(+{} more)", items.len() - i));
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out
}

async fn list(ctx: &Arc<Ctx>, conn: &mut Conn) -> std::io::Result<()> {
    let store = Arc::clone(&ctx.store);
    let rows = blocking(move || {
        let mut rows = Vec::new();
        for id in store.queued()? {
            let env = match store.envelope(&id) {
                Ok(env) => env,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warn!(id = &id; "cannot read the envelope: {e}");
                    continue;
                }
            };
            let done = store.done(&id, env.recipients.len())?;
            let pending: Vec<&str> = env
                .recipients
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.marks.contains_key(i))
                .map(|(_, r)| r.as_str())
                .collect();
            rows.push(
                Record::new(b'Q')
                    .field(&id)
                    .field(env.arrival.to_string())
                    .field(env.size.to_string())
                    .field(&env.sender)
                    .field(join_limited(&pending)),
            );
        }
        Ok(rows)
    })
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            return send(
                conn,
                &Status::Temporary(format!("cannot read the queue: {e}")),
            )
            .await;
        }
    };
    send(conn, &Status::Ok(format!("{} message(s)", rows.len()))).await?;
    for row in &rows {
        send_record(conn, row).await?;
    }
    send(conn, &Status::Ok("end".into())).await
}

async fn show(ctx: &Arc<Ctx>, conn: &mut Conn, req: &Record) -> std::io::Result<()> {
    let Some(id) = valid_id(req) else {
        return send(conn, &Status::Permanent("bad queue id".into())).await;
    };
    let store = Arc::clone(&ctx.store);
    let found = blocking(move || {
        let env = match store.envelope(&id) {
            Ok(env) => env,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let done = store.done(&id, env.recipients.len())?;
        let retry = store.retry(&id)?;
        let mut records = vec![
            Record::new(b'Q')
                .field(&id)
                .field(env.arrival.to_string())
                .field(env.size.to_string())
                .field(&env.sender)
                .field(env.origin.as_str())
                .field(&env.client)
                .field(env.uid.to_string())
                .field(retry.as_ref().map_or(0, |r| r.attempts).to_string())
                .field(
                    retry
                        .as_ref()
                        .map(|r| r.next_try.to_string())
                        .unwrap_or_default(),
                )
                .field(retry.as_ref().map(|r| r.last_error.as_str()).unwrap_or(""))
                .field(if env.verp { "VERP" } else { "" }),
        ];
        for (i, rcpt) in env.recipients.iter().enumerate() {
            let (state, text) = match done.marks.get(&i) {
                None => ("pending", ""),
                Some(Mark::Delivered(t)) => ("delivered", t.as_str()),
                Some(Mark::Failed(t)) => ("failed", t.as_str()),
            };
            records.push(
                Record::new(b'R')
                    .field(i.to_string())
                    .field(rcpt)
                    .field(state)
                    .field(text),
            );
        }
        Ok(Some(records))
    })
    .await;
    match found {
        Ok(Some(records)) => {
            send(conn, &Status::Ok("message".into())).await?;
            for r in &records {
                send_record(conn, r).await?;
            }
            send(conn, &Status::Ok("end".into())).await
        }
        Ok(None) => send(conn, &Status::Permanent("no such message".into())).await,
        Err(e) => {
            send(
                conn,
                &Status::Temporary(format!("cannot read the message: {e}")),
            )
            .await
        }
    }
}

async fn delete(ctx: &Arc<Ctx>, conn: &mut Conn, peer: Peer, req: &Record) -> std::io::Result<()> {
    let Some(id) = valid_id(req) else {
        return send(conn, &Status::Permanent("bad queue id".into())).await;
    };
    let (tx, rx) = oneshot::channel();
    if ctx.scheduler.send(Command::Delete(id.clone(), tx)).is_err() {
        return send(conn, &Status::Temporary("the queue is stopping".into())).await;
    }
    let status = rx
        .await
        .unwrap_or_else(|_| Status::Temporary("the queue is stopping".into()));
    if matches!(status, Status::Ok(_)) {
        info!(id = &id; "deleted by uid {}", peer.uid);
    }
    send(conn, &status).await
}
