//! Binding: the TCP listeners of the SMTP, POP3 and IMAP services and the Unix sockets of the
//! internal services (with the handoff sockets where the login processes pass logged-in clients
//! to moat-imapd and moat-pop3d). Bound once by the supervisor and handed to every (re)started child, so a restart
//! never drops a port and the children never need the privilege to bind one.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use moat_common::config::Config;
use moat_common::warn;

pub struct Sockets {
    pub smtp: Option<TcpListener>,
    pub submission: Option<TcpListener>,
    pub submissions: Option<TcpListener>,
    pub pop3: Option<TcpListener>,
    pub pop3s: Option<TcpListener>,
    pub imap: Option<TcpListener>,
    pub imaps: Option<TcpListener>,
    /// moat-lists' RFC 8058 one-click endpoint (`[lists] web_listen`), HTTPS.
    pub web: Option<TcpListener>,
    pub auth: UnixListener,
    pub queue: UnixListener,
    pub local: UnixListener,
    pub remote: UnixListener,
    pub lists: UnixListener,
    /// moat-imapd's and moat-pop3d's: only their login process's uid is served.
    pub imap_handoff: UnixListener,
    pub pop3_handoff: UnixListener,
}

impl Sockets {
    pub fn auth_path(config: &Config) -> PathBuf {
        config.run_dir.join("auth.sock")
    }
    pub fn queue_path(config: &Config) -> PathBuf {
        config.run_dir.join("queue.sock")
    }
    pub fn local_path(config: &Config) -> PathBuf {
        config.run_dir.join("local.sock")
    }
    pub fn remote_path(config: &Config) -> PathBuf {
        config.run_dir.join("remote.sock")
    }
    pub fn lists_path(config: &Config) -> PathBuf {
        config.run_dir.join("lists.sock")
    }
    pub fn imap_handoff_path(config: &Config) -> PathBuf {
        config.run_dir.join("imap-handoff.sock")
    }
    pub fn pop3_handoff_path(config: &Config) -> PathBuf {
        config.run_dir.join("pop3-handoff.sock")
    }
}

pub fn bind(config: &Config) -> anyhow::Result<Sockets> {
    Ok(Sockets {
        smtp: tcp("smtp", &config.listen.smtp)?,
        submission: tcp("submission", &config.listen.submission)?,
        submissions: tcp("submissions", &config.listen.submissions)?,
        pop3: tcp("pop3", &config.listen.pop3)?,
        pop3s: tcp("pop3s", &config.listen.pop3s)?,
        imap: tcp("imap", &config.listen.imap)?,
        imaps: tcp("imaps", &config.listen.imaps)?,
        web: tcp("lists web", config.lists.web_listen.as_slice())?,
        auth: unix(&Sockets::auth_path(config))?,
        queue: unix(&Sockets::queue_path(config))?,
        local: unix(&Sockets::local_path(config))?,
        remote: unix(&Sockets::remote_path(config))?,
        lists: unix(&Sockets::lists_path(config))?,
        imap_handoff: unix(&Sockets::imap_handoff_path(config))?,
        pop3_handoff: unix(&Sockets::pop3_handoff_path(config))?,
    })
}

fn tcp(service: &str, addresses: &[String]) -> anyhow::Result<Option<TcpListener>> {
    let Some(first) = addresses.first() else {
        return Ok(None);
    };
    if addresses.len() > 1 {
        warn!("{service}: only the first listen address ({first}) is used for now");
    }
    let listener = TcpListener::bind(first).with_context(|| {
        format!(
            "cannot listen on {first} for {service} (in use, or a port below 1024 without root?)"
        )
    })?;
    Ok(Some(listener))
}

fn unix(path: &Path) -> anyhow::Result<UnixListener> {
    // A socket file left by a previous run would make bind fail; nothing else may be there.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the old socket {}", path.display()))?;
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket: refusing to replace it",
            path.display()
        ),
        Err(_) => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}
