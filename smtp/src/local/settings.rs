//! moat-local's settings, from the supervisor's setup channel (docs/PROTOCOLS.md, "moat-local"):
//! `mail_root`, `auth_socket`, `queue_socket`, `hostname`, `peers_queue`, `peers_smtpd`, and
//! `subaddress_folders` (accepted, not implemented yet: sub-addresses go to INBOX).
//!
//! SECURITY: settings come from the supervisor (trusted), but are still checked before the
//! first request is served: the mail root must be an existing absolute directory (never created
//! here: a missing mount must not turn into mail on the wrong disk) and the peer lists must
//! parse (a typo is a startup error, not "nobody allowed" or "everybody allowed").

use std::path::PathBuf;

use moat_common::child::Setup;
use moat_common::client::auth::AuthClient;
use moat_common::warn;

use crate::local::peers::Peers;

/// What every request handler needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Maildirs live under `mail_root/<domain>/<local>/Maildir`.
    pub mail_root: PathBuf,
    pub auth_socket: PathBuf,
    pub auth: AuthClient,
    pub queue_socket: PathBuf,
    /// This host's name, for log and injection descriptions.
    pub hostname: String,
    pub peers: Peers,
}

impl Settings {
    /// Reads and checks the settings; `own_uid` is the uid we run as (always an allowed peer).
    pub fn from_setup(setup: &Setup, own_uid: u32) -> Result<Settings, String> {
        let get = |key: &str| setup.get(key).map_err(|e| e.to_string());
        let mail_root = PathBuf::from(get("mail_root")?);
        if !mail_root.is_absolute() || !mail_root.is_dir() {
            return Err(format!(
                "mail_root {} is not an existing absolute directory",
                mail_root.display()
            ));
        }
        let peers = Peers::from_settings(
            setup.get_opt("peers_queue").unwrap_or(""),
            setup.get_opt("peers_smtpd").unwrap_or(""),
            own_uid,
        )?;
        if matches!(setup.get_opt("subaddress_folders"), Some(v) if !matches!(v, "" | "0" | "no" | "false" | "off"))
        {
            warn!("subaddress_folders is not implemented yet: sub-addressed mail goes to INBOX");
        }
        let auth_socket = PathBuf::from(get("auth_socket")?);
        Ok(Settings {
            mail_root,
            auth: AuthClient::new(&auth_socket),
            auth_socket,
            queue_socket: PathBuf::from(get("queue_socket")?),
            hostname: setup.get_opt("hostname").unwrap_or("localhost").to_string(),
            peers,
        })
    }
}
