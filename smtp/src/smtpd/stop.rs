//! When to stop: SIGTERM or SIGINT (the supervisor's drain, a reload, or Ctrl-C under
//! `moat up`, which reaches the whole process group), or end-of-file on the setup channel (the
//! supervisor is gone). All three raise one flag that the accept loops and the sessions watch.
//!
//! SECURITY: nothing is read from the channel but its end; stopping never drops a message that
//! got 250 (that one is in the queue already), it only ends sessions early with 421.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use moat_common::child::wait_for_close;
use moat_common::info;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The flag: `true` once a stop was asked for.
pub type Stop = watch::Receiver<bool>;

/// Starts watching the signals and the setup channel (call inside the runtime).
pub fn watch(control: UnixStream) -> Result<Stop, String> {
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
            _ = term.recv() => info!("SIGTERM: stopping (open transactions may finish)"),
            _ = int.recv() => info!("SIGINT: stopping (open transactions may finish)"),
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
