//! A post to `list@`: checked (sender, machine mail, size, membership), given the list's
//! headers (RFC 2919 List-Id, RFC 2369 List-*, `Precedence: list`, the subject prefix),
//! numbered, and injected once into the queue with every member as a recipient and the VERP
//! flag, from `list-return-N@domain`, so a bounce names post N and the member (ezmlm's
//! scheme). The queue does the fan-out.
//!
//! Dropped with a log line and `K` (as ezmlm does): the null sender, mail from the list's own
//! addresses, machine-sent mail (RFC 3834). Refused with `D` (the queue bounces it to the
//! sender): too big, a header longer than `header::MAX_HEADER`, a non-member on a
//! members-only list.
//!
//! SECURITY: the header is read bounded and rewritten at the field level; the subject prefix
//! (the admin's, checked by the store) has control characters removed again before it goes
//! in, so it cannot add a header line. The body is streamed from the descriptor in chunks,
//! never held whole. The post is one injection with every member (the queue takes up to
//! `MAX_BULK_RECIPIENTS` from moat-lists): it is queued whole or not at all, so a retry after a
//! failure sends no member a second copy. Once queued it is recorded under its queue id
//! (`replay.rs`): a delivery the queue repeats after a timeout is answered `K` and not sent
//! again. The post number is taken last, after every check that can answer `Z`.

use std::fs::File;
use std::sync::Arc;

use moat_common::client::list_store::{ListInfo, Roster};
use moat_common::client::one_click::OneClick;
use moat_common::client::queue::{Injection, MAX_BULK_RECIPIENTS, Origin};
use moat_common::wire::Status;
use moat_common::{info, warn};

use crate::archive;
use crate::context::{self, Ctx, store_result};
use crate::header;
use crate::moderate;
use crate::replay;
use crate::request::Request;
use crate::{footer, rewrite};

pub async fn distribute(ctx: &Ctx, req: &Request, file: Arc<File>) -> Status {
    let qid = req.queue_id.as_str();
    let (local, domain) = req.list_parts();
    if req.sender.is_empty() {
        info!(id = qid; "list=<{}> post from <>: dropped (mail from the null sender is not \
            distributed)", req.list);
        return Status::Ok("dropped (null sender)".into());
    }
    if own_address(&req.sender, local, domain) {
        info!(id = qid; "list=<{}> post from=<{}>: dropped (from the list's own address: a \
            loop)", req.list, req.sender);
        return Status::Ok("dropped (from the list itself)".into());
    }
    // A delivery the queue repeats (its wait timed out after the post went out) is not sent
    // again: one handling per queue id at a time, and a record once done (replay.rs).
    let Some(_busy) = replay::Busy::take(&req.list, qid) else {
        info!(id = qid; "list=<{}> post from=<{}>: already being handled: later", req.list,
            req.sender);
        return Status::Temporary("4.3.0 the post is being handled".into());
    };
    match done(ctx, req, qid).await {
        Ok(Some(what)) => {
            info!(id = qid; "list=<{}> post from=<{}>: already distributed as {what}: not \
                sent again", req.list, req.sender);
            return Status::Ok(format!("already done ({what})"));
        }
        Ok(None) => {}
        Err(e) => {
            warn!(id = qid; "list=<{}> post: cannot read its replay record: {e}", req.list);
            return Status::Temporary("4.3.0 cannot check the post".into());
        }
    }
    let (head, body_at) = match context::read_header(req, Arc::clone(&file)).await {
        Ok(h) => h,
        Err(verdict) => return verdict,
    };
    if let Some(why) = header::automatic(&head) {
        info!(id = qid; "list=<{}> post from=<{}>: dropped ({why})", req.list, req.sender);
        return Status::Ok(format!("dropped ({why})"));
    }
    let Some(body_at) = body_at else {
        info!(id = qid; "list=<{}> post from=<{}>: refused: header over {} bytes",
            req.list, req.sender, header::MAX_HEADER);
        return Status::Permanent("5.6.0 message header too large for the list".into());
    };
    let info: ListInfo = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(max) = info.max_message_bytes
        && size > max
    {
        info!(id = qid; "list=<{}> post from=<{}>: refused: {size} bytes, the list takes {max}",
            req.list, req.sender);
        return Status::Permanent(format!(
            "5.3.4 message too big for the list (at most {max} bytes)"
        ));
    }
    if info.members_only {
        let member = store_result(
            req,
            "membership",
            ctx.store
                .is_member(&req.list, &req.sender, Roster::Member)
                .await,
        );
        match member {
            Ok(true) => {}
            Ok(false) => {
                info!(id = qid; "list=<{}> post from=<{}>: refused: not a member of a \
                    members-only list", req.list, req.sender);
                return Status::Permanent(format!("5.7.2 only members may post to {}", req.list));
            }
            Err(verdict) => return verdict,
        }
    }
    // A moderated list holds a post from anyone not on the moderator roster (moderate.rs).
    if info.moderated
        && let Some(verdict) = moderate::hold(ctx, req, &info, &head, &file, body_at).await
    {
        return verdict;
    }
    send_post(ctx, req, &info, &head, &file, body_at, qid).await
}

/// The replay record for `key` on the request's list (`replay::lookup`).
pub async fn done(ctx: &Ctx, req: &Request, key: &str) -> std::io::Result<Option<String>> {
    let (dir, list, key) = (ctx.data_dir.clone(), req.list.clone(), key.to_string());
    tokio::task::spawn_blocking(move || replay::lookup(&dir, &list, &key))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
}

/// Records `what` for `key` on the request's list (`replay::record`); a failure is logged:
/// the work is done either way.
pub async fn remember(ctx: &Ctx, req: &Request, key: &str, what: &str) {
    let (dir, list) = (ctx.data_dir.clone(), req.list.clone());
    let (k, w) = (key.to_string(), what.to_string());
    let recorded = tokio::task::spawn_blocking(move || replay::record(&dir, &list, &k, &w))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    if let Err(e) = recorded {
        warn!(id = req.queue_id.as_str(); "list=<{}> {what}: no replay record for {key}: {e}",
            req.list);
    }
}

/// A post that passed the checks (or a held post a moderator accepted, `req.sender` its
/// poster): numbered, given the list's header, injected for every member. `done_key` names its
/// replay record (the queue id, or `replay::accept_key`), written once it is queued and
/// archived.
pub async fn send_post(
    ctx: &Ctx,
    req: &Request,
    info: &ListInfo,
    head: &[u8],
    file: &Arc<File>,
    body_at: u64,
    done_key: &str,
) -> Status {
    let qid = req.queue_id.as_str();
    let (local, domain) = req.list_parts();
    let members = match store_result(
        req,
        "members",
        ctx.store.members(&req.list, Roster::Member).await,
    ) {
        Ok(m) => m,
        Err(verdict) => return verdict,
    };
    // Without members a post is still numbered and archived when the archive or digests need it.
    if members.is_empty() && !info.archive && !info.digest {
        info!(id = qid; "list=<{}> post from=<{}>: no members: nothing to send", req.list,
            req.sender);
        return Status::Ok("no members".into());
    }
    if members.len() > MAX_BULK_RECIPIENTS {
        warn!(id = qid; "list=<{}> post from=<{}>: {} members, one post reaches at most {}",
            req.list, req.sender, members.len(), MAX_BULK_RECIPIENTS);
        return Status::Permanent(format!(
            "5.3.3 the list has more members than one post can reach ({MAX_BULK_RECIPIENTS})"
        ));
    }
    // Everything that can fail without the number comes first, so a `Z` and the queue's retry
    // burn no post number (digests wait `digest::SETTLE_SECS` for a gap). The header does not
    // carry the number: only the VERP sender does.
    let (new_head, body) = match rewrite::prepare(ctx, req, info, head, file, body_at).await {
        Ok(prepared) => prepared,
        Err(verdict) => return verdict,
    };
    let one_click = one_click(ctx, req, info);
    let new_head = one_click_header(&new_head, one_click.is_some());
    let number = match store_result(req, "post number", ctx.store.next_post(&req.list).await) {
        Ok(n) => n,
        Err(verdict) => return verdict,
    };
    let sender = format!("{local}-return-{number}@{domain}");
    if members.is_empty() {
        info!(id = qid; "list=<{}> post {number} from=<{}>: no members: archived only",
            req.list, req.sender);
        archive::store(ctx, req, info, number, &new_head, file, &body).await;
        remember(ctx, req, done_key, &format!("post {number}")).await;
        return Status::Ok(format!("post {number} archived (no members)"));
    }
    // One queued copy for every member: the queue fans it out and makes each VERP sender.
    let id = match inject(ctx, &new_head, file, &body, &sender, &members, one_click).await {
        Ok(Status::Ok(id)) => id,
        Ok(Status::Permanent(why) | Status::Temporary(why)) => {
            warn!(id = qid; "list=<{}> post {number}: the queue refused it: {why}", req.list);
            return Status::Temporary("4.3.0 cannot queue the post".into());
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> post {number}: the queue: {e}", req.list);
            return Status::Temporary("4.3.0 cannot queue the post".into());
        }
    };
    info!(id = qid; "list=<{}> post {number} from=<{}> to {} member(s) as {id}", req.list,
        req.sender, members.len());
    // Recorded as soon as it is queued: a crash before the archive store then costs the
    // archive one post, never the members a second copy.
    remember(ctx, req, done_key, &format!("post {number}")).await;
    archive::store(ctx, req, info, number, &new_head, file, &body).await;
    Status::Ok(format!("post {number} sent to {} member(s)", members.len()))
}

/// Whether `sender` is the list's address or one of its command addresses.
pub fn own_address(sender: &str, local: &str, domain: &str) -> bool {
    let Some((l, d)) = sender.rsplit_once('@') else {
        return false;
    };
    let l = l.to_ascii_lowercase();
    let local = local.to_ascii_lowercase();
    d.eq_ignore_ascii_case(domain) && (l == local || l.starts_with(&format!("{local}-")))
}

/// The post's RFC 8058 attribute when the one-click endpoint is served (`[lists] web_url`):
/// the delivery agents then write each member's own `List-Unsubscribe` URL (`web.rs` checks it).
fn one_click(ctx: &Ctx, req: &Request, info: &ListInfo) -> Option<OneClick> {
    let web_url = ctx.web_url.as_deref()?;
    match OneClick::for_list(web_url, &req.list, &info.secret) {
        Ok(oc) => Some(oc),
        Err(e) => {
            warn!(id = req.queue_id.as_str(); "list=<{}>: no one-click unsubscribe: {e}", req.list);
            None
        }
    }
}

/// `head` without any `List-Unsubscribe-Post` (the list never writes one into the post: a
/// poster's would be a lie) and, with one-click, without the list's mailto-only
/// `List-Unsubscribe`: the delivery agents write both per member.
pub fn one_click_header(head: &[u8], one_click: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    for field in header::fields(head) {
        if header::is_named(field, "List-Unsubscribe-Post")
            || (one_click && header::is_named(field, "List-Unsubscribe"))
        {
            continue;
        }
        out.extend_from_slice(field);
    }
    out
}

/// One queued copy: `head`, the empty line, the body (`footer::Plan`) streamed.
async fn inject(
    ctx: &Ctx,
    head: &[u8],
    file: &Arc<File>,
    body: &[footer::Piece],
    sender: &str,
    recipients: &[String],
    one_click: Option<OneClick>,
) -> std::io::Result<Status> {
    let mut injection = Injection::open(&ctx.queue_socket, Origin::List, "moat-lists").await?;
    injection.set_verp();
    if let Some(oc) = one_click {
        injection.set_one_click(oc);
    }
    injection.write(head).await?;
    injection.write(b"\r\n").await?;
    footer::send(&mut injection, file, body).await?;
    injection.finish(sender, recipients).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_click_drops_the_mailto_only_field() {
        let head =
            b"List-Id: <dev.x.test>\r\nList-Unsubscribe: <mailto:dev-unsubscribe@x.test>\r\n\
                     List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nSubject: s\r\n";
        let on = String::from_utf8(one_click_header(head, true)).expect("utf8");
        assert_eq!(on, "List-Id: <dev.x.test>\r\nSubject: s\r\n");
        let off = String::from_utf8(one_click_header(head, false)).expect("utf8");
        assert_eq!(
            off,
            "List-Id: <dev.x.test>\r\nList-Unsubscribe: <mailto:dev-unsubscribe@x.test>\r\n\
             Subject: s\r\n"
        );
    }

    #[test]
    fn own_addresses() {
        assert!(own_address("dev@x.test", "dev", "x.test"));
        assert!(own_address("DEV-return-4-a=b@X.test", "dev", "x.test"));
        assert!(!own_address("developer@x.test", "dev", "x.test"));
        assert!(!own_address("dev@y.test", "dev", "x.test"));
    }
}
