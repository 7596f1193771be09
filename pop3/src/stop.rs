//! When to stop: SIGTERM or SIGINT (the supervisor's drain, Ctrl-C under `moat up`), or
//! end-of-file on the setup channel (the supervisor is gone). All raise one watched flag.
//!
//! SECURITY: nothing is read from the channel but its end. Stopping ends sessions without
//! the UPDATE state, so a session cut short deletes nothing (RFC 1939 section 6).

use std::os::unix::net::UnixStream;

use moat_common::child::wait_for_close;
use moat_common::info;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub type Stop = watch::Receiver<bool>;

/// Starts watching (inside the runtime).
pub fn watch(control: UnixStream) -> Result<Stop, String> {
    let (tx, rx) = watch::channel(false);
    let tx = std::sync::Arc::new(tx);
    let on_close = std::sync::Arc::clone(&tx);
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            wait_for_close(&control);
            info!("the supervisor closed the setup channel: stopping");
            on_close.send_replace(true);
        })
        .map_err(|e| format!("cannot start the control thread: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = int.recv() => info!("SIGINT: stopping"),
        }
        tx.send_replace(true);
    });
    Ok(rx)
}

/// Resolves once a stop was asked for.
pub async fn stopped(stop: &mut Stop) {
    let _ = stop.wait_for(|s| *s).await;
}
