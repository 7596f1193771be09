//! Which Unix account each program runs as: the configured system users when the supervisor is
//! root, the invoking user otherwise (quickstart).

use anyhow::Context as _;
use moat_common::config::Config;
use moat_common::privilege::{self, Account};

#[derive(Debug, Clone)]
pub struct Accounts {
    /// True when running as root and switching users.
    pub privileged: bool,
    pub smtpd: Account,
    pub queue: Account,
    pub local: Account,
    pub auth: Account,
    pub remote: Account,
    pub lists: Account,
    /// The pre-auth login processes: no mail, no store, no queue (one user each, so neither
    /// can signal, ptrace or impersonate the other or the mail user).
    pub imap_login: Account,
    pub pop3_login: Account,
}

impl Accounts {
    pub fn for_config(config: &Config) -> anyhow::Result<Accounts> {
        if privilege::is_root() {
            let look = |name: &str| {
                privilege::lookup(name).with_context(|| {
                    format!("the supervisor runs as root and needs the system user {name:?}")
                })
            };
            let accounts = Accounts {
                privileged: true,
                smtpd: look(&config.users.smtpd)?,
                queue: look(&config.users.queue)?,
                local: look(&config.users.local)?,
                auth: look(&config.users.auth)?,
                remote: look(&config.users.remote)?,
                lists: look(&config.users.lists)?,
                imap_login: look(&config.users.imap_login)?,
                pop3_login: look(&config.users.pop3_login)?,
            };
            for a in [
                &accounts.smtpd,
                &accounts.queue,
                &accounts.local,
                &accounts.auth,
                &accounts.remote,
                &accounts.lists,
                &accounts.imap_login,
                &accounts.pop3_login,
            ] {
                if a.uid == 0 || a.gid == 0 {
                    anyhow::bail!(
                        "system user {:?} has uid or gid 0: refusing to run it",
                        a.name
                    );
                }
            }
            Ok(accounts)
        } else {
            let me = Account {
                name: std::env::var("USER").unwrap_or_else(|_| "me".into()),
                uid: rustix::process::getuid().as_raw(),
                gid: rustix::process::getgid().as_raw(),
            };
            Ok(Accounts {
                privileged: false,
                smtpd: me.clone(),
                queue: me.clone(),
                local: me.clone(),
                auth: me.clone(),
                remote: me.clone(),
                lists: me.clone(),
                imap_login: me.clone(),
                pop3_login: me,
            })
        }
    }
}
