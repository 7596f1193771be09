//! What each program gets: its executable, its user, its descriptors and its settings. This is
//! the whole least-privilege table of docs/PROTOCOLS.md in one place.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use moat_common::child::Item;
use moat_common::config::Config;
use moat_common::privilege::Account;
use moat_smtp::remote::auth as route_auth;
use moat_smtp::remote::dkim::keys;

use super::Accounts;
use super::dkim::setting as dkim_setting;
use super::listeners::Sockets;
use super::remote_files::RemoteFiles;
use super::route_auth::setting as route_auth_setting;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Auth,
    Local,
    Queue,
    Smtpd,
    Pop3d,
    Imapd,
    Remote,
    Lists,
    /// The pre-auth halves of moat-pop3d and moat-imapd: TLS and everything before a login,
    /// then the connection is handed to the mail process.
    Pop3Login,
    ImapLogin,
}

impl Role {
    /// Every role, in start order: a service before its clients, so a mail process is there
    /// before its login process hands it the first client.
    pub const ALL: [Role; 10] = [
        Role::Auth,
        Role::Local,
        Role::Remote,
        Role::Lists,
        Role::Queue,
        Role::Smtpd,
        Role::Pop3d,
        Role::Imapd,
        Role::Pop3Login,
        Role::ImapLogin,
    ];

    pub fn program(self) -> &'static str {
        match self {
            Role::Auth => "moat-auth",
            Role::Local => "moat-local",
            Role::Queue => "moat-queue",
            Role::Smtpd => "moat-smtpd",
            Role::Pop3d => "moat-pop3d",
            Role::Imapd => "moat-imapd",
            Role::Remote => "moat-remote",
            Role::Lists => "moat-lists",
            Role::Pop3Login => "moat-pop3-login",
            Role::ImapLogin => "moat-imap-login",
        }
    }

    /// Whether the configuration gives `role` anything to do: POP3 and IMAP (both halves) only
    /// with at least one of their listeners; the rest always.
    pub fn wanted(self, config: &Config) -> bool {
        let l = &config.listen;
        match self {
            Role::Pop3d | Role::Pop3Login => !(l.pop3.is_empty() && l.pop3s.is_empty()),
            Role::Imapd | Role::ImapLogin => !(l.imap.is_empty() && l.imaps.is_empty()),
            _ => true,
        }
    }

    pub fn account(self, accounts: &Accounts) -> &Account {
        match self {
            Role::Auth => &accounts.auth,
            // The mail-access servers read and write the Maildirs, as the delivery agent does.
            Role::Local | Role::Pop3d | Role::Imapd => &accounts.local,
            Role::Queue => &accounts.queue,
            Role::Smtpd => &accounts.smtpd,
            Role::Remote => &accounts.remote,
            Role::Lists => &accounts.lists,
            Role::Pop3Login => &accounts.pop3_login,
            Role::ImapLogin => &accounts.imap_login,
        }
    }
}

/// The folder holding the `moat-*` programs.
pub struct ProgramDir(PathBuf);

impl ProgramDir {
    pub fn find(config: &Config) -> anyhow::Result<ProgramDir> {
        let dir = match &config.libexec {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()
                .context("cannot find the moat executable")?
                .parent()
                .context("the moat executable has no folder")?
                .to_path_buf(),
        };
        for role in Role::ALL {
            let path = dir.join(role.program());
            if !path.is_file() {
                bail!(
                    "{} is missing from {} (build the whole workspace with `cargo build`, or \
                     set paths.libexec in the configuration)",
                    role.program(),
                    dir.display()
                );
            }
        }
        Ok(ProgramDir(dir))
    }

    pub fn path(&self, role: Role) -> PathBuf {
        self.0.join(role.program())
    }
}

/// The TLS files, opened by the supervisor (root-only on disk) and passed as descriptors.
pub struct TlsFiles {
    pub cert: File,
    pub key: File,
}

impl TlsFiles {
    pub fn open(config: &Config) -> anyhow::Result<TlsFiles> {
        let open = |p: &PathBuf| {
            File::open(p).with_context(|| {
                format!(
                    "cannot open the TLS file {} (moat up makes one)",
                    p.display()
                )
            })
        };
        Ok(TlsFiles {
            cert: open(&config.tls_cert)?,
            key: open(&config.tls_key)?,
        })
    }
}

/// The CA file for moat-remote's `verify` policy, when one is configured (public data, but
/// opened here so moat-remote needs no file-system access at all).
pub fn open_ca(config: &Config) -> anyhow::Result<Option<File>> {
    match &config.remote.ca_file {
        None => Ok(None),
        Some(p) => File::open(p)
            .map(Some)
            .with_context(|| format!("cannot open remote.ca_file {}", p.display())),
    }
}

/// The items for `role`'s setup channel: its descriptors, then its settings.
pub fn items<'a>(
    role: Role,
    config: &Config,
    accounts: &Accounts,
    sockets: &'a Sockets,
    tls: Option<&'a TlsFiles>,
    remote: &'a RemoteFiles,
) -> Vec<Item<'a>> {
    let uid = |a: &Account| a.uid.to_string();
    let path = |p: PathBuf| p.display().to_string();
    let auth_socket = || ("auth_socket", path(Sockets::auth_path(config)));
    let queue_socket = || ("queue_socket", path(Sockets::queue_path(config)));
    let local_socket = || ("local_socket", path(Sockets::local_path(config)));
    let mail_root = || ("mail_root", path(config.mail_root.clone()));
    let l = &config.limits;

    let mut fds: Vec<(&'a str, Option<BorrowedFd<'a>>)> = Vec::new();
    let tls_fds = [
        ("tls_cert", tls.map(|t| t.cert.as_fd())),
        ("tls_key", tls.map(|t| t.key.as_fd())),
    ];
    let mut settings: Vec<(&'a str, String)> = vec![
        ("user", role.account(accounts).name.clone()),
        // Which confinement profile (seccomp allow-list) the child applies to itself.
        ("program", role.program().to_string()),
        ("run_dir", path(config.run_dir.clone())),
        ("hostname", config.hostname.clone()),
    ];
    match role {
        Role::Auth => {
            fds.push(("auth", Some(sockets.auth.as_fd())));
            settings.extend([
                ("store_url", config.store_url.clone()),
                (
                    "subaddress_delimiter",
                    config
                        .subaddress_delimiter
                        .map(String::from)
                        .unwrap_or_default(),
                ),
                ("peers_smtpd", uid(&accounts.smtpd)),
                ("peers_local", uid(&accounts.local)),
                // moat-pop3d and moat-imapd redeem login tickets; they run as the mail user.
                ("peers_imapd", uid(&accounts.local)),
                // The login processes check passwords and get tickets (`L`), nothing else.
                (
                    "peers_login",
                    format!("{},{}", accounts.imap_login.uid, accounts.pop3_login.uid),
                ),
                ("peers_lists", uid(&accounts.lists)),
            ]);
        }
        Role::Queue => {
            fds.push(("queue", Some(sockets.queue.as_fd())));
            settings.extend([
                ("queue_dir", path(config.queue_dir.clone())),
                local_socket(),
                (
                    "queue_lifetime_secs",
                    config.queue_lifetime_secs.to_string(),
                ),
                ("bounce_from", format!("MAILER-DAEMON@{}", config.hostname)),
                ("max_message_size", l.max_message_size.to_string()),
                (
                    "retry_schedule",
                    config
                        .queue_retry_schedule
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                (
                    "delay_warning_secs",
                    config.queue_delay_warning_secs.to_string(),
                ),
                ("remote_socket", path(Sockets::remote_path(config))),
                (
                    "remote_timeout_secs",
                    config.remote.transaction_limit_secs().to_string(),
                ),
                ("peers_smtpd", uid(&accounts.smtpd)),
                // The processes that pass mail on and may name its origin: moat-local
                // (forwards) and moat-lists.
                (
                    "peers_local",
                    format!("{},{}", accounts.local.uid, accounts.lists.uid),
                ),
                // Only moat-lists may claim origin `list` (its posts, DKIM-signed as the
                // list's domain by moat-remote).
                ("peers_lists", uid(&accounts.lists)),
            ]);
        }
        Role::Remote => {
            let r = &config.remote;
            fds.push(("remote", Some(sockets.remote.as_fd())));
            let RemoteFiles { ca, dkim, secrets } = remote;
            fds.push(("tls_ca", ca.as_ref().map(|f| f.as_fd())));
            // The DKIM keys, opened by us: moat-remote gets descriptors, never paths.
            fds.extend(
                dkim.iter()
                    .map(|k| (k.fd_name.as_str(), Some(k.file.as_fd()))),
            );
            settings.push((keys::SETTING, dkim_setting(dkim)));
            // The routes' passwords, likewise: descriptors, never a setting (users are not
            // secret and go as settings).
            fds.extend(
                secrets
                    .iter()
                    .map(|s| (s.fd_name.as_str(), Some(s.file.as_fd()))),
            );
            settings.push((route_auth::SETTING, route_auth_setting(secrets)));
            settings.extend(
                secrets
                    .iter()
                    .map(|s| (s.user_setting.as_str(), s.user.clone())),
            );
            let routes: Vec<String> = r.routes.iter().map(|r| r.encode()).collect();
            settings.extend([
                ("peers_queue", uid(&accounts.queue)),
                ("nameserver", r.nameserver.clone().unwrap_or_default()),
                ("port", r.port.to_string()),
                ("tls", r.tls.name().to_string()),
                ("routes", routes.join(",")),
                ("timeout_connect_secs", r.timeout_connect_secs.to_string()),
                ("timeout_command_secs", r.timeout_command_secs.to_string()),
                (
                    "timeout_data_block_secs",
                    r.timeout_data_block_secs.to_string(),
                ),
                ("timeout_data_end_secs", r.timeout_data_end_secs.to_string()),
                ("max_deliveries", r.max_deliveries.to_string()),
                ("max_per_destination", r.max_per_destination.to_string()),
            ]);
        }
        Role::Local => {
            fds.push(("local", Some(sockets.local.as_fd())));
            settings.extend([
                mail_root(),
                auth_socket(),
                queue_socket(),
                ("lists_socket", path(Sockets::lists_path(config))),
                ("peers_queue", uid(&accounts.queue)),
                ("peers_smtpd", uid(&accounts.smtpd)),
            ]);
        }
        Role::Lists => {
            // The list manager: mail from moat-local in, mail into the queue out. No store
            // credentials and no Maildir: list data comes through moat-auth; its own files
            // (held posts, archives, digests) live in lists_dir.
            fds.push(("lists", Some(sockets.lists.as_fd())));
            // The one-click unsubscribe endpoint (HTTPS): its listener and the certificate.
            fds.push(("web", sockets.web.as_ref().map(|l| l.as_fd())));
            fds.extend(tls_fds);
            let p = &config.lists;
            settings.extend([
                auth_socket(),
                queue_socket(),
                ("peers_local", uid(&accounts.local)),
                ("lists_dir", path(config.lists_dir.clone())),
                ("bounce_threshold", p.bounce_threshold.to_string()),
                ("bounce_window_secs", p.bounce_window_secs.to_string()),
                ("held_expiry_secs", p.held_expiry_secs.to_string()),
                ("digest_posts", p.digest_posts.to_string()),
                ("digest_interval_secs", p.digest_interval_secs.to_string()),
                ("web_listen", p.web_listen.clone().unwrap_or_default()),
                ("web_url", p.web_url.clone().unwrap_or_default()),
                // DMARC lookups of posters' domains use moat-remote's resolver setting.
                (
                    "nameserver",
                    config.remote.nameserver.clone().unwrap_or_default(),
                ),
            ]);
        }
        Role::Smtpd => {
            fds.extend([
                ("smtp", sockets.smtp.as_ref().map(|l| l.as_fd())),
                ("submission", sockets.submission.as_ref().map(|l| l.as_fd())),
                (
                    "submissions",
                    sockets.submissions.as_ref().map(|l| l.as_fd()),
                ),
            ]);
            fds.extend(tls_fds);
            settings.extend([
                auth_socket(),
                queue_socket(),
                local_socket(),
                ("max_message_size", l.max_message_size.to_string()),
                ("max_recipients", l.max_recipients.to_string()),
                ("max_connections", l.max_connections.to_string()),
                (
                    "max_connections_per_ip",
                    l.max_connections_per_ip.to_string(),
                ),
                ("timeout_command_secs", l.timeout_command_secs.to_string()),
                ("timeout_data_secs", l.timeout_data_secs.to_string()),
                (
                    "sender_login_match",
                    config.submission.sender_login_match.to_string(),
                ),
            ]);
        }
        // The login processes: the network, TLS and everything before a login; a logged-in
        // client goes to the mail process's handoff socket. No mail_root: they reach no mail.
        Role::Pop3Login | Role::ImapLogin => {
            let (plain, implicit, handoff, plaintext_on_loopback, idle_timeout_secs) = match role {
                Role::Pop3Login => (
                    ("pop3", &sockets.pop3),
                    ("pop3s", &sockets.pop3s),
                    Sockets::pop3_handoff_path(config),
                    config.pop3.plaintext_on_loopback,
                    config.pop3.idle_timeout_secs,
                ),
                _ => (
                    ("imap", &sockets.imap),
                    ("imaps", &sockets.imaps),
                    Sockets::imap_handoff_path(config),
                    config.imap.plaintext_on_loopback,
                    config.imap.idle_timeout_secs,
                ),
            };
            fds.extend([
                (plain.0, plain.1.as_ref().map(|l| l.as_fd())),
                (implicit.0, implicit.1.as_ref().map(|l| l.as_fd())),
            ]);
            fds.extend(tls_fds);
            settings.extend([
                auth_socket(),
                ("handoff_socket", path(handoff)),
                ("plaintext_on_loopback", plaintext_on_loopback.to_string()),
                ("idle_timeout_secs", idle_timeout_secs.to_string()),
                ("max_connections", l.max_connections.to_string()),
                (
                    "max_connections_per_ip",
                    l.max_connections_per_ip.to_string(),
                ),
            ]);
            if role == Role::ImapLogin {
                // APPENDLIMIT is in the capabilities before login too: the same as after.
                settings.push(("max_message_size", l.max_message_size.to_string()));
            }
        }
        // The mail processes: no network and no TLS files; only clients a login process handed
        // over (the peer uid of `handoff` is checked against `handoff_peers`).
        Role::Pop3d | Role::Imapd => {
            let (handoff, login) = match role {
                Role::Pop3d => (&sockets.pop3_handoff, &accounts.pop3_login),
                _ => (&sockets.imap_handoff, &accounts.imap_login),
            };
            fds.push(("handoff", Some(handoff.as_fd())));
            let idle_timeout_secs = match role {
                Role::Pop3d => config.pop3.idle_timeout_secs,
                _ => config.imap.idle_timeout_secs,
            };
            settings.extend([
                mail_root(),
                auth_socket(),
                ("handoff_peers", uid(login)),
                ("idle_timeout_secs", idle_timeout_secs.to_string()),
                ("max_connections", l.max_connections.to_string()),
                (
                    "max_connections_per_ip",
                    l.max_connections_per_ip.to_string(),
                ),
            ]);
            if role == Role::Imapd {
                // APPENDLIMIT: a client stores no larger message than SMTP would accept.
                settings.push(("max_message_size", l.max_message_size.to_string()));
            }
        }
    }
    let (read, write) = landlock_paths(role, config);
    let lines = |paths: Vec<PathBuf>| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    settings.extend([
        ("landlock_read", lines(read)),
        ("landlock_write", lines(write)),
        // Unprivileged (`moat up` as a developer), every program runs as that one user anyway:
        // a kernel without Landlock loses nothing the quickstart had, so it only warns. As
        // root, the separation is the product and the config must say so explicitly.
        (
            "allow_unconfined",
            (config.security.allow_unconfined || !accounts.privileged).to_string(),
        ),
        (
            "confinement_self_test",
            config.security.self_test.join("\n"),
        ),
    ]);
    fds.into_iter()
        .filter_map(|(name, fd)| fd.map(|fd| Item::Fd(name, fd)))
        .chain(settings.into_iter().map(|(k, v)| Item::Setting(k, v)))
        .collect()
}

/// The Landlock ruleset of `role` (`moat_common::confine`): the paths it may read, and those it
/// may also change. Everything else on disk is refused, including exec. Every program may read
/// what its libraries open lazily (found with strace on the test stacks): its own `/proc/self`
/// (thread count, status, cgroup), the CPU count and quota (std, num_cpus), glibc's overcommit
/// mode, and the time-zone files. The sockets in `run_dir` are reached by connect(2), which the
/// child grants itself.
fn landlock_paths(role: Role, config: &Config) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut read: Vec<PathBuf> = [
        "/proc/self",
        "/sys/fs/cgroup",
        "/sys/devices/system/cpu/online",
        "/proc/sys/vm/overcommit_memory",
        "/etc/localtime",
        "/usr/share/zoneinfo",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    // The resolver (hickory) also loads the system's CA store when it is built.
    let dns = || {
        [
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/ssl",
            "/etc/pki",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
        ]
        .map(PathBuf::from)
    };
    let write = match role {
        // The login processes reach nothing of ours on disk: only the common list above.
        Role::Smtpd | Role::Pop3Login | Role::ImapLogin => vec![],
        Role::Queue => vec![config.queue_dir.clone()],
        Role::Local | Role::Pop3d | Role::Imapd => vec![config.mail_root.clone()],
        // SQLite keeps its journal and WAL files next to the database; PostgreSQL needs none,
        // but sqlx finds its server's host name with glibc's getaddrinfo, which reads these
        // (the NSS order, /etc/hosts, the DNS servers, the address sorting rules).
        Role::Auth => {
            let url = config.store_url.as_str();
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                read.extend(
                    [
                        "/etc/nsswitch.conf",
                        "/etc/host.conf",
                        "/etc/hosts",
                        "/etc/resolv.conf",
                        "/etc/gai.conf",
                    ]
                    .map(PathBuf::from),
                );
            }
            url.strip_prefix("sqlite:")
                .and_then(|db| std::path::Path::new(db).parent())
                .map(|folder| vec![folder.to_path_buf()])
                .unwrap_or_default()
        }
        Role::Remote => {
            read.extend(dns());
            vec![]
        }
        Role::Lists => {
            read.extend(dns());
            vec![config.lists_dir.clone()]
        }
    };
    (read, write)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::serve::listeners;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid,
            gid: uid,
        }
    }

    /// The descriptor names and the settings of `role`'s setup.
    fn setup(
        role: Role,
        config: &Config,
        accounts: &Accounts,
        sockets: &Sockets,
        tls: &TlsFiles,
    ) -> (Vec<String>, BTreeMap<String, String>) {
        let remote = RemoteFiles::default();
        let mut fds = Vec::new();
        let mut settings = BTreeMap::new();
        for item in items(role, config, accounts, sockets, Some(tls), &remote) {
            match item {
                Item::Fd(name, _) => fds.push(name.to_string()),
                Item::Setting(k, v) => {
                    settings.insert(k.to_string(), v);
                }
            }
        }
        (fds, settings)
    }

    #[test]
    fn login_processes_hold_the_network_and_mail_processes_the_mail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("run")).expect("run dir");
        let config = Config::parse(
            "[store]\nurl = \"sqlite:db/u.db\"\n[paths]\nrun = \"run\"\n\
             [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\n\
             pop3 = []\npop3s = []\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\n",
            &d.join("moat.toml"),
        )
        .expect("config");
        let accounts = Accounts {
            privileged: true,
            smtpd: account("moat-smtpd", 101),
            queue: account("moat-queue", 102),
            local: account("moat-vmail", 103),
            auth: account("moat-auth", 104),
            remote: account("moat-remote", 105),
            lists: account("moat-lists", 106),
            imap_login: account("moat-imap-login", 107),
            pop3_login: account("moat-pop3-login", 108),
        };
        let sockets = listeners::bind(&config).expect("bind");
        for file in ["cert.pem", "key.pem"] {
            std::fs::write(d.join(file), "pem").expect("write");
        }
        let tls = TlsFiles {
            cert: File::open(d.join("cert.pem")).expect("cert"),
            key: File::open(d.join("key.pem")).expect("key"),
        };

        let (fds, settings) = setup(Role::ImapLogin, &config, &accounts, &sockets, &tls);
        assert_eq!(fds, ["imap", "imaps", "tls_cert", "tls_key"]);
        assert_eq!(settings["user"], "moat-imap-login");
        assert_eq!(
            settings["handoff_socket"],
            d.join("run/imap-handoff.sock").display().to_string()
        );
        assert!(
            settings.contains_key("max_message_size"),
            "APPENDLIMIT before login"
        );
        assert!(!settings.contains_key("mail_root"));
        assert_eq!(settings["landlock_write"], "");
        // The common read list and nothing of ours.
        assert!(
            !settings["landlock_read"].contains(&d.display().to_string()),
            "{}",
            settings["landlock_read"]
        );

        let (fds, settings) = setup(Role::Imapd, &config, &accounts, &sockets, &tls);
        assert_eq!(fds, ["handoff"], "no TCP listener and no TLS file");
        assert_eq!(settings["user"], "moat-vmail");
        assert_eq!(settings["handoff_peers"], "107");
        assert!(settings.contains_key("mail_root"));
        assert!(!settings.contains_key("handoff_socket"));

        let (fds, settings) = setup(Role::Pop3d, &config, &accounts, &sockets, &tls);
        assert_eq!(fds, ["handoff"]);
        assert_eq!(settings["handoff_peers"], "108");

        let (_, settings) = setup(Role::Auth, &config, &accounts, &sockets, &tls);
        assert_eq!(settings["peers_login"], "107,108");
        assert_eq!(settings["peers_imapd"], "103");

        // POP3 has no listener here: neither of its processes is started; IMAP's both are.
        assert!(!Role::Pop3Login.wanted(&config) && !Role::Pop3d.wanted(&config));
        assert!(Role::ImapLogin.wanted(&config) && Role::Imapd.wanted(&config));
        assert!(Role::Smtpd.wanted(&config));
    }

    #[test]
    fn moat_auth_reads_the_resolver_files_only_for_postgresql() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = |url: &str| {
            Config::parse(
                &format!("[store]\nurl = \"{url}\"\n"),
                &dir.path().join("moat.toml"),
            )
            .expect("config")
        };
        let resolver = [
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/gai.conf",
        ]
        .map(PathBuf::from);

        // sqlx resolves the server's name with getaddrinfo: these files, and nothing to write.
        for url in [
            "postgres://moat@db.internal/moat",
            "postgresql://moat@localhost:5432/moat",
        ] {
            let (read, write) = landlock_paths(Role::Auth, &config(url));
            for file in &resolver {
                assert!(read.contains(file), "{url}: {read:?}");
            }
            assert!(write.is_empty(), "{url}: {write:?}");
        }

        // SQLite: its folder, and no resolver (nor does any program without the network).
        let sqlite = config("sqlite:db/users.db");
        let (_, write) = landlock_paths(Role::Auth, &sqlite);
        assert_eq!(write, [dir.path().join("db")]);
        let postgres = config("postgres://moat@db.internal/moat");
        for (role, config) in [
            (Role::Auth, &sqlite),
            (Role::Smtpd, &postgres),
            (Role::Local, &postgres),
            (Role::ImapLogin, &postgres),
        ] {
            let (read, _) = landlock_paths(role, config);
            for file in &resolver {
                assert!(!read.contains(file), "{role:?}: {read:?}");
            }
        }
    }
}
