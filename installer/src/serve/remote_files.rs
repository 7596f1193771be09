//! The files the supervisor opens for moat-remote at each of its spawns (start, restart after a
//! crash, SIGHUP): the CA file for `verify`, the DKIM keys, the routes' password files. All of
//! them go over as descriptors, so moat-remote opens nothing on disk.

use std::fs::File;

use moat_common::config::Config;

use super::dkim::{self, KeyFile};
use super::route_auth::{self, SecretFile};
use super::specs::open_ca;

/// What moat-remote's setup carries besides its listener; empty for every other program.
#[derive(Default)]
pub struct RemoteFiles {
    pub ca: Option<File>,
    pub dkim: Vec<KeyFile>,
    pub secrets: Vec<SecretFile>,
}

impl RemoteFiles {
    pub fn open(config: &Config) -> anyhow::Result<RemoteFiles> {
        Ok(RemoteFiles {
            ca: open_ca(config)?,
            dkim: dkim::open_keys(config)?,
            secrets: route_auth::open_secrets(config)?,
        })
    }
}
