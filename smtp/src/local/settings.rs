//! moat-local's settings, from the supervisor's setup channel (docs/PROTOCOLS.md, "moat-local"):
//! `mail_root`, `auth_socket`, `queue_socket`, `lists_socket` (optional), `hostname`,
//! `peers_queue`, `peers_smtpd`.
//!
//! SECURITY: settings come from the supervisor (trusted), but are still checked before the
//! first request is served: the mail root must be an existing absolute directory (never created
//! here: a missing mount must not turn into mail on the wrong disk) and the peer lists must
//! parse (a typo is a startup error, not "nobody allowed" or "everybody allowed").

use std::path::PathBuf;

use moat_common::child::Setup;
use moat_common::client::auth::AuthClient;

use crate::local::peers::Peers;

/// What every request handler needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Maildirs live under `mail_root/<domain>/<local>/Maildir`.
    pub mail_root: PathBuf,
    pub auth_socket: PathBuf,
    pub auth: AuthClient,
    pub queue_socket: PathBuf,
    /// moat-lists' socket, which takes list targets; `None` (setting absent or "") answers
    /// them `Z` "list manager not running" as before moat-lists existed.
    pub lists_socket: Option<PathBuf>,
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
        let auth_socket = PathBuf::from(get("auth_socket")?);
        Ok(Settings {
            mail_root,
            auth: AuthClient::new(&auth_socket),
            auth_socket,
            queue_socket: PathBuf::from(get("queue_socket")?),
            lists_socket: setup
                .get_opt("lists_socket")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            hostname: setup.get_opt("hostname").unwrap_or("localhost").to_string(),
            peers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::child::{Item, send_setup};
    use std::os::unix::net::UnixStream;

    fn settings(items: &[(&str, &str)]) -> Result<Settings, String> {
        let (sup, child) = UnixStream::pair().expect("pair");
        let items: Vec<Item<'_>> = items
            .iter()
            .map(|(k, v)| Item::Setting(k, v.to_string()))
            .collect();
        send_setup(&sup, &items).expect("send");
        let setup = Setup::receive_from(child).expect("receive");
        Settings::from_setup(&setup, 990)
    }

    #[test]
    fn checked_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().display().to_string();
        let base = [
            ("mail_root", root.as_str()),
            ("auth_socket", "/run/moat/auth.sock"),
            ("queue_socket", "/run/moat/queue.sock"),
            ("peers_queue", "998"),
        ];
        let s = settings(&base).expect("good settings");
        assert_eq!(s.mail_root, dir.path());
        assert_eq!(s.queue_socket, PathBuf::from("/run/moat/queue.sock"));
        assert_eq!(s.hostname, "localhost");
        assert_eq!(s.peers, Peers::new(vec![998], vec![], 990));
        for (key, bad) in [
            ("mail_root", "relative/mail"),
            ("mail_root", "/nonexistent/mail"),
            ("peers_smtpd", "smtpd"),
        ] {
            let mut items = base.to_vec();
            items.push((key, bad));
            assert!(settings(&items).is_err(), "{key}={bad}");
        }
        assert!(settings(&base[..2]).is_err(), "queue_socket is required");
    }
}
