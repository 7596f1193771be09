//! The configuration file, `moat.toml`, and how a program finds it.
//!
//! Lookup order, first match wins: an explicit path (`--config`), the `MOAT_CONFIG` environment
//! variable, `./moat-data/moat.toml` (the quickstart folder of `moat up`), `/etc/moat/moat.toml`.
//! Relative paths inside the file are taken relative to the folder holding the file, so a
//! quickstart folder can be moved or used from anywhere.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod queue;
use queue::RawQueue;
pub use queue::{DEFAULT_DELAY_WARNING_SECS, DEFAULT_RETRY_SCHEDULE, MAX_RETRY_ENTRIES};
mod lists;
mod routes;
mod security;
use security::RawSecurity;
pub use security::Security;
mod submission;
pub use lists::Lists;
use lists::RawLists;
pub use routes::{MAX_AUTH_USER, MAX_ROUTES_WITH_AUTH, Route, RouteAuth, check_auth_user};
use submission::RawSubmission;
pub use submission::Submission;

/// Where the quickstart keeps everything, relative to the current directory.
pub const QUICKSTART_DIR: &str = "moat-data";
/// The system-wide configuration written by `moat install`.
pub const SYSTEM_CONFIG: &str = "/etc/moat/moat.toml";
/// The environment variable naming a configuration file.
pub const CONFIG_ENV: &str = "MOAT_CONFIG";

/// The parsed configuration, with every path made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub source: PathBuf,
    /// The user store: `sqlite:PATH` or `postgres://...`.
    pub store_url: String,
    /// The root of the Maildirs: `<mail_root>/<domain>/<local>/Maildir`.
    pub mail_root: PathBuf,
    /// The sub-address delimiter (`user+tag`); `None` turns sub-addressing off.
    pub subaddress_delimiter: Option<char>,
    /// The name this server uses for itself (greeting, Received, bounces).
    pub hostname: String,
    /// The on-disk queue.
    pub queue_dir: PathBuf,
    /// Where the internal Unix sockets live.
    pub run_dir: PathBuf,
    /// Where the `moat-*` programs are; `None` = beside the running `moat`.
    pub libexec: Option<PathBuf>,
    /// moat-lists' own folder: held posts, archives, digests (`[paths] lists`).
    pub lists_dir: PathBuf,
    /// The DKIM key folder: `<dkim_dir>/<domain>/<selector>.<rsa|ed25519>.pem`, written by
    /// `moat dkim generate`, opened by the supervisor for moat-remote (`[paths] dkim`).
    pub dkim_dir: PathBuf,
    /// Listening addresses per service; empty = the service is off.
    pub listen: Listen,
    /// The certificate chain and private key (PEM) for STARTTLS and implicit TLS.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The Unix user of each process (used only when `moat serve` runs as root).
    pub users: Users,
    pub limits: Limits,
    /// How long a message may wait in the queue before it is bounced.
    pub queue_lifetime_secs: u64,
    /// The delay after attempt n is entry n, the last one repeating (`[queue] retry_schedule`,
    /// or the doubling `retry_min` stands for; see `config/queue.rs`).
    pub queue_retry_schedule: Vec<u64>,
    /// When the sender gets a delay notice; 0 = never (`[queue] delay_warning`).
    pub queue_delay_warning_secs: u64,
    pub pop3: Pop3,
    pub imap: Imap,
    pub remote: Remote,
    pub lists: Lists,
    pub submission: Submission,
    pub security: Security,
}

/// How moat-remote uses STARTTLS with a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered, any certificate; plaintext when not offered or the handshake fails.
    May,
    /// STARTTLS required, any certificate.
    Encrypt,
    /// STARTTLS required, the chain and the host name verified.
    Verify,
}

impl TlsPolicy {
    pub fn parse(text: &str) -> Option<TlsPolicy> {
        match text {
            "none" => Some(TlsPolicy::None),
            "may" => Some(TlsPolicy::May),
            "encrypt" => Some(TlsPolicy::Encrypt),
            "verify" => Some(TlsPolicy::Verify),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsPolicy::None => "none",
            TlsPolicy::May => "may",
            TlsPolicy::Encrypt => "encrypt",
            TlsPolicy::Verify => "verify",
        }
    }
}

/// `host`, `host:port`, `1.2.3.4:25`, `[::1]:25` → (host, port); the host is a name or an IP.
pub fn parse_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, default_port),
            p => (host, p.strip_prefix(':')?.parse().ok()?),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (text, default_port),
        }
    };
    let host = host.to_ascii_lowercase();
    let ok = host.parse::<std::net::IpAddr>().is_ok() || valid_hostname(&host);
    (ok && port != 0).then_some((host, port))
}

/// `[remote]`: moat-remote, delivery to other mail servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The DNS server to ask (`IP` or `IP:PORT`); `None` = the first of /etc/resolv.conf.
    pub nameserver: Option<String>,
    /// The port of hosts found through MX records (25; tests use another).
    pub port: u16,
    /// The default STARTTLS policy.
    pub tls: TlsPolicy,
    /// PEM roots for `verify` instead of the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    pub routes: Vec<Route>,
    /// RFC 5321 §4.5.3.2 timeouts, in seconds: connecting, each command's reply (greeting,
    /// EHLO, MAIL, RCPT, DATA's 354), each block of message data, the reply after the final dot.
    pub timeout_connect_secs: u64,
    pub timeout_command_secs: u64,
    pub timeout_data_block_secs: u64,
    pub timeout_data_end_secs: u64,
    /// The most SMTP transactions at once.
    pub max_deliveries: u32,
    /// The most SMTP transactions at once to one destination (domain, or routed host).
    pub max_per_destination: u32,
}

impl Default for Remote {
    fn default() -> Self {
        Remote {
            nameserver: None,
            port: 25,
            tls: TlsPolicy::May,
            ca_file: None,
            routes: Vec::new(),
            timeout_connect_secs: 30,
            timeout_command_secs: 300,
            timeout_data_block_secs: 180,
            timeout_data_end_secs: 600,
            max_deliveries: 20,
            max_per_destination: 20,
        }
    }
}

impl Remote {
    /// The longest one transaction may take (connection attempts to a few hosts included);
    /// the queue waits this long for moat-remote's answer.
    pub fn transaction_limit_secs(&self) -> u64 {
        let one = self.timeout_connect_secs
            + 6 * self.timeout_command_secs
            + self.timeout_data_block_secs
            + self.timeout_data_end_secs;
        one.saturating_mul(2).saturating_add(60)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3 {
    /// Accept USER/PASS and AUTH PLAIN without TLS from loopback clients (local fetchers).
    pub plaintext_on_loopback: bool,
    /// Seconds a client may stay silent (RFC 1939: at least 10 minutes).
    pub idle_timeout_secs: u64,
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3 {
            plaintext_on_loopback: true,
            idle_timeout_secs: 600,
        }
    }
}

/// `[imap]`: moat-imapd.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Imap {
    /// Accept LOGIN and AUTHENTICATE PLAIN without TLS from loopback clients (local webmail).
    pub plaintext_on_loopback: bool,
    /// Seconds a logged-in client may stay silent (RFC 3501 §5.4: at least 30 minutes).
    pub idle_timeout_secs: u64,
}

impl Default for Imap {
    fn default() -> Self {
        Imap {
            plaintext_on_loopback: true,
            idle_timeout_secs: 1800,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// MX service (port 25): local recipients only.
    pub smtp: Vec<String>,
    /// Submission with STARTTLS (port 587): AUTH required.
    pub submission: Vec<String>,
    /// Submission over implicit TLS (port 465): AUTH required.
    pub submissions: Vec<String>,
    /// POP3 with STLS (port 110).
    pub pop3: Vec<String>,
    /// POP3 over implicit TLS (port 995).
    pub pop3s: Vec<String>,
    /// IMAP with STARTTLS (port 143).
    pub imap: Vec<String>,
    /// IMAP over implicit TLS (port 993).
    pub imaps: Vec<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            smtp: vec!["0.0.0.0:25".into()],
            submission: vec!["0.0.0.0:587".into()],
            submissions: vec!["0.0.0.0:465".into()],
            pop3: vec!["0.0.0.0:110".into()],
            pop3s: vec!["0.0.0.0:995".into()],
            imap: vec!["0.0.0.0:143".into()],
            imaps: vec!["0.0.0.0:993".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Users {
    pub smtpd: String,
    pub queue: String,
    pub local: String,
    pub auth: String,
    pub remote: String,
    /// moat-lists, the mailing-list manager.
    pub lists: String,
    /// moat-imap-login and moat-pop3-login: TLS and everything before a login, with no access
    /// to any mail (docs/SECURITY.md).
    pub imap_login: String,
    pub pop3_login: String,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            smtpd: "moat-smtpd".into(),
            queue: "moat-queue".into(),
            local: "moat-vmail".into(),
            auth: "moat-auth".into(),
            remote: "moat-remote".into(),
            lists: "moat-lists".into(),
            imap_login: "moat-imap-login".into(),
            pop3_login: "moat-pop3-login".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted, in bytes (SIZE).
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: u32,
    /// Concurrent SMTP connections, in total and per client IP.
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    /// RFC 5321 timeouts, as total deadlines: a command line must arrive within this many
    /// seconds of our last reply, and message data at this many seconds per 1000 octets.
    pub timeout_command_secs: u64,
    pub timeout_data_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 200,
            max_connections_per_ip: 20,
            timeout_command_secs: 300,
            timeout_data_secs: 180,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: Option<String>,
    store: RawStore,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    addresses: RawAddresses,
    #[serde(default)]
    listen: Listen,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    users: Users,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    queue: RawQueue,
    #[serde(default)]
    pop3: Pop3,
    #[serde(default)]
    imap: Imap,
    #[serde(default)]
    remote: RawRemote,
    #[serde(default)]
    lists: RawLists,
    #[serde(default)]
    submission: RawSubmission,
    #[serde(default)]
    security: RawSecurity,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    nameserver: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    ca_file: Option<String>,
    #[serde(default)]
    routes: routes::RawRoutes,
    timeout_connect_secs: Option<u64>,
    timeout_command_secs: Option<u64>,
    timeout_data_block_secs: Option<u64>,
    timeout_data_end_secs: Option<u64>,
    max_deliveries: Option<u32>,
    max_per_destination: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    mail: Option<String>,
    queue: Option<String>,
    run: Option<String>,
    libexec: Option<String>,
    dkim: Option<String>,
    lists: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddresses {
    #[serde(default = "default_delimiter")]
    subaddress_delimiter: String,
}

impl Default for RawAddresses {
    fn default() -> Self {
        RawAddresses {
            subaddress_delimiter: default_delimiter(),
        }
    }
}

fn default_delimiter() -> String {
    "+".to_string()
}

impl Config {
    /// Finds the configuration file by the lookup order above; `Ok(None)` when there is none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<Config>, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path).map(Some);
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Config::load(Path::new(&path)).map(Some);
        }
        for candidate in [
            Path::new(QUICKSTART_DIR).join("moat.toml"),
            PathBuf::from(SYSTEM_CONFIG),
        ] {
            if candidate.is_file() {
                return Config::load(&candidate).map(Some);
            }
        }
        Ok(None)
    }

    /// Reads and checks one configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let absolute = std::path::absolute(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &absolute)
    }

    /// Parses configuration text as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("/"));
        let store_url = resolve_store_url(&raw.store.url, base).map_err(invalid)?;
        let mail_root = base.join(raw.paths.mail.as_deref().unwrap_or("mail"));
        let mut chars = raw.addresses.subaddress_delimiter.chars();
        let subaddress_delimiter = match (chars.next(), chars.next()) {
            (None, _) => None,
            (Some(c), None) if c.is_ascii_punctuation() && c != '@' && c != '/' => Some(c),
            _ => {
                return Err(invalid(format!(
                    "addresses.subaddress_delimiter must be one punctuation character \
                     such as \"+\" or \"-\", or \"\" to turn sub-addressing off (got {:?})",
                    raw.addresses.subaddress_delimiter
                )));
            }
        };
        let hostname = match raw.hostname {
            Some(h) if valid_hostname(&h) => h.to_ascii_lowercase(),
            Some(h) => return Err(invalid(format!("hostname {h:?} is not a valid host name"))),
            None => system_hostname(),
        };
        let queue = raw.queue.parse().map_err(invalid)?;
        let remote = parse_remote(raw.remote, base).map_err(invalid)?;
        let lists = raw.lists.parse().map_err(invalid)?;
        let security = raw.security.parse().map_err(invalid)?;
        for addr in raw
            .listen
            .smtp
            .iter()
            .chain(&raw.listen.submission)
            .chain(&raw.listen.submissions)
            .chain(&raw.listen.pop3)
            .chain(&raw.listen.pop3s)
            .chain(&raw.listen.imap)
            .chain(&raw.listen.imaps)
        {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(format!(
                    "listen address {addr:?} is not IP:PORT (e.g. \"0.0.0.0:25\" or \"[::]:25\")"
                )));
            }
        }
        Ok(Config {
            source: path.to_path_buf(),
            store_url,
            mail_root,
            subaddress_delimiter,
            hostname,
            queue_dir: base.join(raw.paths.queue.as_deref().unwrap_or("queue")),
            run_dir: base.join(raw.paths.run.as_deref().unwrap_or("run")),
            libexec: raw.paths.libexec.as_deref().map(|p| base.join(p)),
            dkim_dir: base.join(raw.paths.dkim.as_deref().unwrap_or("dkim")),
            lists_dir: base.join(raw.paths.lists.as_deref().unwrap_or("lists")),
            listen: raw.listen,
            tls_cert: base.join(raw.tls.cert.as_deref().unwrap_or("tls/cert.pem")),
            tls_key: base.join(raw.tls.key.as_deref().unwrap_or("tls/key.pem")),
            users: raw.users,
            limits: raw.limits,
            queue_lifetime_secs: queue.lifetime_secs,
            queue_retry_schedule: queue.retry_schedule,
            queue_delay_warning_secs: queue.delay_warning_secs,
            pop3: raw.pop3,
            imap: raw.imap,
            remote,
            lists,
            submission: raw.submission.parse(),
            security,
        })
    }
}

fn parse_remote(raw: RawRemote, base: &Path) -> Result<Remote, String> {
    let d = Remote::default();
    let policy = |t: &str, what: &str| {
        TlsPolicy::parse(t).ok_or_else(|| {
            format!("{what} {t:?} is not a TLS policy: none, may, encrypt or verify")
        })
    };
    if let Some(ns) = &raw.nameserver
        && parse_nameserver(ns).is_none()
    {
        return Err(format!(
            "remote.nameserver {ns:?} is not IP or IP:PORT (e.g. \"127.0.0.1:53\")"
        ));
    }
    let tls = match raw.tls {
        Some(t) => policy(&t, "remote.tls")?,
        None => d.tls,
    };
    let routes = routes::parse_routes(raw.routes, base, tls)?;
    let secs = |v: Option<u64>, default: u64, what: &str| match v {
        Some(0) => Err(format!("remote.{what} must be at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    Ok(Remote {
        nameserver: raw.nameserver,
        port: raw.port.filter(|p| *p != 0).unwrap_or(d.port),
        tls,
        ca_file: raw.ca_file.map(|p| base.join(p)),
        routes,
        timeout_connect_secs: secs(
            raw.timeout_connect_secs,
            d.timeout_connect_secs,
            "timeout_connect_secs",
        )?,
        timeout_command_secs: secs(
            raw.timeout_command_secs,
            d.timeout_command_secs,
            "timeout_command_secs",
        )?,
        timeout_data_block_secs: secs(
            raw.timeout_data_block_secs,
            d.timeout_data_block_secs,
            "timeout_data_block_secs",
        )?,
        timeout_data_end_secs: secs(
            raw.timeout_data_end_secs,
            d.timeout_data_end_secs,
            "timeout_data_end_secs",
        )?,
        max_deliveries: match raw.max_deliveries {
            Some(0) => return Err("remote.max_deliveries must be at least 1".into()),
            Some(n) => n,
            None => d.max_deliveries,
        },
        max_per_destination: match raw.max_per_destination {
            Some(0) => return Err("remote.max_per_destination must be at least 1".into()),
            Some(n) => n,
            None => d.max_per_destination,
        },
    })
}

/// The first `nameserver` line of /etc/resolv.conf (a world-readable system file), else
/// 127.0.0.1:53: the resolver moat-remote and moat-lists use when `[remote] nameserver` is not
/// set.
pub fn system_nameserver() -> std::net::SocketAddr {
    std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("nameserver"))
                    .then(|| words.next().and_then(parse_nameserver))
                    .flatten()
            })
        })
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 53)))
}

/// `IP` or `IP:PORT` (port 53 by default).
pub fn parse_nameserver(text: &str) -> Option<std::net::SocketAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    text.parse().ok()
}

/// `5d`, `36h`, `90m`, `600s` or plain seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'd' => (&t[..t.len() - 1], 86_400),
        'h' => (&t[..t.len() - 1], 3_600),
        'm' => (&t[..t.len() - 1], 60),
        's' => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The kernel's host name, or `localhost` when it is not a usable name.
pub fn system_hostname() -> String {
    let name = rustix::system::uname();
    let node = name.nodename().to_string_lossy().to_ascii_lowercase();
    if valid_hostname(&node) {
        node
    } else {
        "localhost".to_string()
    }
}

/// Makes a relative SQLite path absolute against the configuration's folder; other URLs pass.
fn resolve_store_url(url: &str, base: &Path) -> Result<String, String> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "store.url must start with sqlite: or postgres:// (got {url:?})"
        ));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.is_empty() {
        return Err("store.url names no SQLite file".to_string());
    }
    let path = Path::new(rest);
    if path.is_absolute() {
        Ok(format!("sqlite:{rest}"))
    } else {
        Ok(format!("sqlite:{}", base.join(path).display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:users.db\"\n",
            Path::new("/srv/moat-data/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.store_url, "sqlite:/srv/moat-data/users.db");
        assert_eq!(c.mail_root, Path::new("/srv/moat-data/mail"));
        assert_eq!(c.dkim_dir, Path::new("/srv/moat-data/dkim"));
        assert_eq!(c.subaddress_delimiter, Some('+'));
    }

    #[test]
    fn postgres_url_and_delimiter() {
        let c = Config::parse(
            "[store]\nurl = \"postgres://u@db/moat\"\n[paths]\nmail = \"/var/mail/moat\"\n\
             [addresses]\nsubaddress_delimiter = \"-\"\n",
            Path::new("/etc/moat/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.store_url, "postgres://u@db/moat");
        assert_eq!(c.mail_root, Path::new("/var/mail/moat"));
        assert_eq!(c.subaddress_delimiter, Some('-'));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let p = Path::new("/x/moat.toml");
        for (text, needle) in [
            ("", "missing field `store`"),
            ("[store]\nurl = \"mysql://x\"\n", "must start with sqlite:"),
            ("[store]\nurl = \"sqlite:a\"\nbogus = 1\n", "unknown field"),
            (
                "[store]\nurl = \"sqlite:a\"\n[addresses]\nsubaddress_delimiter = \"ab\"\n",
                "one punctuation character",
            ),
        ] {
            let err = Config::parse(text, p).expect_err(text).to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(err.contains("/x/moat.toml"), "{err:?} should name the file");
        }
    }

    #[test]
    fn service_settings() {
        let c = Config::parse(
            "hostname = \"MX.Example.org\"\n[store]\nurl = \"sqlite:db/u.db\"\n\
             [listen]\nsmtp = [\"127.0.0.1:2525\"]\nsubmissions = []\n\
             [queue]\nlifetime = \"36h\"\n[limits]\nmax_recipients = 50\n",
            Path::new("/d/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.listen.smtp, vec!["127.0.0.1:2525".to_string()]);
        assert_eq!(c.listen.submission, Listen::default().submission);
        assert!(c.listen.submissions.is_empty());
        assert_eq!(c.queue_lifetime_secs, 36 * 3600);
        assert_eq!(c.limits.max_recipients, 50);
        assert_eq!(c.limits.max_connections, 200);
        assert_eq!(c.queue_dir, Path::new("/d/queue"));
        assert_eq!(c.run_dir, Path::new("/d/run"));
        assert_eq!(c.tls_key, Path::new("/d/tls/key.pem"));
        assert_eq!(c.users.local, "moat-vmail");
        assert_eq!(c.users.imap_login, "moat-imap-login");
        assert_eq!(c.users.pop3_login, "moat-pop3-login");
        for (text, needle) in [
            (
                "[store]\nurl = \"sqlite:a\"\n[listen]\nsmtp = [\"nope\"]\n",
                "IP:PORT",
            ),
            (
                "[store]\nurl = \"sqlite:a\"\n[queue]\nlifetime = \"soon\"\n",
                "duration",
            ),
            (
                "hostname = \"bad host\"\n[store]\nurl = \"sqlite:a\"\n",
                "host name",
            ),
        ] {
            let err = Config::parse(text, Path::new("/d/moat.toml"))
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn remote_routes_and_policies() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:a\"\n[queue]\nretry_min = \"2s\"\n\
             [remote]\nnameserver = \"127.0.0.1:5353\"\ntls = \"verify\"\nport = 2525\n\
             max_per_destination = 3\n[remote.routes]\n\"Example.ORG\" = \"127.0.0.1:2526\"\n\
             \"*\" = { host = \"smart.example.net\", tls = \"encrypt\" }\n",
            Path::new("/d/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.queue_retry_schedule[..3], [2, 4, 8]);
        let r = &c.remote;
        assert_eq!((r.tls, r.port), (TlsPolicy::Verify, 2525));
        assert_eq!((r.max_deliveries, r.max_per_destination), (20, 3));
        assert_eq!(r.nameserver.as_deref(), Some("127.0.0.1:5353"));
        assert_eq!(r.routes.len(), 2);
        for route in &r.routes {
            assert_eq!(Route::decode(&route.encode()).as_ref(), Some(route));
        }
        let smart = r
            .routes
            .iter()
            .find(|r| r.domain == "*")
            .expect("smarthost");
        assert_eq!((smart.port, smart.tls), (25, Some(TlsPolicy::Encrypt)));
        assert!(
            r.routes
                .iter()
                .any(|r| r.domain == "example.org" && r.port == 2526)
        );
        assert_eq!(
            parse_host_port("[::1]:26", 25),
            Some(("::1".to_string(), 26))
        );
        for text in [
            "[store]\nurl = \"sqlite:a\"\n[remote]\ntls = \"maybe\"\n",
            "[store]\nurl = \"sqlite:a\"\n[remote]\nnameserver = \"dns\"\n",
            "[store]\nurl = \"sqlite:a\"\n[remote]\nmax_per_destination = 0\n",
            "[store]\nurl = \"sqlite:a\"\n[remote.routes]\n\"a.example\" = \"x:99999\"\n",
            "[store]\nurl = \"sqlite:a\"\n[remote.routes]\n\"a b\" = \"x:25\"\n",
        ] {
            assert!(
                Config::parse(text, Path::new("/d/moat.toml")).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn imap_section_and_listeners() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:a\"\n[listen]\nimap = [\"127.0.0.1:1143\"]\nimaps = []\n\
             [imap]\nplaintext_on_loopback = false\n",
            Path::new("/d/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.listen.imap, vec!["127.0.0.1:1143".to_string()]);
        assert!(c.listen.imaps.is_empty());
        assert!(!c.imap.plaintext_on_loopback);
        assert_eq!(c.imap.idle_timeout_secs, 1800);
        assert_eq!(Listen::default().imaps, vec!["0.0.0.0:993".to_string()]);
        for text in [
            "[store]\nurl = \"sqlite:a\"\n[imap]\nbogus = 1\n",
            "[store]\nurl = \"sqlite:a\"\n[listen]\nimap = [\"143\"]\n",
        ] {
            assert!(
                Config::parse(text, Path::new("/d/moat.toml")).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn empty_delimiter_turns_subaddressing_off() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:/a.db\"\n[addresses]\nsubaddress_delimiter = \"\"\n",
            Path::new("/x/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.subaddress_delimiter, None);
    }
}
