//! `C` [recipient, size]: the RCPT-time check smtpd makes on port 25. Answers `K` when the
//! recipient exists and every mailbox it reaches has room for `size` bytes (or, with no size
//! announced, is not already full), `D` "no such user" for an address we do not host or do not
//! know, `Z` "over quota" or a store problem otherwise; a mailing list is `K` when moat-lists
//! is configured, else `Z` (`list.rs`).
//!
//! SECURITY: answers only the existence of an address and a yes/no on room: no paths, no
//! quota figures, nothing of the targets. It creates nothing on disk (a mailbox that was never
//! delivered to counts as empty). Only `peers_smtpd` (and root/ourselves) may ask, see `peers`.

use moat_common::client::auth::TargetKind;
use moat_common::wire::Status;
use moat_common::{error, info, warn};

use crate::local::request::CheckRequest;
use crate::local::resolve::resolve;
use crate::local::settings::Settings;
use crate::local::{list, mailbox, quota};

/// The reply text when a mailbox has no room (docs/PROTOCOLS.md: smtpd answers 452 4.2.2).
pub const OVER_QUOTA: &str = "over quota";

pub async fn check(settings: &Settings, req: &CheckRequest) -> Status {
    let targets = match resolve(settings, &req.recipient, None).await {
        Ok(t) => t,
        Err(status) => return status,
    };
    if let Some(list) = targets.iter().find(|t| t.kind == TargetKind::List) {
        return list::check(settings, list, &req.recipient);
    }
    for target in targets.iter().filter(|t| t.kind == TargetKind::Mailbox) {
        let limit = match moat_maildir::store_limit(target.quota) {
            Ok(Some(limit)) => limit,
            Ok(None) => continue,
            Err(e) => {
                error!("moat-auth's answer for <{}>: {e}", req.recipient);
                return Status::Temporary("bad answer from the user store".into());
            }
        };
        let path = match mailbox::maildir_path(&settings.mail_root, &target.maildir) {
            Ok(path) => path,
            Err(e) => {
                error!("mailbox of <{}>: {e}", target.address);
                return Status::Temporary("mailbox misconfigured".into());
            }
        };
        let size = req.size.unwrap_or(0);
        let verdict =
            tokio::task::spawn_blocking(move || quota::has_room(&path, limit, size)).await;
        match verdict {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                info!(
                    "over quota at RCPT: rcpt=<{}> mailbox=<{}> size={size}",
                    req.recipient, target.address
                );
                return Status::Temporary(OVER_QUOTA.into());
            }
            Ok(Err(e)) => {
                warn!("quota of <{}>: {e}", target.address);
                return Status::Temporary("mailbox temporarily unavailable".into());
            }
            Err(e) => {
                error!("quota check of <{}> failed: {e}", target.address);
                return Status::Temporary("internal error".into());
            }
        }
    }
    Status::Ok("ok".into())
}
