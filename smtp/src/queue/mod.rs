//! moat-queue: the durable queue between the programs that accept mail and moat-local, and the
//! `sendmail` command's logic (docs/PROTOCOLS.md "moat-queue").
//!
//! One concern per file: `id` queue ids; `envelope` the envelope and its file; `state` done marks
//! and retry records; `dirsync` shared directory fsyncs; `store` the directory, the commit
//! protocol and the sweep; `settings`; `server` the socket (accept, peer check, dispatch);
//! `inject` one injection; `admin` list/show/flush/delete requests and `admin_client` their
//! client; `scheduler` what is delivered when; `schedule` the retry delays; `delivery` one
//! delivery attempt of one message; `bounce` RFC 3464 reports; `delay_notice` the one "delayed"
//! report per message; `verp` per-recipient envelope senders; `daemon` the process (signals,
//! shutdown);
//! `sendmail`, `sendmail_args` and `sendmail_message` the `sendmail` command.
//!
//! SECURITY: moat-queue runs as its own user, owns the queue directory alone, and never reads a
//! message's content except to copy the header of an undeliverable one into its bounce. Anyone
//! may inject (the peer uid is recorded and untrusted peers are marked `sendmail`); admin requests
//! need root or the queue's own uid. Everything a peer sends is checked again here.

use std::sync::Arc;

use moat_common::client::local::LocalClient;
use moat_common::client::remote::RemoteClient;
use tokio::sync::mpsc;

pub mod admin;
pub mod admin_client;
pub mod bounce;
pub mod daemon;
pub mod delay_notice;
pub mod delivery;
pub mod dirsync;
pub mod envelope;
pub mod id;
pub mod inject;
pub mod schedule;
pub mod scheduler;
pub mod sendmail;
pub mod sendmail_args;
pub mod sendmail_message;
pub mod server;
pub mod settings;
pub mod state;
pub mod store;
pub mod verp;

/// What every task of the running queue shares.
pub struct Ctx {
    pub store: Arc<store::Store>,
    pub settings: settings::Settings,
    pub local: LocalClient,
    /// moat-remote, when configured; without it mail for other domains waits in the queue.
    pub remote: Option<RemoteClient>,
    pub scheduler: mpsc::UnboundedSender<scheduler::Command>,
    /// The uid moat-queue runs as (admin requests from it are allowed, its injections trusted).
    pub own_uid: u32,
}

/// Runs blocking file-system work (fsync, directory scans) off the async threads.
pub async fn blocking<T, F>(work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(format!("queue worker failed: {e}")))?
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
