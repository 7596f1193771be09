//! Mailing-list targets (moat-auth's `list` kind, docs/LISTS.md): handed to moat-lists with the
//! message descriptor (`lists_socket`), whose `K`/`Z`/`D` becomes this target's verdict. A `Z`,
//! or moat-lists not answering, stays temporary: the queue keeps the message and retries, so
//! list mail is never dropped here. Without a `lists_socket` (a supervisor that starts no
//! moat-lists) list mail is answered with a temporary failure, as before moat-lists existed.
//!
//! SECURITY: moat-lists re-checks every field; the extension it gets is moat-auth's, which it
//! parses again. Nothing of the message is read here.

use std::sync::Arc;

use moat_common::client::auth::Target;
use moat_common::client::lists::ListsClient;
use moat_common::wire::Status;
use moat_common::{info, warn};

use crate::local::message::Message;
use crate::local::request::DeliverRequest;
use crate::local::settings::Settings;

/// The `Z` text for mail to a list while no list manager takes it.
pub const LIST_MANAGER_DOWN: &str = "4.3.0 list manager not running";
/// The `Z` text when moat-lists did not answer within `lists::TIMEOUT` (shorter than the
/// queue's wait for moat-local, so the queue gets this answer, not a timeout of its own).
pub const LIST_MANAGER_SLOW: &str = "4.3.0 list manager did not answer in time";

/// The RCPT-time verdict for list target `target` of `recipient`: accepted when moat-lists is
/// configured (what it does with the message is decided at delivery), else deferred.
pub fn check(settings: &Settings, target: &Target, recipient: &str) -> Status {
    if settings.lists_socket.is_some() {
        Status::Ok("mailing list".into())
    } else {
        not_running(target, recipient, None)
    }
}

/// Hands `message` for list target `target` of `req` to moat-lists.
pub async fn deliver(
    settings: &Settings,
    req: &DeliverRequest,
    target: &Target,
    message: &Arc<Message>,
) -> Status {
    let qid = req.queue_id.as_str();
    let Some(socket) = &settings.lists_socket else {
        return not_running(target, &req.recipient, Some(qid));
    };
    let extension = target.detail.as_deref().unwrap_or("");
    let client = ListsClient::new(socket);
    match client
        .handle(
            qid,
            &target.address,
            extension,
            &req.sender,
            message.as_fd(),
        )
        .await
    {
        Ok(status) => {
            let (word, text) = match &status {
                Status::Ok(t) => ("handed to moat-lists", t),
                Status::Temporary(t) => ("deferred by moat-lists", t),
                Status::Permanent(t) => ("refused by moat-lists", t),
            };
            info!(id = qid; "{word} rcpt=<{}> list=<{}> ({}): {text}",
                req.recipient, target.address, command(extension));
            status
        }
        Err(e) => {
            warn!(id = qid; "deferred rcpt=<{}>: mailing list <{}> ({}): moat-lists: {e}",
                req.recipient, target.address, command(extension));
            if e.kind() == std::io::ErrorKind::TimedOut {
                Status::Temporary(LIST_MANAGER_SLOW.into())
            } else {
                Status::Temporary(LIST_MANAGER_DOWN.into())
            }
        }
    }
}

fn command(extension: &str) -> &str {
    if extension.is_empty() {
        "post"
    } else {
        extension
    }
}

/// The verdict for list target `target` of `recipient` while no moat-lists is configured
/// (tagged with the queue id if any).
pub fn not_running(target: &Target, recipient: &str, queue_id: Option<&str>) -> Status {
    let command = target.detail.as_deref().unwrap_or("post");
    match queue_id {
        Some(id) => {
            warn!(id = id; "deferred rcpt=<{recipient}>: mailing list <{}> ({command}): list manager not running", target.address)
        }
        None => warn!(
            "refused for now rcpt=<{recipient}>: mailing list <{}> ({command}): list manager not running",
            target.address
        ),
    }
    Status::Temporary(LIST_MANAGER_DOWN.into())
}
