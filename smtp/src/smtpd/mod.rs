//! moat-smtpd: the SMTP server on ports 25, 587 and 465 (docs/PROTOCOLS.md "moat-smtpd"), the
//! async driver around the sans-I/O session in `proto`.
//!
//! | file | job |
//! |---|---|
//! | `settings.rs` | the settings from the supervisor, checked, with the RFC 5321 timeouts |
//! | `tls.rs` | the rustls configuration from the passed PEM descriptors; handshake facts |
//! | `listener.rs` | the three services, their session configurations, the accept loops |
//! | `limits.rs` | connections in total and per client network |
//! | `connection.rs` | one connection: the event loop around `proto::Session` |
//! | `stream.rs` | plain TCP or TLS, and the STARTTLS upgrade |
//! | `clock.rs` | total deadlines for commands and data (slow clients) |
//! | `policy.rs` | recipient checks (moat-local, moat-auth) and logins (moat-auth) |
//! | `message.rs` | a message streamed into moat-queue; Date/Message-ID on submission |
//! | `received.rs` | the Received line, Message-ID values, session ids |
//! | `stop.rs` | SIGTERM/SIGINT and the supervisor's end: the stop flag |
//!
//! SECURITY: moat-smtpd reads what the internet sends, so it holds nothing worth stealing: it
//! runs as its own user (dropped in `Setup::receive` before any thread exists), opens nothing
//! on disk (the listeners and the TLS files arrive as descriptors, read once before the
//! runtime starts), and can only ask: moat-local whether a recipient exists, moat-auth whether
//! a password is right, moat-queue to take a message. Each of those checks our requests again.

pub mod clock;
pub mod connection;
pub mod limits;
pub mod listener;
pub mod message;
pub mod policy;
pub mod received;
pub mod settings;
pub mod stop;
pub mod stream;
pub mod tls;

#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::conn::tcp_listener;
use moat_common::{error, info, warn};
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
    pub limits: Arc<limits::Limits>,
    pub stop: stop::Stop,
}

/// Runs moat-smtpd with what the supervisor handed over. Call after `Setup::receive`.
pub fn run(mut setup: Setup) -> Result<(), String> {
    let settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
    let tls = match (setup.take_fd_opt("tls_cert"), setup.take_fd_opt("tls_key")) {
        (Some(cert), Some(key)) => match tls::load(cert, key) {
            Ok(config) => Some(config),
            Err(e) => {
                // Serving port 25 without STARTTLS beats not serving it; submission without
                // TLS never offers AUTH, so no password can cross in plaintext.
                error!("{e}: running without TLS (no STARTTLS, no AUTH, port 465 off)");
                None
            }
        },
        (None, None) => {
            warn!("no TLS certificate: running without TLS (no STARTTLS, no AUTH, port 465 off)");
            None
        }
        _ => return Err("only one of tls_cert and tls_key was passed".into()),
    };
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(serve(settings, tls, listeners, control));
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn serve(
    settings: Settings,
    tls: Option<Arc<ServerConfig>>,
    listeners: Vec<(Service, OwnedFd)>,
    control: std::os::unix::net::UnixStream,
) -> Result<(), String> {
    let mut stop = stop::watch(control)?;
    let drain = settings.drain;
    let server = Arc::new(Server {
        policy: policy::Policy::new(&settings),
        limits: limits::Limits::new(settings.max_connections, settings.max_connections_per_ip),
        tls,
        stop: stop.clone(),
        settings,
    });
    let mut loops = Vec::new();
    let mut names = Vec::new();
    for (service, fd) in listeners {
        let listener =
            tcp_listener(fd).map_err(|e| format!("bad {} listener: {e}", service.name()))?;
        if let Ok(addr) = listener.local_addr() {
            names.push(format!("{} on {addr}", service.name()));
        }
        loops.push(tokio::spawn(listener::accept_loop(
            listener,
            service,
            Arc::clone(&server),
        )));
    }
    info!(
        "ready: {} (TLS {}, at most {} connections, {} per client)",
        names.join(", "),
        if server.tls.is_some() { "on" } else { "off" },
        server.settings.max_connections,
        server.settings.max_connections_per_ip
    );
    stop::stopped(&mut stop).await;
    for l in loops {
        let _ = l.await;
    }
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
