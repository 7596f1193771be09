//! When to stop: SIGTERM or SIGINT (the supervisor's drain, a reload, or Ctrl-C under
//! `moat up`, which reaches the whole process group), or end-of-file on the setup channel (the
//! supervisor is gone).
//!
//! Two shapes: `watch` raises one flag that accept loops and sessions watch (moat-smtpd,
//! moat-pop3d, moat-queue); `shutdown` is a future that names the reason, for the servers that
//! stop on SIGTERM only and let SIGINT end them at once (moat-local, moat-remote).
//!
//! A third, for the login processes only: `retire` (SIGUSR1, sent by the supervisor when a
//! reload replaces them) stops accepting but lets every open session, above all the TLS ones
//! it relays, go on until they end, without a deadline; a later stop drains as usual.
//!
//! SECURITY: nothing is read from the channel but its end. The channel is watched by a plain
//! thread (it blocks in read() until the supervisor goes away, and must not keep the runtime
//! from shutting down). What stopping may cut short is each daemon's business (see theirs).

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

use crate::child::wait_for_close;
use crate::info;

/// The flag: `true` once a stop was asked for.
pub type Stop = watch::Receiver<bool>;

/// Starts watching the signals and the setup channel (call inside the runtime). `note` ends
/// the log line of a signal, e.g. `" (open transactions may finish)"`.
pub fn watch(control: UnixStream, note: &'static str) -> Result<Stop, String> {
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let on_close = Arc::clone(&tx);
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            wait_for_close(&control);
            if !on_close.send_replace(true) {
                info!("the supervisor closed the setup channel: stopping");
            }
        })
        .map_err(|e| format!("cannot start the control thread: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping{note}"),
            _ = int.recv() => info!("SIGINT: stopping{note}"),
        }
        tx.send_replace(true);
    });
    Ok(rx)
}

/// Login processes: a flag raised on SIGUSR1 (retire: stop accepting, the open sessions go on)
/// or when `stop` is, for the accept loops. Call inside the runtime.
pub fn retire(stop: &Stop) -> Result<Stop, String> {
    let (tx, rx) = watch::channel(*stop.borrow());
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1: {e}"))?;
    let mut stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = usr1.recv() => info!(
                "SIGUSR1: retiring (no new connections; open sessions go on until they end)"
            ),
            _ = stopped(&mut stop) => {}
        }
        tx.send_replace(true);
    });
    Ok(rx)
}

/// Resolves once a stop was asked for (at once if it already was).
pub async fn stopped(stop: &mut Stop) {
    // An error means every sender is gone, which only happens when the process is ending.
    let _ = stop.wait_for(|s| *s).await;
}

/// Starts watching SIGTERM and the setup channel (call inside the runtime); the future
/// resolves to the reason, for the log.
pub fn shutdown(control: UnixStream) -> std::io::Result<impl Future<Output = &'static str>> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let (closed_tx, closed_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            wait_for_close(&control);
            let _ = closed_tx.send(());
        })?;
    Ok(async move {
        tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = closed_rx => "the supervisor closed the control channel",
        }
    })
}
