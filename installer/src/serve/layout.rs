//! The data folders and who owns them. As root: the queue belongs to the queue user, the
//! Maildirs to the mail user, the SQLite store's folder to the auth user, all mode 0700; the
//! socket folder is root's, world-searchable (access is checked per peer uid).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, bail};
use moat_common::config::Config;
use moat_common::privilege::Account;

use super::Accounts;

pub fn prepare(config: &Config, accounts: &Accounts) -> anyhow::Result<()> {
    dir(&config.run_dir, None, 0o755, accounts.privileged)?;
    dir(
        &config.queue_dir,
        Some(&accounts.queue),
        0o700,
        accounts.privileged,
    )?;
    dir(
        &config.mail_root,
        Some(&accounts.local),
        0o700,
        accounts.privileged,
    )?;
    // moat-lists' held posts, archives and digests: its own, like the queue is the queue's.
    dir(
        &config.lists_dir,
        Some(&accounts.lists),
        0o700,
        accounts.privileged,
    )?;
    if let Some(db) = config.store_url.strip_prefix("sqlite:") {
        let db = Path::new(db);
        let folder = db.parent().context("the SQLite store has no folder")?;
        let config_dir = config.source.parent();
        if accounts.privileged && Some(folder) == config_dir {
            bail!(
                "the SQLite store {} must live in a folder of its own (e.g. db/users.db), \
                 which is given to the {} user",
                db.display(),
                accounts.auth.name
            );
        }
        dir(folder, Some(&accounts.auth), 0o700, accounts.privileged)?;
        // The store holds password hashes: readable by moat-auth alone.
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", db.display());
            let file = Path::new(&file);
            if file.exists() {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot set the mode of {}", file.display()))?;
                if accounts.privileged {
                    chown(file, &accounts.auth)?;
                }
            }
        }
    }
    Ok(())
}

fn dir(path: &Path, owner: Option<&Account>, mode: u32, privileged: bool) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    if privileged {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        if let Some(owner) = owner {
            chown(path, owner)?;
        }
    }
    Ok(())
}

fn chown(path: &Path, owner: &Account) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("cannot give {} to {}", path.display(), owner.name))
}
