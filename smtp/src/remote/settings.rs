//! moat-remote's settings, as the supervisor hands them over (docs/PROTOCOLS.md "moat-remote").
//!
//! Required: `hostname`. Optional: `peers_queue` (uids), `nameserver` (IP[:PORT]; "" = the first
//! `nameserver` of /etc/resolv.conf), `port` (25), `tls` (may), `routes`
//! (`domain=host:port/policy`, comma-separated), `timeout_connect_secs` (30),
//! `timeout_command_secs` (300), `timeout_data_block_secs` (180), `timeout_data_end_secs`
//! (600), `max_deliveries` (20), `max_per_destination` (20). The routes' credentials come with
//! their own settings and descriptors (`auth`), read by `Daemon::from_setup` into `credentials`.
//!
//! SECURITY: settings come from the trusted supervisor and are still parsed strictly.

use std::net::SocketAddr;
use std::time::Duration;

use moat_common::config::{Route, TlsPolicy, parse_nameserver, system_nameserver};
use moat_common::conn::parse_uids;
use moat_common::daemon::settings::number;

use super::auth;

#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub peers_queue: Vec<u32>,
    pub nameserver: SocketAddr,
    pub port: u16,
    pub tls: TlsPolicy,
    pub routes: Vec<Route>,
    pub timeouts: Timeouts,
    pub max_deliveries: usize,
    /// Transactions at once to one destination (`limit`); also the idle connections kept
    /// per address (`pool`).
    pub max_per_destination: usize,
    /// The credentials of the routes that have some (empty from `from_lookup`: they arrive as
    /// descriptors, see `auth::Table::from_setup`).
    pub credentials: auth::Table,
}

/// RFC 5321 §4.5.3.2 timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Greeting, EHLO, STARTTLS, MAIL, RCPT, DATA's 354, RSET, QUIT.
    pub command: Duration,
    /// Each block of message data written.
    pub data_block: Duration,
    /// The reply after the final dot.
    pub data_end: Duration,
}

impl Timeouts {
    /// The longest one transaction may take (the queue waits twice this plus a minute for an
    /// answer, `config::Remote::transaction_limit_secs`; a request may wait this long for a
    /// slot and still have a whole transaction's time).
    pub fn transaction(&self) -> Duration {
        self.connect + 6 * self.command + self.data_block + self.data_end
    }
}

impl Settings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let number = |key: &str, default: u64| number(get, key, default, 1);
        let hostname = get("hostname").ok_or("setting hostname is missing")?;
        let nameserver = match get("nameserver").filter(|n| !n.is_empty()) {
            Some(ns) => {
                parse_nameserver(&ns).ok_or_else(|| format!("setting nameserver {ns:?} is bad"))?
            }
            None => system_nameserver(),
        };
        let tls = match get("tls") {
            None => TlsPolicy::May,
            Some(t) => TlsPolicy::parse(&t).ok_or_else(|| format!("setting tls {t:?} is bad"))?,
        };
        let mut routes = Vec::new();
        for text in get("routes").unwrap_or_default().split(',') {
            if text.is_empty() {
                continue;
            }
            routes.push(Route::decode(text).ok_or_else(|| format!("bad route {text:?}"))?);
        }
        let port = u16::try_from(number("port", 25)?).map_err(|e| e.to_string())?;
        let secs = |key, default| number(key, default).map(Duration::from_secs);
        Ok(Settings {
            peers_queue: parse_uids(&get("peers_queue").unwrap_or_default())?,
            nameserver,
            port,
            tls,
            routes,
            timeouts: Timeouts {
                connect: secs("timeout_connect_secs", 30)?,
                command: secs("timeout_command_secs", 300)?,
                data_block: secs("timeout_data_block_secs", 180)?,
                data_end: secs("timeout_data_end_secs", 600)?,
            },
            max_deliveries: usize::try_from(number("max_deliveries", 20)?)
                .map_err(|e| e.to_string())?,
            max_per_destination: usize::try_from(number("max_per_destination", 20)?)
                .map_err(|e| e.to_string())?,
            credentials: auth::Table::default(),
            hostname,
        })
    }

    /// The route for `domain`: its own, else `*`, else none (MX lookup).
    pub fn route(&self, domain: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.domain == domain)
            .or_else(|| self.routes.iter().find(|r| r.domain == "*"))
    }

    /// What the per-destination limit counts: the routed host (a smarthost is one
    /// destination whatever the domain), else the domain.
    pub fn destination(&self, domain: &str) -> String {
        match self.route(domain) {
            Some(r) => format!("{}:{}", r.host, r.port),
            None => domain.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn routes_and_defaults() {
        let map: HashMap<&str, &str> = [
            ("hostname", "mx.example.test"),
            ("nameserver", "127.0.0.1:5353"),
            (
                "routes",
                "a.example=127.0.0.1:2526/verify,*=smart.example:587/",
            ),
        ]
        .into_iter()
        .collect();
        let s = Settings::from_lookup(&|k| map.get(k).map(|v| v.to_string())).expect("ok");
        assert_eq!(s.nameserver, "127.0.0.1:5353".parse().expect("addr"));
        assert_eq!(s.route("a.example").map(|r| r.port), Some(2526));
        assert_eq!(
            s.route("b.example").map(|r| r.host.as_str()),
            Some("smart.example")
        );
        assert_eq!((s.port, s.tls), (25, TlsPolicy::May));
        assert_eq!(s.timeouts.data_end, Duration::from_secs(600));
        assert_eq!((s.max_deliveries, s.max_per_destination), (20, 20));
        assert_eq!(s.destination("a.example"), "127.0.0.1:2526");
        assert_eq!(s.destination("b.example"), "smart.example:587");
    }
}
