//! SMTP AUTH as a client, for routes with credentials (`[remote.routes] … auth = { user,
//! password_file }`; docs/PROTOCOLS.md "moat-remote").
//!
//! How the credentials arrive: setting `route_auth` lists the route domains that have them
//! (`*,example.org`); entry `i` has its user in setting `route_auth_user_<i>` and its password
//! file as descriptor `route_auth_secret_<i>`, opened by the supervisor. `secret` reads and checks
//! the file, `sasl` builds the AUTH exchange without I/O, `exchange` runs it on a session.
//!
//! SECURITY: moat-remote never opens the password file (it could not: the file is root's, 0600)
//! and never receives the password in a setting, an argument or the environment; the descriptor
//! is read once at start and closed. The password leaves the process only inside AUTH, only over
//! TLS (or, when the route says `tls = "none"`, to a loopback address), and is redacted from every
//! text that could reach a log.

pub mod exchange;
pub mod sasl;
pub mod secret;

use std::collections::BTreeMap;
use std::sync::Arc;

use moat_common::child::Setup;
use moat_common::config::{MAX_ROUTES_WITH_AUTH, Route, TlsPolicy, check_auth_user};

use secret::Password;

/// The setting listing the routes with credentials, in entry order.
pub const SETTING: &str = "route_auth";

/// The setting holding entry `i`'s user.
pub fn user_setting(i: usize) -> String {
    format!("route_auth_user_{i}")
}

/// The descriptor holding entry `i`'s password file.
pub fn fd_name(i: usize) -> String {
    format!("route_auth_secret_{i}")
}

/// One route's credentials.
pub struct Credentials {
    /// The route's domain (`*` for the smarthost).
    pub route: String,
    pub user: String,
    password: Password,
    /// The route says `tls = "none"` and its host is loopback (`Route::plaintext_auth_allowed`).
    pub plaintext_allowed: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} as {})", self.route, self.user)
    }
}

impl Credentials {
    /// What a session authenticated with these credentials may be reused for: the route and
    /// the user (`pool::Key`), so one route's session never carries another route's mail.
    pub fn identity(&self) -> String {
        format!("{} {}", self.route, self.user)
    }

    fn password(&self) -> &str {
        self.password.expose()
    }

    #[cfg(test)]
    pub(crate) fn for_tests(
        route: &str,
        user: &str,
        password: &str,
        plaintext_allowed: bool,
    ) -> Credentials {
        Credentials {
            route: route.into(),
            user: user.into(),
            password: secret::parse(password.as_bytes()).expect("test password"),
            plaintext_allowed,
        }
    }
}

/// The credentials of every route that has them, by route domain.
#[derive(Clone, Default)]
pub struct Table(BTreeMap<String, Arc<Credentials>>);

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Table {
    /// Takes the `route_auth` setting, its users and its descriptors out of the setup; every
    /// entry must name a route whose TLS policy protects a password (`default` is the `tls`
    /// setting). An error names the route and never the password.
    pub fn from_setup(
        setup: &mut Setup,
        routes: &[Route],
        default: TlsPolicy,
    ) -> Result<Table, String> {
        let list = setup.get_opt(SETTING).unwrap_or("").to_string();
        let get = |key: &str| setup.get_opt(key).map(str::to_string);
        let mut entries = Vec::new();
        for (i, domain) in list.split(',').filter(|d| !d.is_empty()).enumerate() {
            let user = get(&user_setting(i))
                .ok_or_else(|| format!("setting {} is missing", user_setting(i)))?;
            entries.push((domain.to_string(), user));
        }
        let mut files = Vec::with_capacity(entries.len());
        for i in 0..entries.len() {
            let fd = setup
                .take_fd_opt(&fd_name(i))
                .ok_or_else(|| format!("descriptor {} is missing", fd_name(i)))?;
            files.push(std::fs::File::from(fd));
        }
        let mut table = Table::default();
        for ((domain, user), file) in entries.into_iter().zip(files) {
            let password = secret::read(&file)
                .map_err(|e| format!("the password file of route {domain:?} {e}"))?;
            drop(file);
            table.insert(routes, default, &domain, user, password)?;
        }
        Ok(table)
    }

    /// Adds one route's credentials, checked as the configuration checks them.
    fn insert(
        &mut self,
        routes: &[Route],
        default: TlsPolicy,
        domain: &str,
        user: String,
        password: Password,
    ) -> Result<(), String> {
        let route = routes
            .iter()
            .find(|r| r.domain == domain)
            .ok_or_else(|| format!("setting {SETTING}: {domain:?} has no route"))?;
        if self.0.contains_key(domain) {
            return Err(format!("setting {SETTING}: {domain:?} is listed twice"));
        }
        if self.0.len() >= MAX_ROUTES_WITH_AUTH {
            return Err(format!(
                "setting {SETTING}: more than {MAX_ROUTES_WITH_AUTH} routes"
            ));
        }
        check_auth_user(&user).map_err(|e| format!("route {domain:?}: the user {e}"))?;
        if let Some(problem) = route.auth_tls_problem(default) {
            return Err(format!("route {domain:?}: {problem}"));
        }
        let creds = Credentials {
            route: domain.to_string(),
            user,
            password,
            plaintext_allowed: route.plaintext_auth_allowed(),
        };
        self.0.insert(domain.to_string(), Arc::new(creds));
        Ok(())
    }

    /// The credentials of `route`, if it has some.
    pub fn get(&self, route: &Route) -> Option<&Arc<Credentials>> {
        self.0.get(&route.domain)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For the start-up log: `* as relay@example, example.org as u`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .0
            .values()
            .map(|c| format!("{} as {}", c.route, c.user))
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(domain: &str, host: &str, tls: Option<TlsPolicy>) -> Route {
        Route {
            domain: domain.into(),
            host: host.into(),
            port: 587,
            tls,
            auth: None,
        }
    }

    fn password() -> Password {
        secret::parse(b"pw-1234").expect("password")
    }

    #[test]
    fn entries_are_checked_like_the_configuration() {
        let routes = [
            route("*", "smart.example", Some(TlsPolicy::Encrypt)),
            route("a.example", "127.0.0.1", Some(TlsPolicy::None)),
            route("b.example", "smart.example", None),
        ];
        let mut t = Table::default();
        t.insert(&routes, TlsPolicy::May, "*", "relay".into(), password())
            .expect("encrypt");
        t.insert(&routes, TlsPolicy::May, "a.example", "u".into(), password())
            .expect("loopback none");
        assert!(t.get(&routes[1]).is_some_and(|c| c.plaintext_allowed));
        assert!(t.get(&routes[0]).is_some_and(|c| !c.plaintext_allowed));
        assert_eq!(t.summary(), "* as relay, a.example as u");
        assert_eq!(format!("{t:?}"), "* as relay, a.example as u");
        for (domain, user, default) in [
            ("b.example", "u", TlsPolicy::May),
            ("c.example", "u", TlsPolicy::Verify),
            ("*", "u", TlsPolicy::Verify),
            ("b.example", "", TlsPolicy::Verify),
        ] {
            assert!(
                t.insert(&routes, default, domain, user.into(), password())
                    .is_err(),
                "{domain} {user:?}"
            );
        }
        t.insert(
            &routes,
            TlsPolicy::Verify,
            "b.example",
            "u".into(),
            password(),
        )
        .expect("verify by default");
        assert_ne!(
            t.get(&routes[0]).map(|c| c.identity()),
            t.get(&routes[2]).map(|c| c.identity())
        );
    }
}
