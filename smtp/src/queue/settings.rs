//! moat-queue's settings, as the supervisor hands them over (docs/PROTOCOLS.md "moat-queue").
//!
//! Required: `queue_dir`, `local_socket`, `hostname`. Optional: `queue_lifetime_secs` (432000),
//! `bounce_from` (`MAILER-DAEMON@<hostname>`), `peers_smtpd`, `peers_local`, `peers_lists` (uids, ""),
//! `retry_schedule` (seconds joined by `,`: `60,300,900,1800,3600,7200,14400`, see `schedule`),
//! `delay_warning_secs` (14400; 0 = no delay notices), `max_deliveries` (20), `max_message_size`
//! (36700160), `remote_socket` ("" or absent: no moat-remote; mail for other domains waits),
//! `remote_timeout_secs` (3600).
//!
//! SECURITY: settings come from the supervisor, which is trusted; they are still parsed strictly
//! (a typo in a number is an error at start, not a silent default).

use std::path::PathBuf;

use moat_common::config::DEFAULT_DELAY_WARNING_SECS;
use moat_common::conn::parse_uids;
use moat_common::daemon::settings;

use super::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_dir: PathBuf,
    pub local_socket: PathBuf,
    pub hostname: String,
    pub lifetime_secs: u64,
    pub bounce_from: String,
    pub peers_smtpd: Vec<u32>,
    pub peers_local: Vec<u32>,
    /// moat-lists' uid(s): the only peers that may claim origin `list` (DKIM-signed as the
    /// list's domain).
    pub peers_lists: Vec<u32>,
    pub retry_schedule: Schedule,
    /// How old a message must be before its sender is told it is late; `None` = never.
    pub delay_warning_secs: Option<u64>,
    pub max_deliveries: usize,
    pub max_message_size: u64,
    pub remote_socket: Option<PathBuf>,
    pub remote_timeout_secs: u64,
}

impl Settings {
    /// Reads the settings through `get` (`Setup::get_opt` in the daemon, a map in tests).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let required = |key: &str| get(key).ok_or_else(|| format!("setting {key} is missing"));
        let hostname = required("hostname")?;
        let number = |key: &str, default: u64| settings::number(get, key, default, 0);
        let uids = |key: &str| parse_uids(&get(key).unwrap_or_default());
        let max_deliveries = number("max_deliveries", 20)?;
        if max_deliveries == 0 {
            return Err("max_deliveries must be at least 1".into());
        }
        let retry_schedule = match get("retry_schedule") {
            Some(text) => Schedule::parse(&text)?,
            None => Schedule::default(),
        };
        let delay_warning_secs =
            Some(number("delay_warning_secs", DEFAULT_DELAY_WARNING_SECS)?).filter(|s| *s > 0);
        Ok(Settings {
            queue_dir: PathBuf::from(required("queue_dir")?),
            local_socket: PathBuf::from(required("local_socket")?),
            lifetime_secs: number("queue_lifetime_secs", 432_000)?,
            bounce_from: get("bounce_from")
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| format!("MAILER-DAEMON@{hostname}")),
            peers_smtpd: uids("peers_smtpd")?,
            peers_local: uids("peers_local")?,
            peers_lists: uids("peers_lists")?,
            retry_schedule,
            delay_warning_secs,
            max_deliveries: usize::try_from(max_deliveries).map_err(|e| e.to_string())?,
            max_message_size: number("max_message_size", 36_700_160)?,
            remote_socket: get("remote_socket")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            remote_timeout_secs: number("remote_timeout_secs", 3600)?,
            hostname,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_errors() {
        let base = [
            ("queue_dir", "/q"),
            ("local_socket", "/run/moat/local.sock"),
            ("hostname", "mx.example.test"),
        ];
        let s = from(&base).expect("settings");
        assert_eq!(s.bounce_from, "MAILER-DAEMON@mx.example.test");
        assert_eq!(s.max_deliveries, 20);
        assert_eq!(
            (s.retry_schedule.first(), s.retry_schedule.delay_after(7)),
            (60, 14_400)
        );
        assert_eq!(s.delay_warning_secs, Some(14_400));
        assert_eq!(s.lifetime_secs, 432_000);
        for (key, value) in [("retry_schedule", "soon"), ("delay_warning_secs", "4h")] {
            let mut bad = base.to_vec();
            bad.push((key, value));
            assert!(from(&bad).is_err(), "{key}={value}");
        }
        let mut short = base.to_vec();
        short.extend([("retry_schedule", "1,2,3"), ("delay_warning_secs", "0")]);
        let s = from(&short).expect("short schedule");
        assert_eq!(
            (s.retry_schedule.delay_after(9), s.delay_warning_secs),
            (3, None)
        );
        assert!(from(&base[..2]).is_err());
        let mut peers = base.to_vec();
        peers.push(("peers_smtpd", "1001,1002"));
        assert_eq!(from(&peers).expect("ok").peers_smtpd, vec![1001, 1002]);
        assert!(from(&peers).expect("ok").peers_lists.is_empty());
        peers.push(("peers_lists", "1003"));
        assert_eq!(from(&peers).expect("ok").peers_lists, vec![1003]);
    }
}
