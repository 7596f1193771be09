//! moat-auth, the only process that opens the user store: it answers authenticate (`A`) and
//! resolve (`R`) requests on `auth.sock` for moat-smtpd, moat-local, moat-imapd and moat-pop3d,
//! login-ticket requests (`L` from moat-imap-login and moat-pop3-login, `T` from the mail
//! processes they hand clients to) and moat-lists' requests, as docs/PROTOCOLS.md ("moat-auth")
//! specifies. The binary (`src/bin/moat-auth.rs`) receives its
//! setup and drops privileges; everything after that is here:
//!
//! - `config`: the settings from the setup channel;
//! - `server`: the accept loop, the peer-uid check, per-connection limits, draining;
//! - `handlers`: the requests themselves;
//! - `tickets`: the login tickets waiting to be redeemed (in memory, bounded, expiring);
//! - `lists`: moat-lists' requests (list settings, rosters, post numbers);
//! - `throttle`: failed-login throttling per login and per client IP;
//! - `store`: opening the store in the background, with retries, so a database that is down
//!   makes moat-auth answer `Z` rather than exit.
//!
//! It stops on SIGTERM or SIGINT (after finishing the requests in progress) and when the
//! supervisor goes away (end of file on the setup channel). SIGHUP is logged and ignored: there
//! is nothing to reload, the store is read on every request.
//!
//! SECURITY: this process holds the store's credentials and the password hashes, and nothing
//! else: it opens no network port and serves only its Unix socket, to the peers the supervisor
//! names. See each module for its own notes.

mod config;
mod handlers;
mod lists;
mod server;
mod store;
mod throttle;
mod tickets;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;

use moat_common::{error, info, warn};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub use config::Settings;
pub use handlers::{
    AUTH_FAILED, MAX_ADDRESS, MAX_LOGIN, MAX_PASSWORD, NO_SUCH_USER, THROTTLED, TOO_MANY_PENDING,
    UNAVAILABLE, UNKNOWN_TICKET,
};
pub use server::{MAX_CONNECTIONS, PERMISSION_DENIED, Peers};
pub use throttle::Policy;
pub use tickets::{LIFETIME as TICKET_LIFETIME, MAX_OUTSTANDING as MAX_TICKETS};

/// Runs moat-auth until it is told to stop. `listener` is the `auth` descriptor; `control` the
/// setup channel (end of file = the supervisor is gone). Must run inside a tokio runtime.
pub async fn run(
    settings: Settings,
    listener: OwnedFd,
    control: StdUnixStream,
) -> std::io::Result<()> {
    let listener = moat_common::conn::unix_listener(listener)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(watch_signals(stop_tx.clone()));
    watch_supervisor(control, stop_tx.clone())?;

    let slot = store::StoreSlot::new();
    let connector = tokio::spawn(slot.clone().keep_connecting(settings.store_url.clone()));
    // Let the first requests wait (in the listen backlog) for a store that is merely slow to
    // open; a store that is down gets them a `Z` right after the first attempt.
    {
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = slot.first_attempt() => {}
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
    }

    let handler = Arc::new(handlers::Handler::new(
        slot.clone(),
        settings.resolve.clone(),
        Policy::default(),
    ));
    info!(
        "serving auth.sock (sub-addresses: {}; peers: smtpd {:?}, local {:?}, imapd {:?}, lists {:?}, login {:?})",
        settings
            .resolve
            .subaddress_delimiter
            .map_or_else(|| "off".to_string(), |c| format!("{c:?}")),
        settings.peers.smtpd,
        settings.peers.local,
        settings.peers.imapd,
        settings.peers.lists,
        settings.peers.login,
    );
    server::serve(listener, Arc::new(settings.peers), handler, stop_rx).await;
    connector.abort();
    slot.close().await;
    drop(stop_tx);
    info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT: drain and stop. SIGHUP: nothing to reload (but must not kill us).
async fn watch_signals(stop: watch::Sender<bool>) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot handle SIGTERM: {e}");
            return;
        }
    };
    let mut int = signal(SignalKind::interrupt());
    let mut hup = signal(SignalKind::hangup());
    if let Err(e) = &int {
        warn!("cannot handle SIGINT: {e}");
    }
    if let Err(e) = &hup {
        warn!("cannot handle SIGHUP: {e}");
    }
    loop {
        tokio::select! {
            _ = term.recv() => {
                info!("SIGTERM: finishing the requests in progress, then stopping");
                break;
            }
            Some(()) = async { match &mut int { Ok(s) => s.recv().await, Err(_) => std::future::pending().await } } => {
                info!("SIGINT: finishing the requests in progress, then stopping");
                break;
            }
            Some(()) = async { match &mut hup { Ok(s) => s.recv().await, Err(_) => std::future::pending().await } } => {
                info!("SIGHUP: nothing to reload (the user store is read on every request)");
            }
        }
    }
    stop.send_replace(true);
}

/// Stops when the supervisor's end of the setup channel closes.
fn watch_supervisor(control: StdUnixStream, stop: watch::Sender<bool>) -> std::io::Result<()> {
    control.set_nonblocking(true)?;
    let mut control = tokio::net::UnixStream::from_std(control)?;
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            match control.read(&mut buf).await {
                Ok(0) => {
                    info!("the supervisor is gone (setup channel closed): stopping");
                    break;
                }
                // Anything the supervisor says here is not (yet) part of the protocol.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("setup channel: {e}: stopping");
                    break;
                }
            }
        }
        stop.send_replace(true);
    });
    Ok(())
}
