//! moat-smtpd's settings, as the supervisor hands them over (docs/PROTOCOLS.md "moat-smtpd").
//!
//! Required: `hostname`, `auth_socket`, `queue_socket`, `local_socket`. Optional, with their
//! defaults: `max_message_size` (36700160), `max_recipients` (100), `max_connections` (200),
//! `max_connections_per_ip` (20), `timeout_command_secs` (300, RFC 5321 4.5.3.2: greeting,
//! MAIL, RCPT, and every other command), `timeout_data_secs` (180: the DATA/BDAT block),
//! `timeout_tls_secs` (30: one TLS handshake), `drain_secs` (55: how long open transactions may
//! run on after SIGTERM before they get 421; the supervisor kills us at 60),
//! `sender_login_match` (`true`: after AUTH, MAIL FROM must be an address of the login; see
//! `policy.rs`).
//!
//! SECURITY: settings come from the supervisor, which is trusted; they are still parsed
//! strictly (a typo in a number is an error at start, not a silent default), and the host name
//! is checked because it goes into replies and header lines. `max_recipients` above what the
//! queue takes in one envelope (1000) is lowered to it, with a warning.

use std::path::PathBuf;
use std::time::Duration;

use moat_common::daemon::settings::{count, flag, number, required, valid_hostname};
use moat_common::warn;

/// The most recipients the queue takes in one envelope (moat-queue's `MAX_RECIPIENTS`).
pub const QUEUE_MAX_RECIPIENTS: u64 = 1000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub auth_socket: PathBuf,
    pub queue_socket: PathBuf,
    pub local_socket: PathBuf,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub timeouts: Timeouts,
    pub drain: Duration,
    /// After AUTH, MAIL FROM must be owned by the login (`[submission] sender_login_match`).
    pub sender_login_match: bool,
}

/// How long a client may take (RFC 5321 4.5.3.2, as total deadlines: see `clock.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A whole command line, counted from our previous reply (also the greeting, AUTH lines,
    /// and writing a reply to a client that does not read).
    pub command: Duration,
    /// Each `clock::DATA_PROGRESS` octets of a DATA body or BDAT chunk.
    pub data: Duration,
    /// One TLS handshake.
    pub tls: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            command: Duration::from_secs(300),
            data: Duration::from_secs(180),
            tls: Duration::from_secs(30),
        }
    }
}

impl Settings {
    /// Reads the settings through `get` (`Setup::get_opt` in the daemon, a map in tests).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let required = |key: &str| required(get, key);
        let hostname = required("hostname")?;
        if !valid_hostname(&hostname) {
            return Err(format!(
                "setting hostname = {hostname:?} is not a host name"
            ));
        }
        let secs = |key: &str, default: u64| number(get, key, default, 1).map(Duration::from_secs);
        let mut max_recipients = number(get, "max_recipients", 100, 1)?;
        if max_recipients > QUEUE_MAX_RECIPIENTS {
            warn!(
                "max_recipients = {max_recipients} is more than the queue takes in one message: \
                 using {QUEUE_MAX_RECIPIENTS}"
            );
            max_recipients = QUEUE_MAX_RECIPIENTS;
        }
        let count = |key: &str, default: u64| count(get, key, default);
        Ok(Settings {
            hostname: hostname.to_ascii_lowercase(),
            auth_socket: PathBuf::from(required("auth_socket")?),
            queue_socket: PathBuf::from(required("queue_socket")?),
            local_socket: PathBuf::from(required("local_socket")?),
            max_message_size: number(get, "max_message_size", 36_700_160, 1024)?,
            max_recipients: usize::try_from(max_recipients).map_err(|e| e.to_string())?,
            max_connections: count("max_connections", 200)?,
            max_connections_per_ip: count("max_connections_per_ip", 20)?,
            timeouts: Timeouts {
                command: secs("timeout_command_secs", 300)?,
                data: secs("timeout_data_secs", 180)?,
                tls: secs("timeout_tls_secs", 30)?,
            },
            drain: secs("drain_secs", 55)?,
            sender_login_match: flag(get, "sender_login_match", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("hostname", "MX.Example.test"),
        ("auth_socket", "/run/moat/auth.sock"),
        ("queue_socket", "/run/moat/queue.sock"),
        ("local_socket", "/run/moat/local.sock"),
    ];

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_lookup(&lookup(&BASE)).expect("settings");
        assert_eq!(s.hostname, "mx.example.test");
        assert_eq!(s.max_recipients, 100);
        assert_eq!(s.timeouts, Timeouts::default());
        assert_eq!(s.drain, Duration::from_secs(55));
        assert!(s.sender_login_match, "on unless turned off");
        let mut pairs = BASE.to_vec();
        pairs.push(("timeout_command_secs", "2"));
        pairs.push(("max_connections_per_ip", "3"));
        let s = Settings::from_lookup(&lookup(&pairs)).expect("settings");
        assert_eq!(s.timeouts.command, Duration::from_secs(2));
        assert_eq!(s.max_connections_per_ip, 3);
        pairs.push(("sender_login_match", "false"));
        let s = Settings::from_lookup(&lookup(&pairs)).expect("settings");
        assert!(!s.sender_login_match);
        pairs.push(("max_recipients", "5000"));
        let s = Settings::from_lookup(&lookup(&pairs)).expect("settings");
        assert_eq!(s.max_recipients, 1000, "clamped to what the queue takes");
    }

    #[test]
    fn bad_values_are_errors() {
        for (key, value) in [
            ("max_recipients", "ten"),
            ("timeout_data_secs", "0"),
            ("hostname", "mx example"),
            ("hostname", "mx.example.test\r\n250 fake"),
            ("max_connections", "99999999999"),
            ("sender_login_match", "yes please"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            assert!(
                Settings::from_lookup(&lookup(&pairs)).is_err(),
                "{key} = {value:?}"
            );
        }
        assert!(Settings::from_lookup(&lookup(&BASE[1..])).is_err());
    }
}
