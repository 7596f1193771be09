//! The configuration file, `moat.toml`, and how a program finds it.
//!
//! Lookup order, first match wins: an explicit path (`--config`), the `MOAT_CONFIG` environment
//! variable, `./moat-data/moat.toml` (the quickstart folder of `moat up`), `/etc/moat/moat.toml`.
//! Relative paths inside the file are taken relative to the folder holding the file, so a
//! quickstart folder can be moved or used from anywhere.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the quickstart keeps everything, relative to the current directory.
pub const QUICKSTART_DIR: &str = "moat-data";
/// The system-wide configuration written by `moat install`.
pub const SYSTEM_CONFIG: &str = "/etc/moat/moat.toml";
/// The environment variable naming a configuration file.
pub const CONFIG_ENV: &str = "MOAT_CONFIG";

/// The parsed configuration, with every path made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub source: PathBuf,
    /// The user store: `sqlite:PATH` or `postgres://...`.
    pub store_url: String,
    /// The root of the Maildirs: `<mail_root>/<domain>/<local>/Maildir`.
    pub mail_root: PathBuf,
    /// The sub-address delimiter (`user+tag`); `None` turns sub-addressing off.
    pub subaddress_delimiter: Option<char>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    store: RawStore,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    addresses: RawAddresses,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    mail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddresses {
    #[serde(default = "default_delimiter")]
    subaddress_delimiter: String,
}

impl Default for RawAddresses {
    fn default() -> Self {
        RawAddresses {
            subaddress_delimiter: default_delimiter(),
        }
    }
}

fn default_delimiter() -> String {
    "+".to_string()
}

impl Config {
    /// Finds the configuration file by the lookup order above; `Ok(None)` when there is none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<Config>, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path).map(Some);
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Config::load(Path::new(&path)).map(Some);
        }
        for candidate in [
            Path::new(QUICKSTART_DIR).join("moat.toml"),
            PathBuf::from(SYSTEM_CONFIG),
        ] {
            if candidate.is_file() {
                return Config::load(&candidate).map(Some);
            }
        }
        Ok(None)
    }

    /// Reads and checks one configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let absolute = std::path::absolute(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &absolute)
    }

    /// Parses configuration text as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("/"));
        let store_url = resolve_store_url(&raw.store.url, base).map_err(invalid)?;
        let mail_root = base.join(raw.paths.mail.as_deref().unwrap_or("mail"));
        let mut chars = raw.addresses.subaddress_delimiter.chars();
        let subaddress_delimiter = match (chars.next(), chars.next()) {
            (None, _) => None,
            (Some(c), None) if c.is_ascii_punctuation() && c != '@' && c != '/' => Some(c),
            _ => {
                return Err(invalid(format!(
                    "addresses.subaddress_delimiter must be one punctuation character \
                     such as \"+\" or \"-\", or \"\" to turn sub-addressing off (got {:?})",
                    raw.addresses.subaddress_delimiter
                )));
            }
        };
        Ok(Config {
            source: path.to_path_buf(),
            store_url,
            mail_root,
            subaddress_delimiter,
        })
    }
}

/// Makes a relative SQLite path absolute against the configuration's folder; other URLs pass.
fn resolve_store_url(url: &str, base: &Path) -> Result<String, String> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "store.url must start with sqlite: or postgres:// (got {url:?})"
        ));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.is_empty() {
        return Err("store.url names no SQLite file".to_string());
    }
    let path = Path::new(rest);
    if path.is_absolute() {
        Ok(format!("sqlite:{rest}"))
    } else {
        Ok(format!("sqlite:{}", base.join(path).display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:users.db\"\n",
            Path::new("/srv/moat-data/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.store_url, "sqlite:/srv/moat-data/users.db");
        assert_eq!(c.mail_root, Path::new("/srv/moat-data/mail"));
        assert_eq!(c.subaddress_delimiter, Some('+'));
    }

    #[test]
    fn postgres_url_and_delimiter() {
        let c = Config::parse(
            "[store]\nurl = \"postgres://u@db/moat\"\n[paths]\nmail = \"/var/mail/moat\"\n\
             [addresses]\nsubaddress_delimiter = \"-\"\n",
            Path::new("/etc/moat/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.store_url, "postgres://u@db/moat");
        assert_eq!(c.mail_root, Path::new("/var/mail/moat"));
        assert_eq!(c.subaddress_delimiter, Some('-'));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let p = Path::new("/x/moat.toml");
        for (text, needle) in [
            ("", "missing field `store`"),
            ("[store]\nurl = \"mysql://x\"\n", "must start with sqlite:"),
            ("[store]\nurl = \"sqlite:a\"\nbogus = 1\n", "unknown field"),
            (
                "[store]\nurl = \"sqlite:a\"\n[addresses]\nsubaddress_delimiter = \"ab\"\n",
                "one punctuation character",
            ),
        ] {
            let err = Config::parse(text, p).expect_err(text).to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(err.contains("/x/moat.toml"), "{err:?} should name the file");
        }
    }

    #[test]
    fn empty_delimiter_turns_subaddressing_off() {
        let c = Config::parse(
            "[store]\nurl = \"sqlite:/a.db\"\n[addresses]\nsubaddress_delimiter = \"\"\n",
            Path::new("/x/moat.toml"),
        )
        .expect("valid");
        assert_eq!(c.subaddress_delimiter, None);
    }
}
