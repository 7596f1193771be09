//! What a command runs against: the configuration (if any) and the open user store.

use std::path::PathBuf;

use anyhow::anyhow;
use moat_common::config::Config;
use moat_vdomain::Store;

use crate::cli::Global;

pub struct Context {
    pub store: Store,
    /// The root of the Maildirs, known only from a configuration file.
    pub mail_root: Option<PathBuf>,
    /// The configuration file, if one was found (`--db` alone has none).
    pub config: Option<Config>,
}

impl Context {
    pub async fn open(global: &Global) -> anyhow::Result<Context> {
        let config = Config::discover(global.config.as_deref())?;
        let url = match (&global.db, &config) {
            (Some(url), _) => url.clone(),
            (None, Some(config)) => config.store_url.clone(),
            (None, None) => {
                return Err(anyhow!(
                    "no configuration found (looked at $MOAT_CONFIG, ./moat-data/moat.toml and \
                     /etc/moat/moat.toml): run this beside a `moat up` folder, or name the \
                     store with --db sqlite:PATH or --db postgres://USER@HOST/DB"
                ));
            }
        };
        // The store's own error names the store (without its password) and the reason.
        let store = Store::connect(&url).await?;
        Ok(Context {
            store,
            mail_root: config.as_ref().map(|c| c.mail_root.clone()),
            config,
        })
    }

    /// The configuration, or an error saying `what` needs one (the DKIM key folder and the host
    /// name are only known from it).
    pub fn require_config(&self, what: &str) -> anyhow::Result<&Config> {
        self.config.as_ref().ok_or_else(|| {
            anyhow!(
                "{what} needs the configuration file (for the DKIM key folder and the host \
                 name): use --config PATH or $MOAT_CONFIG instead of --db alone"
            )
        })
    }

    /// The mail root, or an error saying how to name one (needed by --purge-mail).
    pub fn require_mail_root(&self) -> anyhow::Result<&PathBuf> {
        self.mail_root.as_ref().ok_or_else(|| {
            anyhow!(
                "--purge-mail needs to know where mail is kept: use --config with a \
                 configuration file instead of --db alone"
            )
        })
    }
}
