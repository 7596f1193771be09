//! moat-pop3d: the POP3 server (RFC 1939; CAPA and response codes, RFC 2449/3206; STLS, RFC
//! 2595; AUTH PLAIN, RFC 5034) over the shared Maildir (docs/ARCHITECTURE.md "POP3").
//!
//! | file | job |
//! |---|---|
//! | `settings.rs` | the settings from the supervisor, checked |
//! | `command.rs` | command lines → `Command` |
//! | `lines.rs` | bytes → bounded lines (255 octets), cleared at STLS |
//! | `session.rs` | the sans-I/O state machine: AUTHORIZATION, TRANSACTION, UPDATE |
//! | `maildrop.rs` | the snapshot at login (UIDs, UIDL), the UPDATE state's commit |
//! | `lock.rs` | one POP3 session per maildrop (`[IN-USE]`), an flock |
//! | `dotstuff.rs` | RETR/TOP streamed: CRLF, dot-stuffing, the TOP cut |
//! | `connection.rs` | one connection: the driver around the session |
//! | `listener.rs` | the accept loops |
//! | `stream.rs` | plain or TLS streams |
//!
//! The connection limits, the stop flag (SIGTERM/SIGINT and the supervisor's end), the rustls
//! configuration and the accept loop's skeleton are shared with moat-smtpd:
//! `moat_common::daemon`.
//!
//! SECURITY: moat-pop3d reads what the internet sends and runs as the mail user (dropped in
//! `Setup::receive` before any thread exists): it can read every Maildir, so it acts only
//! for the user moat-auth names, and only on that user's INBOX. Passwords are never checked
//! here (moat-auth does that, and throttles). The listeners and TLS files arrive as
//! descriptors. Input is bounded everywhere: line length, commands before login, errors,
//! idle time, connections.

pub mod command;
pub mod connection;
pub mod dotstuff;
pub mod lines;
pub mod listener;
pub mod lock;
pub mod maildrop;
pub mod session;
pub mod settings;
pub mod stream;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::auth::AuthClient;
use moat_common::daemon;
use moat_common::daemon::limits::Limits;
use moat_common::daemon::stop::{self, Stop};
use moat_common::daemon::tcp_server::Services;
use moat_common::{info, warn};
use rustls::ServerConfig;

use settings::Settings;

/// How long open sessions may go on after a stop before the process ends (and drops them,
/// without UPDATE); the supervisor waits 60 s.
const DRAIN: Duration = Duration::from_secs(30);

/// What every connection shares.
pub struct Server {
    pub settings: Settings,
    pub tls: Option<Arc<ServerConfig>>,
    pub auth: AuthClient,
    pub limits: Arc<Limits>,
    pub stop: Stop,
}

/// Runs moat-pop3d with what the supervisor handed over. Call after `Setup::receive`.
pub fn run(mut setup: Setup) -> Result<(), String> {
    let settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
    let tls = daemon::tls::from_setup(&mut setup, "no STLS, port 995 off")?;
    let mut listeners: Vec<(&'static str, OwnedFd, bool)> = Vec::new();
    if let Some(fd) = setup.take_fd_opt("pop3") {
        listeners.push(("pop3", fd, false));
    }
    match setup.take_fd_opt("pop3s") {
        Some(_) if tls.is_none() => warn!("pop3s: off, it needs a TLS certificate"),
        Some(fd) => listeners.push(("pop3s", fd, true)),
        None => {}
    }
    if listeners.is_empty() {
        return Err("no listener to serve (pop3, pop3s)".into());
    }
    let control = setup.control;
    daemon::block_on(
        serve(settings, tls, listeners, control),
        Some(Duration::from_secs(2)),
    )
}

async fn serve(
    settings: Settings,
    tls: Option<Arc<ServerConfig>>,
    listeners: Vec<(&'static str, OwnedFd, bool)>,
    control: std::os::unix::net::UnixStream,
) -> Result<(), String> {
    let mut stop = stop::watch(control, "")?;
    let server = Arc::new(Server {
        auth: AuthClient::new(&settings.auth_socket),
        limits: Limits::new(settings.max_connections, settings.max_connections_per_ip),
        tls,
        stop: stop.clone(),
        settings,
    });
    let services = Services::start(listeners, |listener, name, implicit_tls| {
        listener::accept_loop(listener, name, implicit_tls, Arc::clone(&server))
    })?;
    info!(
        "ready: {} (TLS {}, plaintext logins on loopback {}, at most {} connections)",
        services.describe(),
        if server.tls.is_some() { "on" } else { "off" },
        if server.settings.plaintext_on_loopback {
            "allowed"
        } else {
            "refused"
        },
        server.settings.max_connections
    );
    stop::stopped(&mut stop).await;
    services.join().await;
    if !server.limits.all_closed(DRAIN).await {
        warn!(
            "{} session(s) still open after the drain: dropped without UPDATE",
            server.limits.open()
        );
    }
    info!("stopped");
    Ok(())
}
