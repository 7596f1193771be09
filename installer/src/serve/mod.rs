//! `moat serve`: the supervisor. As root it prepares the folders, binds every listener, opens
//! the TLS key, and spawns each Moat program under its own Unix user with exactly the
//! descriptors and settings it needs; then it restarts crashed children with backoff, reloads
//! certificates on SIGHUP and drains on SIGTERM. Not as root (`moat up`), the same code runs
//! every program under the invoking user.
//!
//! SECURITY: the supervisor never reads from a listener or parses network input; the only data
//! it handles are its own configuration and the key and password files it opens for its
//! children.

mod accounts;
mod children;
pub mod dkim;
mod layout;
mod listeners;
mod remote_files;
mod reports;
mod route_auth;
mod specs;
pub mod status;

use anyhow::Context as _;
use moat_common::config::Config;
use moat_common::info;

pub use accounts::Accounts;

/// Runs the stack until SIGTERM/SIGINT.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let accounts = Accounts::for_config(config)?;
    // The routes' password files are opened again at every spawn of moat-remote; checking them
    // first makes a bad one stop the start before any listener is bound or child started.
    route_auth::open_secrets(config)?;
    if !accounts.privileged {
        info!("not running as root: every process runs as this user (quickstart mode)");
    }
    layout::prepare(config, &accounts).context("cannot prepare the data folders")?;
    let sockets = listeners::bind(config)?;
    let programs = specs::ProgramDir::find(config)?;
    let mut supervisor = children::Supervisor::new(config, accounts, sockets, programs);
    supervisor.start_all()?;
    supervisor.run().await
}
