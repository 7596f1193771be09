//! One module per admin noun; `run` opens the store and dispatches.

mod alias;
mod dkim;
mod domain;
mod list;
mod queue;
mod status;
mod user;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cli::{Cli, Command};
use crate::context::Context;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            dir,
            no_demo,
            listen_ip,
        } => {
            return crate::up::up(crate::up::UpOptions {
                dir,
                no_demo,
                listen_ip,
            })
            .await;
        }
        Command::Serve => {
            let config = moat_common::config::Config::discover(cli.global.config.as_deref())?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no configuration found: pass --config, set MOAT_CONFIG, or use `moat up`"
                    )
                })?;
            if moat_common::privilege::is_root() {
                // A system user added in a newer version (moat-remote) must exist before the
                // supervisor looks them up.
                crate::system_users::ensure(&config.users)?;
            }
            return crate::serve::serve(&config).await;
        }
        Command::Status { json } => {
            let config = moat_common::config::Config::discover(cli.global.config.as_deref())?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no configuration found: the supervisor's status is found through it \
                         (--config, MOAT_CONFIG, ./moat-data/moat.toml or /etc/moat/moat.toml)"
                    )
                })?;
            return status::run(&config, json);
        }
        Command::Queue(cmd) => {
            let config = moat_common::config::Config::discover(cli.global.config.as_deref())?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no configuration found: the queue is found through it \
                         (--config, MOAT_CONFIG, ./moat-data/moat.toml or /etc/moat/moat.toml)"
                    )
                })?;
            return queue::run(&config, cmd).await;
        }
        _ => {}
    }
    let ctx = Context::open(&cli.global).await?;
    let result = match cli.command {
        Command::Domain(cmd) => domain::run(&ctx, cmd).await,
        Command::User(cmd) => user::run(&ctx, cmd).await,
        Command::Alias(cmd) => alias::run(&ctx, cmd).await,
        Command::Catchall(cmd) => alias::run_catchall(&ctx, cmd).await,
        Command::List(args) => list::run(&ctx, args).await,
        Command::Dkim(cmd) => dkim::run(&ctx, cmd).await,
        Command::Up { .. } | Command::Serve | Command::Queue(_) | Command::Status { .. } => Ok(()),
    };
    ctx.store.close().await;
    result
}

/// `<root>/<component>/...`, refusing any component that could leave the root. The store has
/// normalised these names already; this is the second check at the filesystem boundary.
pub fn mail_path(root: &Path, components: &[&str]) -> anyhow::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for c in components {
        if c.is_empty() || *c == "." || *c == ".." || c.contains(['/', '\0']) {
            bail!("refusing the unsafe mail path component {c:?}");
        }
        path.push(c);
    }
    Ok(path)
}

/// Deletes a mail folder if it exists; says what it did.
pub fn purge(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {
            println!("deleted mail folder {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "the account is removed but its mail folder {} could not be deleted; \
                 delete it by hand",
                path.display()
            )
        }),
    }
}
