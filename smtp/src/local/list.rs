//! Mailing-list targets (moat-auth's `list` kind, docs/LISTS.md). The list manager
//! (moat-lists) is not built yet, so list mail is answered with a temporary failure: at RCPT
//! time the sender's server keeps it, and mail already queued (submission, sendmail, an
//! alias reaching a list) waits in our queue and is retried, then bounced at the queue's
//! lifetime. Never dropped: each refusal is logged with the list and its command.

use moat_common::client::auth::Target;
use moat_common::warn;
use moat_common::wire::Status;

/// The `Z` text for mail to a list while no list manager takes it.
pub const LIST_MANAGER_DOWN: &str = "4.3.0 list manager not running";

/// The verdict for list target `target` of `recipient` (tagged with the queue id if any).
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
