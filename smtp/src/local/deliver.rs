//! `L` [queue id, sender, recipient] + message descriptor: deliver one recipient.
//!
//! Resolve the recipient through moat-auth, refuse loops, then for each target: a mailbox gets
//! `Return-Path:` and `Delivered-To:` prepended and goes into its Maildir (`mailbox`); a remote
//! address is re-injected into the queue (`forward`); with a list post's one-click attribute
//! both also get the recipient's RFC 8058 `List-Unsubscribe` fields in front (the URL names
//! the recipient the queue delivers to, the list member); a mailing list is handed to moat-lists
//! with the message descriptor (`list`). The verdict: all targets OK → `K`; any
//! temporary failure → `Z` (the queue retries the whole recipient: at least once, so targets that
//! succeeded may get a second copy); otherwise any permanent failure → `D` (the queue bounces).
//! One log line per target, tagged with the queue id.
//!
//! A sub-address (`user+tag`) is delivered to the user's INBOX, as Postfix's and Dovecot's
//! default delivery does (the tag is in the log line and in the message's own To: header).
//!
//! SECURITY: the message is never trusted for its size or offset (`message`), never held whole
//! in memory, and never parsed beyond the bounded header section used by the loop check. Every
//! target from moat-auth is re-checked before use: addresses by `request::check_address`, the
//! mailbox location by `mailbox`. Texts sent back are fixed; error details go to the log only.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use moat_common::client::auth::{Target, TargetKind};
use moat_common::client::local::Delivery;
use moat_common::wire::Status;
use moat_common::{error, info, warn};

use crate::local::header::{self, Prepend};
use crate::local::mailbox::{self, MailboxError};
use crate::local::message::{MAX_HEADER, MAX_MESSAGE, Message, MessageError};
use crate::local::request::{DeliverRequest, check_address};
use crate::local::resolve::resolve;
use crate::local::settings::Settings;
use crate::local::{forward, list, loops};

/// The reply text when a mailbox is over quota at delivery time (it ends up in a bounce; `C`
/// answers `check::OVER_QUOTA`, the text the contract gives smtpd).
pub const MAILBOX_FULL: &str = "mailbox full";
/// The reply text for a loop.
pub const LOOP: &str = "mail loop detected";

/// Delivers the message open at `fd` for one recipient and returns the verdict; a recipient in
/// a domain we do not host is `Delivery::Remote` (answered `R`: the queue hands it to
/// moat-remote).
pub async fn deliver(settings: &Settings, req: &DeliverRequest, fd: OwnedFd) -> Delivery {
    let qid = req.queue_id.as_str();
    let message = match Message::from_fd(fd, MAX_MESSAGE) {
        Ok(m) => Arc::new(m),
        Err(e @ (MessageError::NotAFile | MessageError::TooLarge(_))) => {
            warn!(id = qid; "bounced rcpt=<{}>: {e}", req.recipient);
            return Delivery::Status(Status::Permanent(e.to_string()));
        }
        Err(e) => {
            warn!(id = qid; "deferred rcpt=<{}>: {e}", req.recipient);
            return Delivery::Status(Status::Temporary("cannot read the message".into()));
        }
    };
    let targets = match resolve(settings, &req.recipient, Some(qid)).await {
        Ok(t) => t,
        Err(Status::Permanent(why)) if why == moat_common::client::auth::NOT_LOCAL => {
            info!(id = qid; "rcpt=<{}> is not in a local domain: for moat-remote", req.recipient);
            return Delivery::Remote;
        }
        Err(status) => {
            info!(id = qid; "not delivered rcpt=<{}>: {}", req.recipient, text(&status));
            return Delivery::Status(status);
        }
    };

    let m = Arc::clone(&message);
    let header = match tokio::task::spawn_blocking(move || m.header(MAX_HEADER)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            warn!(id = qid; "deferred rcpt=<{}>: cannot read the message: {e}", req.recipient);
            return Delivery::Status(Status::Temporary("cannot read the message".into()));
        }
        Err(e) => {
            error!(id = qid; "deferred rcpt=<{}>: {e}", req.recipient);
            return Delivery::Status(Status::Temporary("internal error".into()));
        }
    };
    let mut addresses = vec![req.recipient.as_str()];
    addresses.extend(
        targets
            .iter()
            .filter(|t| t.kind == TargetKind::Mailbox)
            .map(|t| t.address.as_str()),
    );
    if let Some(found) = loops::detect(&header, &addresses) {
        info!(id = qid; "bounced rcpt=<{}>: {LOOP} ({found})", req.recipient);
        return Delivery::Status(Status::Permanent(LOOP.into()));
    }
    let eol = header::line_ending(&header);
    drop(header);

    let mut results = Vec::with_capacity(targets.len());
    for target in &targets {
        let status = deliver_target(settings, req, target, &message, eol).await;
        results.push((target.kind.clone(), status));
    }
    Delivery::Status(combine(&results))
}

/// Delivers to one target, logging the outcome.
async fn deliver_target(
    settings: &Settings,
    req: &DeliverRequest,
    target: &Target,
    message: &Arc<Message>,
    eol: &'static [u8],
) -> Status {
    let qid = req.queue_id.as_str();
    if let Err(e) = check_address(&target.address) {
        error!(id = qid; "deferred rcpt=<{}>: moat-auth sent a bad target address {:?}: {e}",
            req.recipient, target.address);
        return Status::Temporary("bad answer from the user store".into());
    }
    match target.kind {
        TargetKind::Mailbox => to_mailbox(settings, req, target, message, eol).await,
        TargetKind::Forward => to_forward(settings, req, target, message, eol).await,
        TargetKind::List => list::deliver(settings, req, target, message).await,
    }
}

async fn to_mailbox(
    settings: &Settings,
    req: &DeliverRequest,
    target: &Target,
    message: &Arc<Message>,
    eol: &'static [u8],
) -> Status {
    let qid = req.queue_id.as_str();
    let prefix = match Prepend::new(eol)
        .return_path(&req.sender)
        .and_then(|p| p.delivered_to(&target.address))
    {
        Ok(p) => p.into_bytes(),
        Err(e) => {
            error!(id = qid; "deferred to=<{}>: {e}", target.address);
            return Status::Temporary("internal error".into());
        }
    };
    let Some(prefix) = with_one_click(req, prefix, eol) else {
        return Status::Temporary("internal error".into());
    };
    let (root, location, quota) = (
        settings.mail_root.clone(),
        target.maildir.clone(),
        target.quota,
    );
    let m = Arc::clone(message);
    let done =
        tokio::task::spawn_blocking(move || mailbox::deliver(&root, &location, quota, &m, &prefix))
            .await;
    let via = if target.address == req.recipient {
        String::new()
    } else {
        format!(" rcpt=<{}>", req.recipient)
    };
    let detail = target
        .detail
        .as_deref()
        .map(|d| format!(" detail={d}"))
        .unwrap_or_default();
    let failed = |what: &str, why: &dyn std::fmt::Display| {
        format!(
            "{what} to=<{}> maildir={}{via}: {why}",
            target.address, target.maildir
        )
    };
    match done {
        Ok(Ok((_, base))) => {
            info!(id = qid; "delivered to=<{}> maildir={}{detail}{via} file={base}",
                target.address, target.maildir);
            Status::Ok("delivered".into())
        }
        Ok(Err(MailboxError::Maildir(e @ moat_maildir::Error::OverQuota { .. }))) => {
            info!(id = qid; "{}", failed("deferred", &e));
            Status::Temporary(MAILBOX_FULL.into())
        }
        Ok(Err(MailboxError::Maildir(e)))
            if e.io_kind() == Some(std::io::ErrorKind::FileTooLarge) =>
        {
            warn!(id = qid; "{}", failed("bounced", &e));
            Status::Permanent(format!("message too large (limit {MAX_MESSAGE} bytes)"))
        }
        Ok(Err(MailboxError::Maildir(e))) if e.is_temporary() => {
            warn!(id = qid; "{}", failed("deferred", &e));
            Status::Temporary("mailbox temporarily unavailable".into())
        }
        Ok(Err(MailboxError::Maildir(e))) => {
            error!(id = qid; "{}", failed("bounced", &e));
            Status::Permanent("mailbox unavailable".into())
        }
        Ok(Err(e @ (MailboxError::Location(_) | MailboxError::Quota(_)))) => {
            error!(id = qid; "{}", failed("deferred", &e));
            Status::Temporary("mailbox misconfigured".into())
        }
        Err(e) => {
            error!(id = qid; "{}", failed("deferred", &e));
            Status::Temporary("internal error".into())
        }
    }
}

async fn to_forward(
    settings: &Settings,
    req: &DeliverRequest,
    target: &Target,
    message: &Arc<Message>,
    eol: &'static [u8],
) -> Status {
    let qid = req.queue_id.as_str();
    let prefix = match Prepend::new(eol).delivered_to(&req.recipient) {
        Ok(p) => p.into_bytes(),
        Err(e) => {
            error!(id = qid; "deferred forward to=<{}>: {e}", target.address);
            return Status::Temporary("internal error".into());
        }
    };
    let Some(prefix) = with_one_click(req, prefix, eol) else {
        return Status::Temporary("internal error".into());
    };
    let client = format!(
        "moat-local on {} for <{}> ({qid})",
        settings.hostname, req.recipient
    );
    let sent = forward::forward(
        &settings.queue_socket,
        &client,
        Arc::clone(message),
        prefix,
        &req.sender,
        &target.address,
    )
    .await;
    let to = &target.address;
    let rcpt = &req.recipient;
    match sent {
        Ok(Status::Ok(new_id)) => {
            info!(id = qid; "forwarded to=<{to}> rcpt=<{rcpt}> as={new_id}");
            Status::Ok("forwarded".into())
        }
        Ok(Status::Temporary(why)) => {
            warn!(id = qid; "deferred forward to=<{to}> rcpt=<{rcpt}>: queue says {why}");
            Status::Temporary(format!("forward to <{to}>: {why}"))
        }
        Ok(Status::Permanent(why)) => {
            warn!(id = qid; "bounced forward to=<{to}> rcpt=<{rcpt}>: queue says {why}");
            Status::Permanent(format!("forward to <{to}>: {why}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            warn!(id = qid; "bounced forward to=<{to}> rcpt=<{rcpt}>: {e}");
            Status::Permanent(format!("message too large (limit {MAX_MESSAGE} bytes)"))
        }
        Err(e) => {
            warn!(id = qid; "deferred forward to=<{to}> rcpt=<{rcpt}>: {e}");
            Status::Temporary("queue unavailable for forwarding".into())
        }
    }
}

/// `prefix` followed by the recipient's RFC 8058 fields when the request carries a one-click
/// attribute; `None` (logged) when they cannot be made.
fn with_one_click(req: &DeliverRequest, mut prefix: Vec<u8>, eol: &[u8]) -> Option<Vec<u8>> {
    let Some(oc) = &req.one_click else {
        return Some(prefix);
    };
    match oc.headers(&req.recipient, eol) {
        Ok(lines) => {
            prefix.extend_from_slice(&lines);
            Some(prefix)
        }
        Err(e) => {
            error!(id = &req.queue_id; "deferred rcpt=<{}>: one-click headers: {e}",
                req.recipient);
            None
        }
    }
}

/// One verdict for the recipient from the verdicts of its targets.
fn combine(results: &[(TargetKind, Status)]) -> Status {
    if let Some((_, Status::Temporary(why))) = results
        .iter()
        .find(|(_, s)| matches!(s, Status::Temporary(_)))
    {
        return Status::Temporary(why.clone());
    }
    let ok = |kind: TargetKind| {
        results
            .iter()
            .filter(|(k, s)| *k == kind && matches!(s, Status::Ok(_)))
            .count()
    };
    let (boxes, forwards) = (ok(TargetKind::Mailbox), ok(TargetKind::Forward));
    if let Some((_, Status::Permanent(why))) = results
        .iter()
        .find(|(_, s)| matches!(s, Status::Permanent(_)))
    {
        return match boxes + forwards {
            0 => Status::Permanent(why.clone()),
            n => Status::Permanent(format!(
                "{why} (delivered to {n} other {})",
                plural(n, "target")
            )),
        };
    }
    let text = match (boxes, forwards) {
        (b, 0) => format!("delivered to {b} {}", plural(b, "mailbox")),
        (0, f) => format!("forwarded to {f} {}", plural(f, "address")),
        (b, f) => format!(
            "delivered to {b} {}, forwarded to {f} {}",
            plural(b, "mailbox"),
            plural(f, "address")
        ),
    };
    Status::Ok(text)
}

fn plural(n: usize, word: &str) -> String {
    match (n, word) {
        (1, w) => w.to_string(),
        (_, w) if w.ends_with('x') || w.ends_with('s') => format!("{w}es"),
        (_, w) => format!("{w}s"),
    }
}

fn text(status: &Status) -> &str {
    match status {
        Status::Ok(t) | Status::Temporary(t) | Status::Permanent(t) => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Status {
        Status::Ok("x".into())
    }

    #[test]
    fn verdicts() {
        use TargetKind::{Forward, Mailbox};
        assert_eq!(
            combine(&[(Mailbox, ok()), (Mailbox, ok()), (Mailbox, ok())]),
            Status::Ok("delivered to 3 mailboxes".into())
        );
        assert_eq!(
            combine(&[(Mailbox, ok()), (Forward, ok())]),
            Status::Ok("delivered to 1 mailbox, forwarded to 1 address".into())
        );
        assert_eq!(
            combine(&[(Forward, ok()), (Forward, ok())]),
            Status::Ok("forwarded to 2 addresses".into())
        );
        assert_eq!(
            combine(&[
                (Mailbox, Status::Permanent("p".into())),
                (Mailbox, Status::Temporary("t1".into())),
                (Mailbox, Status::Temporary("t2".into())),
            ]),
            Status::Temporary("t1".into())
        );
        assert_eq!(
            combine(&[
                (Mailbox, Status::Permanent("p".into())),
                (Forward, Status::Permanent("q".into()))
            ]),
            Status::Permanent("p".into())
        );
        assert_eq!(
            combine(&[(Mailbox, ok()), (Mailbox, Status::Permanent("p".into()))]),
            Status::Permanent("p (delivered to 1 other target)".into())
        );
    }
}
