//! moat-smtpd: the SMTP server on ports 25, 587 and 465 (docs/PROTOCOLS.md "moat-smtpd"), the
//! async driver around the sans-I/O session in `proto`.
//!
//! | file | job |
//! |---|---|
//! | `settings.rs` | the settings from the supervisor, checked, with the RFC 5321 timeouts |
//! | `tls.rs` | handshake facts (the rustls configuration is `moat_common::daemon::tls`) |
//! | `listener.rs` | the three services, their session configurations, the accept loops |
//! | `connection.rs` | one connection: the event loop around `proto::Session` |
//! | `stream.rs` | plain TCP or TLS, and the STARTTLS upgrade |
//! | `clock.rs` | total deadlines for commands and data (slow clients) |
//! | `policy.rs` | recipient checks (moat-local, moat-auth) and logins (moat-auth) |
//! | `message.rs` | a message streamed into moat-queue; Date/Message-ID on submission |
//! | `received.rs` | the Received line, Message-ID values, session ids |
//!
//! The connection limits, the stop flag (SIGTERM/SIGINT and the supervisor's end), the TLS
//! files and the accept loop's skeleton are shared with moat-pop3d: `moat_common::daemon`.
//!
//! SECURITY: moat-smtpd reads what the internet sends, so it holds nothing worth stealing: it
//! runs as its own user (dropped in `Setup::receive` before any thread exists), opens nothing
//! on disk (the listeners and the TLS files arrive as descriptors, read once before the
//! runtime starts), and can only ask: moat-local whether a recipient exists, moat-auth whether
//! a password is right, moat-queue to take a message. Each of those checks our requests again.

pub mod clock;
pub mod connection;
pub mod listener;
pub mod message;
pub mod policy;
pub mod received;
pub mod settings;
pub mod stream;
pub mod tls;

#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::daemon;
use moat_common::daemon::limits::Limits;
use moat_common::daemon::stop::{self, Stop};
use moat_common::daemon::tcp_server::Services;
use moat_common::{info, warn};
use rustls::ServerConfig;

use listener::Service;
use settings::Settings;

/// Octets kept free below `max_message_size` for the lines we add (Received, Date,
/// Message-ID), so a message we accept is never too big for the queue.
pub const HEADROOM: u64 = 4096;

/// What every connection shares.
pub struct Server {
    pub settings: Settings,
    pub tls: Option<Arc<ServerConfig>>,
    pub policy: policy::Policy,
    pub limits: Arc<Limits>,
    pub stop: Stop,
}

/// Runs moat-smtpd with what the supervisor handed over. Call after `Setup::receive`.
pub fn run(mut setup: Setup) -> Result<(), String> {
    let settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
    // Serving port 25 without STARTTLS beats not serving it; submission without TLS never
    // offers AUTH, so no password can cross in plaintext.
    let tls = daemon::tls::from_setup(&mut setup, "no STARTTLS, no AUTH, port 465 off")?;
    let mut listeners: Vec<(Service, OwnedFd)> = Vec::new();
    for service in Service::ALL {
        let Some(fd) = setup.take_fd_opt(service.name()) else {
            continue;
        };
        if service.implicit_tls() && tls.is_none() {
            warn!("{}: off, it needs a TLS certificate", service.name());
            continue;
        }
        if service == Service::Submission && tls.is_none() {
            warn!("submission: no AUTH without TLS, so no mail will be accepted there");
        }
        listeners.push((service, fd));
    }
    if listeners.is_empty() {
        return Err("no listener to serve (smtp, submission, submissions)".into());
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
    listeners: Vec<(Service, OwnedFd)>,
    control: std::os::unix::net::UnixStream,
) -> Result<(), String> {
    let mut stop = stop::watch(control, " (open transactions may finish)")?;
    let drain = settings.drain;
    let server = Arc::new(Server {
        policy: policy::Policy::new(&settings),
        limits: Limits::new(settings.max_connections, settings.max_connections_per_ip),
        tls,
        stop: stop.clone(),
        settings,
    });
    let services = Services::start(
        listeners.into_iter().map(|(s, fd)| (s.name(), fd, s)),
        |listener, _, service| listener::accept_loop(listener, service, Arc::clone(&server)),
    )?;
    info!(
        "ready: {} (TLS {}, at most {} connections, {} per client)",
        services.describe(),
        if server.tls.is_some() { "on" } else { "off" },
        server.settings.max_connections,
        server.settings.max_connections_per_ip
    );
    stop::stopped(&mut stop).await;
    services.join().await;
    let open = server.limits.open();
    if open > 0 {
        info!("waiting for {open} open session(s) to end");
    }
    // Sessions answer 421 by themselves after `drain`; a little more for the last words.
    if !server
        .limits
        .all_closed(drain + Duration::from_secs(3))
        .await
    {
        warn!(
            "{} session(s) still open after the drain: dropping them",
            server.limits.open()
        );
    }
    info!("stopped");
    Ok(())
}
