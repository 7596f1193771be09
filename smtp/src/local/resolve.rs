//! Asking moat-auth where mail for an address goes, and turning its answer into qmail's words:
//! unknown → permanent (`D` "no such user"), store trouble → temporary (`Z`).
//!
//! SECURITY: moat-local never opens the user store; it asks moat-auth over its socket (the
//! client applies a timeout, so a hung moat-auth costs a temporary failure, not a stuck
//! delivery). The targets that come back are checked again where they are used (`mailbox`,
//! `deliver`), and the reasons sent on to our own peers are fixed texts or moat-auth's own
//! reply text, never our local error details (paths, errno), which stay in the log.

use moat_common::client::auth::{NOT_LOCAL, Resolved, Target};
use moat_common::warn;
use moat_common::wire::Status;

use crate::local::settings::Settings;

/// The reply text for an address nobody here receives mail for.
pub const NO_SUCH_USER: &str = "no such user";
/// The reply text when moat-auth cannot be asked.
pub const STORE_UNAVAILABLE: &str = "user store unavailable";

/// The targets of `address`, or the status to answer with. `queue_id` tags the log lines.
pub async fn resolve(
    settings: &Settings,
    address: &str,
    queue_id: Option<&str>,
) -> Result<Vec<Target>, Status> {
    match settings.auth.resolve(address).await {
        Ok(Resolved::Targets(targets)) => Ok(targets),
        Ok(Resolved::Unknown) => Err(Status::Permanent(NO_SUCH_USER.into())),
        // For `C`, a plain refusal that smtpd turns into "relaying denied" or, after AUTH, an
        // accepted remote recipient. For `L`, deliver.rs makes it a temporary failure: remote
        // mail waits in the queue until moat-remote takes it.
        Ok(Resolved::NotLocal) => Err(Status::Permanent(NOT_LOCAL.into())),
        Ok(Resolved::Temporary(why)) => Err(Status::Temporary(why)),
        Err(e) => {
            match queue_id {
                Some(id) => warn!(id = id; "cannot resolve <{address}> through moat-auth: {e}"),
                None => warn!("cannot resolve <{address}> through moat-auth: {e}"),
            }
            Err(Status::Temporary(STORE_UNAVAILABLE.into()))
        }
    }
}
