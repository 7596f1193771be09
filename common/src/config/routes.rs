//! `[remote.routes]`: static routes (qmail's smtproutes), where mail for a domain goes instead of
//! its MX, optionally with credentials for the relay at the other end (a smarthost that wants
//! SMTP AUTH).
//!
//! ```toml
//! [remote.routes]
//! "example.org" = "mx.example.net:25"
//!
//! [remote.routes."*"]          # the same as one inline table (which TOML keeps on one line)
//! host = "smarthost.example"
//! port = 587
//! tls = "encrypt"
//! auth = { user = "relay@example", password_file = "/etc/moat/relay.secret" }
//! ```
//!
//! SECURITY: the password is never in moat.toml, which stays world-readable for the CLI and
//! whose parsed form (`Config`) is printable with `{:?}`: an inline `password` is refused and
//! `password_file` names a file (mode 0600) that the supervisor opens each time it starts
//! moat-remote (docs/PROTOCOLS.md "moat-remote"). A route with credentials must use TLS
//! (`encrypt` or `verify`); `none` is accepted only to a loopback host (a relay on this machine),
//! and `may` is refused: its plaintext fallback would leave a password nowhere safe to go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{TlsPolicy, parse_host_port, valid_hostname};

/// The most routes with credentials (each costs moat-remote two setup records, of 256).
pub const MAX_ROUTES_WITH_AUTH: usize = 32;
/// The longest user name accepted (SASL allows more; no relay needs it).
pub const MAX_AUTH_USER: usize = 256;

/// One static route: where mail for a domain goes instead of its MX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `example.org`, or `*` for every domain without a route of its own (a smarthost).
    pub domain: String,
    pub host: String,
    pub port: u16,
    /// `None`: the default policy of `[remote] tls`.
    pub tls: Option<TlsPolicy>,
    /// Credentials for SMTP AUTH at `host`. Not part of `encode`: moat-remote gets the user as a
    /// setting and the password as a descriptor.
    pub auth: Option<RouteAuth>,
}

/// Who moat-remote logs in as at a route's host, and where the password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    pub user: String,
    /// A file holding only the password (one trailing newline is ignored); read by the
    /// supervisor, never by moat-remote.
    pub password_file: PathBuf,
}

impl Route {
    /// The one-line form handed to moat-remote: `domain=host:port/policy` (policy may be empty).
    pub fn encode(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let tls = self.tls.map(TlsPolicy::name).unwrap_or("");
        format!("{}={host}:{}/{tls}", self.domain, self.port)
    }

    /// Parses the form of `encode` (without credentials: they travel separately).
    pub fn decode(text: &str) -> Option<Route> {
        let (domain, rest) = text.split_once('=')?;
        let (target, tls) = rest.rsplit_once('/')?;
        let (host, port) = parse_host_port(target, 25)?;
        let tls = match tls {
            "" => None,
            t => Some(TlsPolicy::parse(t)?),
        };
        valid_route_domain(domain).then(|| Route {
            domain: domain.to_string(),
            host,
            port,
            tls,
            auth: None,
        })
    }

    /// The host is this machine: a loopback address or `localhost`.
    pub fn loopback_host(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Credentials may cross without TLS only when the route says `tls = "none"` itself and
    /// its host is this machine (the connected address is checked again at run time).
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.tls == Some(TlsPolicy::None) && self.loopback_host()
    }

    /// Why this route may not carry credentials under its policy (its own `tls`, else
    /// `default`, the `[remote] tls`); `None` when it may.
    pub fn auth_tls_problem(&self, default: TlsPolicy) -> Option<String> {
        match self.tls.unwrap_or(default) {
            TlsPolicy::Encrypt | TlsPolicy::Verify => None,
            TlsPolicy::None if self.plaintext_auth_allowed() => None,
            TlsPolicy::None => Some(
                "the password is only sent over TLS: tls = \"none\" is accepted with auth only \
                 when the route says so itself and its host is 127.0.0.1, ::1 or localhost; \
                 set tls = \"encrypt\" (any certificate) or \"verify\" (checked certificate)"
                    .into(),
            ),
            TlsPolicy::May => Some(
                "auth needs tls = \"encrypt\" (any certificate) or \"verify\" (checked \
                 certificate) in the route: under \"may\" (the default) a failed STARTTLS \
                 falls back to plaintext, where the password is never sent"
                    .into(),
            ),
        }
    }
}

pub(super) fn valid_route_domain(domain: &str) -> bool {
    domain == "*" || valid_hostname(domain)
}

/// A user name fit for SASL PLAIN and a setting: 1 to `MAX_AUTH_USER` octets, no control
/// characters (NUL separates PLAIN's fields), no space at either end (a copy-and-paste slip).
pub fn check_auth_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.len() > MAX_AUTH_USER {
        return Err(format!("must be 1 to {MAX_AUTH_USER} octets"));
    }
    if user.chars().any(char::is_control) {
        return Err("must not hold control characters".into());
    }
    if user.trim() != user {
        return Err("must not start or end with a space".into());
    }
    Ok(())
}

/// The routes table as TOML values: each entry is deserialized on its own, so an error names
/// the route and the field (an untagged enum would only say "did not match any variant").
pub(super) type RawRoutes = BTreeMap<String, toml::Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteTable {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    user: Option<String>,
    password_file: Option<String>,
    /// Read only to refuse it with a message that says what to do instead.
    password: Option<toml::Value>,
}

/// Parses `[remote.routes]`; `default_tls` is `[remote] tls` (a route with credentials must end
/// up with a policy that protects them); relative paths are taken from `base`.
pub(super) fn parse_routes(
    raw: RawRoutes,
    base: &Path,
    default_tls: TlsPolicy,
) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for (key, value) in raw {
        let domain = key.trim().trim_end_matches('.').to_ascii_lowercase();
        if !valid_route_domain(&domain) {
            return Err(format!(
                "remote.routes: {domain:?} is not a domain name or \"*\""
            ));
        }
        let at = format!("remote.routes.{:?}", domain);
        let route = parse_route(domain, value, base, &at)?;
        if route.auth.is_some()
            && let Some(problem) = route.auth_tls_problem(default_tls)
        {
            return Err(format!("{at}: {problem}"));
        }
        routes.push(route);
    }
    let with_auth = routes.iter().filter(|r| r.auth.is_some()).count();
    if with_auth > MAX_ROUTES_WITH_AUTH {
        return Err(format!(
            "remote.routes: {with_auth} routes have auth; at most {MAX_ROUTES_WITH_AUTH} may \
             (send several domains through one \"*\" route instead)"
        ));
    }
    Ok(routes)
}

fn parse_route(domain: String, value: toml::Value, base: &Path, at: &str) -> Result<Route, String> {
    let table = match value {
        toml::Value::String(host) => RawRouteTable {
            host,
            port: None,
            tls: None,
            auth: None,
        },
        toml::Value::Table(_) => value.try_into().map_err(|e| format!("{at}: {e}"))?,
        _ => {
            return Err(format!(
                "{at} must be \"HOST[:PORT]\" or a table such as {{ host = \"relay.example\", \
                 port = 587, tls = \"encrypt\" }}"
            ));
        }
    };
    let target = table.host.trim();
    let names_port = match target.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => target.contains(':'),
    };
    let default_port = match table.port {
        Some(0) => return Err(format!("{at}: port must be 1 to 65535")),
        Some(_) if names_port => {
            return Err(format!(
                "{at}: the port is given twice (in host {target:?} and as port): keep one"
            ));
        }
        Some(p) => p,
        None => 25,
    };
    let (host, port) = parse_host_port(target, default_port)
        .ok_or_else(|| format!("{at}: {target:?} is not HOST or HOST:PORT"))?;
    let tls = match table.tls {
        None => None,
        Some(t) => Some(TlsPolicy::parse(&t).ok_or_else(|| {
            format!("{at}: tls {t:?} is not a TLS policy: none, may, encrypt or verify")
        })?),
    };
    let auth = match table.auth {
        None => None,
        Some(a) => Some(parse_auth(a, base, at)?),
    };
    Ok(Route {
        domain,
        host,
        port,
        tls,
        auth,
    })
}

fn parse_auth(raw: RawAuth, base: &Path, at: &str) -> Result<RouteAuth, String> {
    let example =
        "auth = { user = \"relay@example.org\", password_file = \"/etc/moat/relay.secret\" }";
    if raw.password.is_some() {
        return Err(format!(
            "{at}.auth: an inline password is not accepted (moat.toml is readable by every \
             local user): write the password alone into a file only root can read \
             (chmod 600) and name it: {example}"
        ));
    }
    let user = raw
        .user
        .ok_or_else(|| format!("{at}.auth needs a user: {example}"))?;
    check_auth_user(&user).map_err(|e| format!("{at}.auth: user {user:?} {e}"))?;
    let file = raw
        .password_file
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| {
            format!("{at}.auth needs password_file, a file holding only the password: {example}")
        })?;
    Ok(RouteAuth {
        user,
        password_file: base.join(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(routes: &str) -> Result<Vec<Route>, String> {
        Config::parse(
            &format!("[store]\nurl = \"sqlite:a\"\n[remote.routes]\n{routes}"),
            Path::new("/etc/moat/moat.toml"),
        )
        .map(|c| c.remote.routes)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_form_of_the_readme() {
        let routes = parse(
            "\"example.org\" = \"mx.example.net:25\"\n[remote.routes.\"*\"]\n\
             host = \"smtp.provider.example\"\nport = 587\ntls = \"encrypt\"\n\
             auth = { user = \"relay@example.org\", password_file = \"/etc/moat/relay.secret\" }\n",
        )
        .expect("valid");
        let smart = routes.iter().find(|r| r.domain == "*").expect("smarthost");
        assert_eq!(smart.port, 587);
        assert_eq!(
            smart.auth.as_ref().map(|a| a.user.as_str()),
            Some("relay@example.org")
        );
    }

    #[test]
    fn a_smarthost_with_credentials() {
        let routes = parse(
            "\"*\" = { host = \"Smarthost.Example\", port = 587, tls = \"encrypt\", \
             auth = { user = \"relay@example\", password_file = \"relay.secret\" } }\n\
             \"local.example\" = { host = \"127.0.0.1:2525\", tls = \"none\", \
             auth = { user = \"u\", password_file = \"/run/s\" } }\n",
        )
        .expect("valid");
        let smart = routes.iter().find(|r| r.domain == "*").expect("smarthost");
        assert_eq!(
            (smart.host.as_str(), smart.port),
            ("smarthost.example", 587)
        );
        let auth = smart.auth.as_ref().expect("auth");
        assert_eq!(auth.user, "relay@example");
        assert_eq!(auth.password_file, Path::new("/etc/moat/relay.secret"));
        assert_eq!(smart.auth_tls_problem(TlsPolicy::May), None);
        assert!(!smart.plaintext_auth_allowed());
        let local = routes
            .iter()
            .find(|r| r.domain == "local.example")
            .expect("local");
        assert!(local.plaintext_auth_allowed());
        // Credentials never travel in the route's one-line form.
        let decoded = Route::decode(&smart.encode()).expect("decodes");
        assert_eq!(decoded.auth, None);
        assert_eq!((decoded.host, decoded.port), (smart.host.clone(), 587));
    }

    #[test]
    fn mistakes_are_named_with_what_to_do() {
        let auth = "auth = { user = \"u\", password_file = \"/s\" }";
        // An encrypted route whose auth table is `table`.
        let encrypted = |table: &str| {
            format!("\"*\" = {{ host = \"r.example\", tls = \"encrypt\", auth = {{ {table} }} }}")
        };
        for (routes, needle) in [
            (
                encrypted("user = \"u\", password = \"x\""),
                "an inline password is not accepted",
            ),
            (
                format!("\"*\" = {{ host = \"r.example\", {auth} }}"),
                "under \"may\"",
            ),
            (
                format!("\"*\" = {{ host = \"r.example\", tls = \"may\", {auth} }}"),
                "tls = \"encrypt\"",
            ),
            (
                format!("\"*\" = {{ host = \"r.example\", tls = \"none\", {auth} }}"),
                "127.0.0.1, ::1 or localhost",
            ),
            (encrypted("user = \"u\""), "needs password_file"),
            (encrypted("password_file = \"/s\""), "needs a user"),
            (encrypted("user = \" u\", password_file = \"/s\""), "space"),
            (
                encrypted("user = \"u\\u0000\", password_file = \"/s\""),
                "control",
            ),
            (
                encrypted("user = \"u\", password_file = \"/s\", pasword = 1"),
                "unknown field `pasword`",
            ),
            (
                "\"*\" = { host = \"r.example:25\", port = 587 }".to_string(),
                "port is given twice",
            ),
            (
                "\"*\" = { host = \"r.example\", port = 0 }".to_string(),
                "port must be 1 to 65535",
            ),
            ("\"*\" = 25".to_string(), "must be \"HOST[:PORT]\""),
            (
                "\"*\" = { host = \"r.example\", tls = \"maybe\" }".to_string(),
                "not a TLS policy",
            ),
        ] {
            let err = parse(&routes).expect_err(&routes);
            assert!(
                err.contains(needle),
                "{routes}\n{err}\nshould mention {needle:?}"
            );
            assert!(err.contains("remote.routes.\"*\""), "{err} names the route");
        }
        // A default of verify protects a route that names no policy of its own.
        let c = Config::parse(
            &format!(
                "[store]\nurl = \"sqlite:a\"\n[remote]\ntls = \"verify\"\n[remote.routes]\n\
                 \"*\" = {{ host = \"r.example\", {auth} }}\n"
            ),
            Path::new("/d/moat.toml"),
        );
        assert!(c.is_ok(), "{c:?}");
        let many: String = (0..=MAX_ROUTES_WITH_AUTH)
            .map(|i| {
                format!("\"d{i}.example\" = {{ host = \"r.example\", tls = \"verify\", {auth} }}\n")
            })
            .collect();
        assert!(parse(&many).expect_err("too many").contains("at most"));
    }
}
