//! `list-owner@`: the message is forwarded, as it came, to the list's owner (`ListInfo.owner`),
//! or to its moderators when it has none, with `Delivered-To: list-owner@domain` in front
//! (origin `forward`: never DKIM-signed as ours). Not forwarded: the null sender and machine
//! mail (`context::screen`), and mail from the list's own addresses.
//!
//! The envelope sender stays the original sender, as ezmlm's `list-owner` (a plain forward in
//! `.qmail-list-owner`) does: a DSN for a dead owner address goes to whoever wrote, who learns
//! the owner was not reached. It cannot loop: a DSN has the null sender, which is never
//! forwarded, and mail from the list's own addresses is dropped, so nothing the list sends
//! comes back through here. A forward that reaches `list-owner@` again (an owner address that
//! forwards back) carries our `Delivered-To:` line and is stopped by moat-local's loop check.
//! (The list's bounce address, Mailman's choice, would hide a dead owner address from the
//! person writing to it, and feed the bounce handler mail that names no post.) Like every
//! forward here there is no SRS: SPF at the owner's end may fail for senders with a strict
//! SPF policy.
//!
//! SECURITY: recipients come from moat-auth and are checked again (`check_address`); the
//! message is streamed in chunks from the descriptor, never whole in memory.

use std::fs::File;
use std::sync::Arc;

use moat_common::client::list_store::Roster;
use moat_common::client::queue::{Injection, MAX_RECIPIENTS, Origin};
use moat_common::wire::Status;
use moat_common::{info, warn};

use crate::context::{self, Ctx, store_result};
use crate::footer::{self, Piece};
use crate::post;
use crate::request::{Request, check_address};

/// Forwards `list-owner@` mail.
pub async fn forward(ctx: &Ctx, req: &Request, file: Arc<File>) -> Status {
    let qid = req.queue_id.as_str();
    if let Err(verdict) = context::screen(req, "owner", Arc::clone(&file)).await {
        return verdict;
    }
    let (local, domain) = req.list_parts();
    if post::own_address(&req.sender, local, domain) {
        info!(id = qid; "list=<{}> owner from=<{}>: dropped (from the list's own address: a \
            loop)", req.list, req.sender);
        return Status::Ok("dropped (from the list itself)".into());
    }
    let info = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let (to, whom) = match info.owner {
        Some(owner) => (vec![owner], "owner"),
        None => {
            let answer = ctx.store.members(&req.list, Roster::Moderator).await;
            match store_result(req, "moderators", answer) {
                Ok(m) => (m, "moderators"),
                Err(verdict) => return verdict,
            }
        }
    };
    let to: Vec<String> = to
        .into_iter()
        .filter(|a| {
            let ok = check_address(a).is_ok() && !post::own_address(a, local, domain);
            if !ok {
                warn!(id = qid; "list=<{}> owner: {a:?} is not an address to forward to",
                    req.list);
            }
            ok
        })
        .collect();
    if to.is_empty() {
        info!(id = qid; "list=<{}> owner from=<{}>: refused: the list has no owner and no \
            moderators", req.list, req.sender);
        return Status::Permanent(format!("5.1.1 {} has no owner", req.list));
    }
    let prefix = format!("Delivered-To: {local}-owner@{domain}\r\n");
    let mut ids = Vec::new();
    for batch in to.chunks(MAX_RECIPIENTS) {
        match inject(ctx, prefix.as_bytes(), &file, &req.sender, batch).await {
            Ok(Status::Ok(id)) => ids.push(id),
            Ok(Status::Permanent(why) | Status::Temporary(why)) => {
                warn!(id = qid; "list=<{}> owner mail: the queue refused it: {why}", req.list);
                return Status::Temporary("4.3.0 cannot queue the forward".into());
            }
            Err(e) => {
                warn!(id = qid; "list=<{}> owner mail: the queue: {e}", req.list);
                return Status::Temporary("4.3.0 cannot queue the forward".into());
            }
        }
    }
    info!(id = qid; "list=<{}> owner mail from=<{}> forwarded to the {whom} ({}) as {}",
        req.list, req.sender, to.join(","), ids.join(","));
    Status::Ok(format!("forwarded to the {whom}"))
}

/// One forwarded copy: `prefix`, then the message streamed from the descriptor.
async fn inject(
    ctx: &Ctx,
    prefix: &[u8],
    file: &Arc<File>,
    sender: &str,
    recipients: &[String],
) -> std::io::Result<Status> {
    let mut injection =
        Injection::open(&ctx.queue_socket, Origin::Forward, "moat-lists owner").await?;
    injection.write(prefix).await?;
    // The whole message: to the end of the file, however long.
    let whole = [Piece::File {
        from: 0,
        to: u64::MAX,
    }];
    footer::send(&mut injection, file, &whole).await?;
    injection.finish(sender, recipients).await
}
