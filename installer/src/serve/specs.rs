//! What each program gets: its executable, its user, its descriptors and its settings. This is
//! the whole least-privilege table of docs/PROTOCOLS.md in one place.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use moat_common::child::Item;
use moat_common::config::Config;
use moat_common::privilege::Account;

use super::Accounts;
use super::listeners::Sockets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Auth,
    Local,
    Queue,
    Smtpd,
    Pop3d,
    Remote,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Auth,
        Role::Local,
        Role::Remote,
        Role::Queue,
        Role::Smtpd,
        Role::Pop3d,
    ];

    pub fn program(self) -> &'static str {
        match self {
            Role::Auth => "moat-auth",
            Role::Local => "moat-local",
            Role::Queue => "moat-queue",
            Role::Smtpd => "moat-smtpd",
            Role::Pop3d => "moat-pop3d",
            Role::Remote => "moat-remote",
        }
    }

    pub fn account(self, accounts: &Accounts) -> &Account {
        match self {
            Role::Auth => &accounts.auth,
            // The mail-access servers read and write the Maildirs, as the delivery agent does.
            Role::Local | Role::Pop3d => &accounts.local,
            Role::Queue => &accounts.queue,
            Role::Smtpd => &accounts.smtpd,
            Role::Remote => &accounts.remote,
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

/// The items for `role`'s setup channel.
pub fn items<'a>(
    role: Role,
    config: &Config,
    accounts: &Accounts,
    sockets: &'a Sockets,
    tls: Option<&'a TlsFiles>,
    ca: Option<&'a File>,
) -> Vec<Item<'a>> {
    let uid = |a: &Account| a.uid.to_string();
    let path = |p: PathBuf| p.display().to_string();
    let mut items = vec![
        Item::Setting("user", role.account(accounts).name.clone()),
        Item::Setting("run_dir", path(config.run_dir.clone())),
        Item::Setting("hostname", config.hostname.clone()),
    ];
    match role {
        Role::Auth => {
            items.push(Item::Fd("auth", sockets.auth.as_fd()));
            items.push(Item::Setting("store_url", config.store_url.clone()));
            items.push(Item::Setting(
                "subaddress_delimiter",
                config
                    .subaddress_delimiter
                    .map(String::from)
                    .unwrap_or_default(),
            ));
            items.push(Item::Setting("peers_smtpd", uid(&accounts.smtpd)));
            items.push(Item::Setting("peers_local", uid(&accounts.local)));
            // moat-pop3d (and later moat-imapd) log users in; they run as the mail user.
            items.push(Item::Setting("peers_imapd", uid(&accounts.local)));
        }
        Role::Queue => {
            items.push(Item::Fd("queue", sockets.queue.as_fd()));
            items.push(Item::Setting("queue_dir", path(config.queue_dir.clone())));
            items.push(Item::Setting(
                "local_socket",
                path(Sockets::local_path(config)),
            ));
            items.push(Item::Setting(
                "queue_lifetime_secs",
                config.queue_lifetime_secs.to_string(),
            ));
            items.push(Item::Setting(
                "bounce_from",
                format!("MAILER-DAEMON@{}", config.hostname),
            ));
            items.push(Item::Setting(
                "max_message_size",
                config.limits.max_message_size.to_string(),
            ));
            items.push(Item::Setting(
                "retry_min_secs",
                config.queue_retry_min_secs.to_string(),
            ));
            items.push(Item::Setting(
                "remote_socket",
                path(Sockets::remote_path(config)),
            ));
            items.push(Item::Setting(
                "remote_timeout_secs",
                config.remote.transaction_limit_secs().to_string(),
            ));
            items.push(Item::Setting("peers_smtpd", uid(&accounts.smtpd)));
            items.push(Item::Setting("peers_local", uid(&accounts.local)));
        }
        Role::Remote => {
            let r = &config.remote;
            items.push(Item::Fd("remote", sockets.remote.as_fd()));
            if let Some(ca) = ca {
                items.push(Item::Fd("tls_ca", ca.as_fd()));
            }
            items.push(Item::Setting("peers_queue", uid(&accounts.queue)));
            items.push(Item::Setting(
                "nameserver",
                r.nameserver.clone().unwrap_or_default(),
            ));
            items.push(Item::Setting("port", r.port.to_string()));
            items.push(Item::Setting("tls", r.tls.name().to_string()));
            let routes: Vec<String> = r.routes.iter().map(|r| r.encode()).collect();
            items.push(Item::Setting("routes", routes.join(",")));
            for (key, value) in [
                ("timeout_connect_secs", r.timeout_connect_secs),
                ("timeout_command_secs", r.timeout_command_secs),
                ("timeout_data_block_secs", r.timeout_data_block_secs),
                ("timeout_data_end_secs", r.timeout_data_end_secs),
                ("max_deliveries", u64::from(r.max_deliveries)),
            ] {
                items.push(Item::Setting(key, value.to_string()));
            }
        }
        Role::Local => {
            items.push(Item::Fd("local", sockets.local.as_fd()));
            items.push(Item::Setting("mail_root", path(config.mail_root.clone())));
            items.push(Item::Setting(
                "auth_socket",
                path(Sockets::auth_path(config)),
            ));
            items.push(Item::Setting(
                "queue_socket",
                path(Sockets::queue_path(config)),
            ));
            items.push(Item::Setting("peers_queue", uid(&accounts.queue)));
            items.push(Item::Setting("peers_smtpd", uid(&accounts.smtpd)));
        }
        Role::Smtpd => {
            for (name, listener) in [
                ("smtp", &sockets.smtp),
                ("submission", &sockets.submission),
                ("submissions", &sockets.submissions),
            ] {
                if let Some(l) = listener {
                    items.push(Item::Fd(name, l.as_fd()));
                }
            }
            if let Some(tls) = tls {
                items.push(Item::Fd("tls_cert", tls.cert.as_fd()));
                items.push(Item::Fd("tls_key", tls.key.as_fd()));
            }
            items.push(Item::Setting(
                "auth_socket",
                path(Sockets::auth_path(config)),
            ));
            items.push(Item::Setting(
                "queue_socket",
                path(Sockets::queue_path(config)),
            ));
            items.push(Item::Setting(
                "local_socket",
                path(Sockets::local_path(config)),
            ));
            let l = &config.limits;
            items.push(Item::Setting(
                "max_message_size",
                l.max_message_size.to_string(),
            ));
            items.push(Item::Setting(
                "max_recipients",
                l.max_recipients.to_string(),
            ));
            items.push(Item::Setting(
                "max_connections",
                l.max_connections.to_string(),
            ));
            items.push(Item::Setting(
                "max_connections_per_ip",
                l.max_connections_per_ip.to_string(),
            ));
            items.push(Item::Setting(
                "timeout_command_secs",
                l.timeout_command_secs.to_string(),
            ));
            items.push(Item::Setting(
                "timeout_data_secs",
                l.timeout_data_secs.to_string(),
            ));
        }
        Role::Pop3d => {
            for (name, listener) in [("pop3", &sockets.pop3), ("pop3s", &sockets.pop3s)] {
                if let Some(l) = listener {
                    items.push(Item::Fd(name, l.as_fd()));
                }
            }
            if let Some(tls) = tls {
                items.push(Item::Fd("tls_cert", tls.cert.as_fd()));
                items.push(Item::Fd("tls_key", tls.key.as_fd()));
            }
            items.push(Item::Setting("mail_root", path(config.mail_root.clone())));
            items.push(Item::Setting(
                "auth_socket",
                path(Sockets::auth_path(config)),
            ));
            items.push(Item::Setting(
                "plaintext_on_loopback",
                config.pop3.plaintext_on_loopback.to_string(),
            ));
            items.push(Item::Setting(
                "idle_timeout_secs",
                config.pop3.idle_timeout_secs.to_string(),
            ));
            items.push(Item::Setting(
                "max_connections",
                config.limits.max_connections.to_string(),
            ));
            items.push(Item::Setting(
                "max_connections_per_ip",
                config.limits.max_connections_per_ip.to_string(),
            ));
        }
    }
    items
}
