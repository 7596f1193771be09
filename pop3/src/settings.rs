//! moat-pop3d's settings as the supervisor hands them over (installer/src/serve/specs.rs).
//!
//! Required: `hostname`, `mail_root`, `auth_socket`. Optional, with defaults:
//! `plaintext_on_loopback` (true: USER/PASS and AUTH PLAIN without TLS from 127.0.0.0/8 and
//! ::1, for local fetchers), `idle_timeout_secs` (600, RFC 1939's ten minutes),
//! `max_connections` (200), `max_connections_per_ip` (20).
//!
//! SECURITY: the supervisor is trusted, but values are still parsed strictly (a typo is an
//! error at start, never a silent default), and the host name is checked because it goes
//! into every greeting.

use std::path::PathBuf;
use std::time::Duration;

use moat_common::daemon::settings::{count, required, valid_hostname};

#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub mail_root: PathBuf,
    pub auth_socket: PathBuf,
    pub plaintext_on_loopback: bool,
    /// How long the client may be silent (and how long one write to it may take).
    pub idle: Duration,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
}

/// One TLS handshake may take this long.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(30);

impl Settings {
    /// Reads the settings through `get` (`Setup::get_opt` in the daemon, a map in tests).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let required = |key: &str| required(get, key);
        // Every number here is from 1 and fits a u32.
        let count = |key: &str, default: u64| count(get, key, default);
        let hostname = required("hostname")?;
        if !valid_hostname(&hostname) {
            return Err(format!(
                "setting hostname = {hostname:?} is not a host name"
            ));
        }
        let plaintext_on_loopback = match get("plaintext_on_loopback").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(format!(
                    "setting plaintext_on_loopback = {other:?} is not true or false"
                ));
            }
        };
        Ok(Settings {
            hostname,
            mail_root: PathBuf::from(required("mail_root")?),
            auth_socket: PathBuf::from(required("auth_socket")?),
            plaintext_on_loopback,
            idle: Duration::from_secs(count("idle_timeout_secs", 600)?.into()),
            max_connections: count("max_connections", 200)?,
            max_connections_per_ip: count("max_connections_per_ip", 20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("hostname", "pop.example.test"),
        ("mail_root", "/var/mail"),
        ("auth_socket", "/run/moat/auth.sock"),
    ];

    #[test]
    fn defaults_and_strictness() {
        let s = parse(&BASE).expect("settings");
        assert!(s.plaintext_on_loopback);
        assert_eq!(s.idle, Duration::from_secs(600));
        let mut bad = BASE.to_vec();
        bad.push(("plaintext_on_loopback", "yes"));
        assert!(parse(&bad).is_err());
        let mut bad = BASE.to_vec();
        bad.push(("idle_timeout_secs", "10m"));
        assert!(parse(&bad).is_err());
        assert!(parse(&BASE[1..]).is_err());
        let mut bad = BASE.to_vec();
        bad[0] = ("hostname", "pop\r\nx");
        assert!(parse(&bad).is_err());
    }
}
