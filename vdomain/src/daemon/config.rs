//! moat-auth's settings, read from the supervisor's setup channel (docs/PROTOCOLS.md):
//! `store_url`, `subaddress_delimiter` ("" = off, default "+"), `peers_smtpd`, `peers_local`,
//! `peers_imapd`, `peers_lists`, `peers_login` (comma-separated uids, each optional: absent =
//! nobody), and the descriptor `auth` (taken separately by `main`).
//!
//! SECURITY: a malformed peer list is an error, never "nobody" or "everybody"; the store URL
//! may contain a password and is never printed (neither here nor in `Debug`).

use moat_common::child::Setup;
use moat_common::conn::parse_uids;

use super::server::Peers;
use crate::resolve::ResolveOptions;

/// Everything moat-auth needs besides its descriptors.
#[derive(Clone)]
pub struct Settings {
    pub store_url: String,
    pub resolve: ResolveOptions,
    pub peers: Peers,
}

/// Hand-written so the store URL (which may hold a password) never reaches a log.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("store_url", &"***")
            .field("resolve", &self.resolve)
            .field("peers", &self.peers)
            .finish()
    }
}

impl Settings {
    /// Reads the settings; `own_uid` is the uid moat-auth runs as (after the privilege drop).
    pub fn from_setup(setup: &Setup, own_uid: u32) -> Result<Settings, String> {
        let store_url = setup.get("store_url").map_err(|e| e.to_string())?;
        if store_url.trim().is_empty() {
            return Err("setting \"store_url\" is empty".into());
        }
        let delimiter = delimiter(setup.get_opt("subaddress_delimiter").unwrap_or("+"))?;
        let uids = |key: &str| -> Result<Vec<u32>, String> {
            parse_uids(setup.get_opt(key).unwrap_or(""))
                .map_err(|e| format!("setting {key:?}: {e}"))
        };
        Ok(Settings {
            store_url: store_url.to_owned(),
            resolve: ResolveOptions {
                subaddress_delimiter: delimiter,
                ..ResolveOptions::default()
            },
            peers: Peers {
                own: own_uid,
                smtpd: uids("peers_smtpd")?,
                local: uids("peers_local")?,
                imapd: uids("peers_imapd")?,
                lists: uids("peers_lists")?,
                login: uids("peers_login")?,
            },
        })
    }
}

/// "" turns sub-addressing off; otherwise one ASCII punctuation character other than `@` and
/// `.` (which could never separate a tag from a local part).
fn delimiter(text: &str) -> Result<Option<char>, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(c), None) if c.is_ascii_punctuation() && c != '@' && c != '.' => Ok(Some(c)),
        _ => Err(format!(
            "setting \"subaddress_delimiter\" is {text:?}: use one character such as \"+\" or \"-\", or \"\" to turn sub-addressing off"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::child::{Item, send_setup};
    use std::os::unix::net::UnixStream;

    fn setup(items: &[Item<'_>]) -> Setup {
        let (sup, child) = UnixStream::pair().expect("pair");
        send_setup(&sup, items).expect("send");
        Setup::receive_from(child).expect("receive")
    }

    #[test]
    fn settings() {
        let s = setup(&[
            Item::Setting("store_url", "postgres://u:secret@db/x".into()),
            Item::Setting("peers_smtpd", "1001, 1002".into()),
            Item::Setting("peers_local", "1003".into()),
            Item::Setting("peers_login", "1007,1008".into()),
        ]);
        let settings = Settings::from_setup(&s, 77).expect("valid");
        assert_eq!(settings.resolve.subaddress_delimiter, Some('+'));
        assert_eq!(
            settings.peers,
            Peers {
                own: 77,
                smtpd: vec![1001, 1002],
                local: vec![1003],
                imapd: vec![],
                lists: vec![],
                login: vec![1007, 1008],
            }
        );
        assert!(!format!("{settings:?}").contains("secret"));

        let s = setup(&[
            Item::Setting("store_url", "sqlite:/x.db".into()),
            Item::Setting("subaddress_delimiter", "".into()),
        ]);
        let settings = Settings::from_setup(&s, 77).expect("valid");
        assert_eq!(settings.resolve.subaddress_delimiter, None);

        let bad_peers = setup(&[
            Item::Setting("store_url", "sqlite:/x.db".into()),
            Item::Setting("peers_imapd", "moat-imapd".into()),
        ]);
        assert!(Settings::from_setup(&bad_peers, 77).is_err());
        let bad_login = setup(&[
            Item::Setting("store_url", "sqlite:/x.db".into()),
            Item::Setting("peers_login", "1007;1008".into()),
        ]);
        assert!(Settings::from_setup(&bad_login, 77).is_err());
        assert!(
            Settings::from_setup(&setup(&[]), 77).is_err(),
            "store_url is required"
        );
    }

    #[test]
    fn delimiters() {
        assert_eq!(delimiter("-"), Ok(Some('-')));
        assert_eq!(delimiter(""), Ok(None));
        for bad in ["++", "@", ".", "a", " ", "é"] {
            assert!(delimiter(bad).is_err(), "{bad:?}");
        }
    }
}
