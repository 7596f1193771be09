//! The system users Moat's programs run as, created when missing (root only), the way Debian
//! packages create theirs: system accounts, no home, no login shell, a group of their own.

use std::process::Command;

use anyhow::{Context as _, bail};
use moat_common::config::Users;
use moat_common::info;
use moat_common::privilege;

pub fn ensure(users: &Users) -> anyhow::Result<()> {
    for name in [
        &users.smtpd,
        &users.queue,
        &users.local,
        &users.auth,
        &users.remote,
        &users.lists,
        &users.imap_login,
        &users.pop3_login,
    ] {
        if privilege::lookup(name).is_ok() {
            continue;
        }
        let status = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .with_context(|| format!("cannot run useradd to create the system user {name}"))?;
        if !status.success() {
            bail!("useradd could not create the system user {name} ({status})");
        }
        info!("created the system user {name}");
    }
    Ok(())
}
