//! Subscribing and unsubscribing by mail, with confirmation (ezmlm's double opt-in):
//! `list-subscribe@` mails the sender a confirmation request whose Reply-To is
//! `list-sc.COOKIE-user=host@domain`; mail to that address subscribes user@host and welcomes it.
//! `list-unsubscribe@` and `list-uc.` likewise. The cookie (`cookie.rs`) carries everything, so
//! nothing is stored between request and confirmation.
//!
//! SECURITY: a confirmation request goes only to the address asking (the envelope sender), at
//! most once per hour per list (`throttle.rs`), and never in answer to the null sender or a
//! machine-sent message (an auto-responder must not confirm anything). A bad or expired
//! cookie changes nothing and is logged (no answer: it would go to whoever forged it).

use std::fs::File;
use std::sync::Arc;

use moat_common::client::list_store::{ListInfo, Roster};
use moat_common::wire::Status;
use moat_common::{date, info};

use crate::command::encode_address;
use crate::context::{self, Ctx, store_result};
use crate::cookie::{self, Action};
use crate::reply::Reply;
use crate::request::{Request, check_address};

/// The longest confirmation address: RFC 5321's path of 256 octets less the angle brackets.
/// Its local part may pass RFC 5321's 64 octets: moat-auth resolves list command addresses
/// (`sc.`, `uc.`, `return-`) up to 255 (docs/LISTS.md, "Length"), as receivers should.
const MAX_CONFIRM_ADDRESS: usize = 254;

fn word(action: Action) -> &'static str {
    match action {
        Action::Subscribe => "subscribe",
        Action::Unsubscribe => "unsubscribe",
    }
}

/// `list-subscribe@` / `list-unsubscribe@`: send the sender a confirmation request.
pub async fn request(ctx: &Ctx, req: &Request, file: Arc<File>, action: Action) -> Status {
    request_for(ctx, req, file, action, Roster::Member).await
}

/// `list-digest-subscribe@` / `list-digest-unsubscribe@`: the same for the digest roster (a
/// `d` cookie, `cookie::make_digest`), on a list with `digest` on.
pub async fn digest_request(ctx: &Ctx, req: &Request, file: Arc<File>, action: Action) -> Status {
    request_for(ctx, req, file, action, Roster::Digest).await
}

async fn request_for(
    ctx: &Ctx,
    req: &Request,
    file: Arc<File>,
    action: Action,
    roster: Roster,
) -> Status {
    let qid = req.queue_id.as_str();
    let what = match roster {
        Roster::Digest => format!("digest {}", word(action)),
        _ => word(action).to_string(),
    };
    let what = what.as_str();
    if let Err(verdict) = context::screen(req, what, file).await {
        return verdict;
    }
    let info = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    if roster == Roster::Digest && !info.digest {
        info!(id = qid; "list=<{}> {what} from=<{}>: not answered (the list has no digest)",
            req.list, req.sender);
        return Status::Ok("the list has no digest".into());
    }
    let address = req.sender.to_ascii_lowercase();
    let now = date::now();
    let (local, domain) = req.list_parts();
    let cookie = match roster {
        Roster::Digest => cookie::make_digest(&info.secret, action, &address, now),
        _ => cookie::make(&info.secret, action, &address, now),
    };
    let confirm_local = format!(
        "{local}-{}.{cookie}-{}",
        action.tag(),
        encode_address(&address)
    );
    if confirm_local.len() + 1 + domain.len() > MAX_CONFIRM_ADDRESS {
        info!(id = qid; "list=<{}> {what} from=<{address}>: not confirmable: the confirmation \
            address would be longer than {MAX_CONFIRM_ADDRESS} octets", req.list);
        return Status::Ok("address too long to confirm".into());
    }
    // The digest roster has its own hourly allowance.
    let throttle_key = match roster {
        Roster::Digest => format!("{} digest", req.list),
        _ => req.list.clone(),
    };
    if !ctx.throttle.allow(&throttle_key, &address, now) {
        info!(id = qid; "list=<{}> {what} from=<{address}>: confirmation not sent (one per \
            hour already sent)", req.list);
        return Status::Ok("confirmation already sent within the hour".into());
    }
    let confirm = format!("{confirm_local}@{domain}");
    let from = format!("{local}-help@{domain}");
    let preposition = match action {
        Action::Subscribe => "to",
        Action::Unsubscribe => "from",
    };
    let subject = format!("confirm {what} {preposition} {}", req.list);
    let body = format!(
        "Someone, hopefully you, asked to {what} <{address}> {} the {}mailing list <{}>.\n\
         \n\
         To confirm, reply to this message, or send an empty message to:\n\
         \n\
         \x20 <{confirm}>\n\
         \n\
         This request expires in 7 days. If you did not ask, ignore this message.\n",
        match action {
            Action::Subscribe => "to",
            Action::Unsubscribe => "from",
        },
        if roster == Roster::Digest {
            "digest of the "
        } else {
            ""
        },
        req.list
    );
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &address,
        reply_to: Some(&confirm),
        subject: &subject,
        body: &body,
        queue_id: qid,
        hostname: &ctx.hostname,
    };
    let what = format!("{what} confirmation request");
    let status = context::queued(req, &what, &address, reply.send(&ctx.queue_socket).await);
    // Not sent: the hour's allowance is given back, so the queue's retry sends it.
    if !matches!(status, Status::Ok(_)) {
        ctx.throttle.undo(&throttle_key, &address);
    }
    status
}

/// `list-sc.COOKIE-user=host@` / `list-uc.…`: check the cookie, then change the roster and tell
/// the address.
pub async fn confirm(
    ctx: &Ctx,
    req: &Request,
    file: Arc<File>,
    action: Action,
    cookie: &str,
    address: &str,
) -> Status {
    let qid = req.queue_id.as_str();
    let what = format!("{} confirmation", word(action));
    if let Err(verdict) = context::screen(req, &what, file).await {
        return verdict;
    }
    if check_address(address).is_err() {
        info!(id = qid; "list=<{}> {what} for {address:?}: not an address", req.list);
        return Status::Ok("not confirmed (bad address)".into());
    }
    let info: ListInfo = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let roster = match cookie::check_roster(&info.secret, action, address, cookie, date::now()) {
        Ok(roster) => roster,
        Err(why) => {
            info!(id = qid; "list=<{}> {what} for <{address}> from=<{}>: refused: {why}",
                req.list, req.sender);
            return Status::Ok(format!("not confirmed ({why})"));
        }
    };
    let digest = roster == Roster::Digest;
    let what = if digest {
        format!("digest {what}")
    } else {
        what
    };
    let changed = match action {
        Action::Subscribe => ctx.store.subscribe(&req.list, address, roster).await,
        Action::Unsubscribe => ctx.store.unsubscribe(&req.list, address, roster).await,
    };
    let changed = match store_result(req, &what, changed) {
        Ok(changed) => changed,
        Err(verdict) => return verdict,
    };
    let done = match (action, changed) {
        (Action::Subscribe, true) => "subscribed",
        (Action::Subscribe, false) => "was already subscribed",
        (Action::Unsubscribe, true) => "unsubscribed",
        (Action::Unsubscribe, false) => "was not subscribed",
    };
    let done = if digest {
        format!("{done} (digest)")
    } else {
        done.to_string()
    };
    info!(id = qid; "list=<{}> <{address}> {done} (confirmed by <{}>)", req.list, req.sender);
    let to_what = if digest { "the digest of " } else { "" };
    let (local, domain) = req.list_parts();
    let from = format!("{local}-help@{domain}");
    let (subject, body) = match action {
        Action::Subscribe => (
            format!("welcome to {}", req.list),
            format!(
                "<{address}> is now subscribed to {to_what}<{}>.\n\nPost by writing to <{}>; \
                 leave by writing to <{local}-{}unsubscribe@{domain}>.\n",
                req.list,
                req.list,
                if digest { "digest-" } else { "" }
            ),
        ),
        Action::Unsubscribe => (
            format!("goodbye from {}", req.list),
            format!(
                "<{address}> is no longer subscribed to {to_what}<{}>.\n",
                req.list
            ),
        ),
    };
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: address,
        reply_to: None,
        subject: &subject,
        body: &body,
        queue_id: qid,
        hostname: &ctx.hostname,
    };
    let what = match action {
        Action::Subscribe => "welcome",
        Action::Unsubscribe => "goodbye",
    };
    context::queued(req, what, address, reply.send(&ctx.queue_socket).await)
}
