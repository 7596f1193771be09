//! The moat-queue process: settings, the store and its sweep, then (in the async runtime) the
//! socket server and the scheduler until SIGTERM, SIGINT or the supervisor's end of the setup
//! channel.
//!
//! Stopping: the listener closes, injections in progress get `server::DRAIN` to finish (else they
//! are dropped uncommitted), deliveries in progress get `scheduler::DRAIN` (else they are tried
//! again at the next start). Nothing committed is ever lost by stopping at any moment.
//!
//! SECURITY: called after `Setup::receive` dropped privileges; the store is opened and swept
//! before any thread exists. Exit status: 0 after a requested stop, 1 when it cannot start.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::local::LocalClient;
use moat_common::client::remote::RemoteClient;
use moat_common::conn::unix_listener;
use moat_common::daemon::{self, stop};
use moat_common::{info, warn};
use tokio::sync::mpsc;

use super::settings::Settings;
use super::store::Store;
use super::{Ctx, scheduler, server};

/// Runs moat-queue with what the supervisor handed over.
pub fn run(mut setup: Setup) -> Result<(), String> {
    let settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
    let listener = setup.take_fd("queue").map_err(|e| e.to_string())?;
    let store = Store::open(&settings.queue_dir).map_err(|e| e.to_string())?;
    check_owner(&settings.queue_dir)?;
    let sweep = store
        .sweep()
        .map_err(|e| format!("cannot sweep {}: {e}", settings.queue_dir.display()))?;
    if sweep.tmp + sweep.orphans > 0 {
        info!(
            "sweep removed {} unfinished and {} orphaned file(s)",
            sweep.tmp, sweep.orphans
        );
    }
    let control = setup.control;
    daemon::block_on(
        serve(settings, Arc::new(store), listener, control),
        Some(Duration::from_secs(5)),
    )
}

/// The queue directory must be ours (qmail's spawn refuses files it does not own, for the same
/// reason: whoever can write there can make us deliver anything).
fn check_owner(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to moat-queue (uid {me}): refusing to use it",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        warn!(
            "{} is writable by others (mode {:o}): it should be 0700",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

async fn serve(
    settings: Settings,
    store: Arc<Store>,
    listener: std::os::fd::OwnedFd,
    control: UnixStream,
) -> Result<(), String> {
    let listener = unix_listener(listener).map_err(|e| format!("bad queue listener: {e}"))?;
    let stop = stop::watch(control, "")?;
    let (commands, inbox) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        local: LocalClient::new(&settings.local_socket),
        remote: settings
            .remote_socket
            .as_deref()
            .map(|p| RemoteClient::new(p, Duration::from_secs(settings.remote_timeout_secs))),
        store,
        settings,
        scheduler: commands,
        own_uid: rustix::process::geteuid().as_raw(),
    });
    info!(
        "queue {} ready (deliveries at most {}, lifetime {} s)",
        ctx.settings.queue_dir.display(),
        ctx.settings.max_deliveries,
        ctx.settings.lifetime_secs
    );
    let scheduler = tokio::spawn(scheduler::run(Arc::clone(&ctx), inbox, stop.clone()));
    server::serve(listener, ctx, stop).await;
    if let Err(e) = scheduler.await {
        warn!("scheduler ended badly: {e}");
    }
    info!("stopped");
    Ok(())
}
