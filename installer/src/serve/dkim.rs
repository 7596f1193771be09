//! The DKIM keys moat-remote signs with: every `<dkim_dir>/<domain>/<selector>.<alg>.pem`,
//! opened here at each spawn of moat-remote and handed over as descriptors `dkim_key_<i>`, with
//! the `dkim_keys` setting saying which is which (docs/PROTOCOLS.md "moat-remote").
//!
//! SECURITY: key custody stays with the supervisor (root when installed): moat-remote, which
//! talks to other servers, never opens a file and could not read the key folder if it tried
//! (0700, the admin's). Files are opened with O_NOFOLLOW and must be regular files, so a link
//! planted in the folder cannot hand moat-remote some other root-only file. The keys are not
//! parsed here (moat-remote does, and refuses to start on a bad one).

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use moat_common::config::Config;
use moat_common::warn;
use moat_smtp::remote::dkim::keys::{self, KeyName};

/// One key file, open.
pub struct KeyFile {
    pub name: KeyName,
    /// `dkim_key_<i>`.
    pub fd_name: String,
    pub file: File,
}

/// The key files under `dir`, sorted by domain and selector. Names that are not key files are
/// skipped with a warning; a key that cannot be opened is an error.
pub fn key_names(dir: &Path) -> anyhow::Result<Vec<KeyName>> {
    let mut names = Vec::new();
    let domains = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in domains {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let domain = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || !keys::valid_domain(&domain) {
            warn!(
                "DKIM: skipping {} (not a domain folder)",
                entry.path().display()
            );
            continue;
        }
        names.extend(domain_keys(&entry.path(), &domain)?);
    }
    names.sort();
    Ok(names)
}

/// The keys in one domain's folder (`<dkim_dir>/<domain>`), sorted; none if it does not exist.
pub fn domain_keys(folder: &Path, domain: &str) -> anyhow::Result<Vec<KeyName>> {
    let mut names = Vec::new();
    let files = match std::fs::read_dir(folder) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", folder.display())),
    };
    for file in files {
        let file = file.with_context(|| format!("cannot list {}", folder.display()))?;
        let file_name = file.file_name().to_string_lossy().into_owned();
        match KeyName::from_file_name(domain, &file_name) {
            Some(name) => names.push(name),
            None => warn!(
                "DKIM: skipping {} (key files are <selector>.rsa.pem or <selector>.ed25519.pem)",
                file.path().display()
            ),
        }
    }
    names.sort();
    // One selector is one DNS record: two keys under it could not both verify.
    if let Some(pair) = names.windows(2).find(|w| w[0].selector == w[1].selector) {
        bail!(
            "{} and {} in {} share the selector {}: give each key its own selector \
             (rename or remove one)",
            pair[0].file_name(),
            pair[1].file_name(),
            folder.display(),
            pair[0].selector
        );
    }
    Ok(names)
}

/// Opens every key for moat-remote.
pub fn open_keys(config: &Config) -> anyhow::Result<Vec<KeyFile>> {
    let names = key_names(&config.dkim_dir)?;
    if names.len() > keys::MAX_KEYS {
        bail!(
            "{} holds {} DKIM keys; moat-remote takes at most {} (remove old selectors)",
            config.dkim_dir.display(),
            names.len(),
            keys::MAX_KEYS
        );
    }
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let path = config.dkim_dir.join(&name.domain).join(name.file_name());
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nofollow())
                .open(&path)
                .with_context(|| format!("cannot open the DKIM key {}", path.display()))?;
            let meta = file
                .metadata()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if !meta.is_file() {
                bail!("the DKIM key {} is not a regular file", path.display());
            }
            Ok(KeyFile {
                name,
                fd_name: keys::fd_name(i),
                file,
            })
        })
        .collect()
}

/// The `dkim_keys` setting for these files, in descriptor order.
pub fn setting(files: &[KeyFile]) -> String {
    let entries: Vec<String> = files.iter().map(|f| f.name.encode()).collect();
    entries.join(",")
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn finds_key_files_and_skips_the_rest() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        assert!(key_names(&dir.join("missing")).expect("ok").is_empty());
        for p in [
            "b.example/s1.rsa.pem",
            "b.example/s2.ed25519.pem",
            "a.example/old.rsa.pem",
            "a.example/README",
            "Bad_Domain/s.rsa.pem",
        ] {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "key").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let found: Vec<String> = key_names(dir)
            .expect("ok")
            .iter()
            .map(KeyName::encode)
            .collect();
        assert_eq!(
            found,
            [
                "a.example/old/rsa",
                "b.example/s1/rsa",
                "b.example/s2/ed25519"
            ]
        );
        std::fs::write(dir.join("b.example/s1.ed25519.pem"), "key").expect("write");
        let err = key_names(dir).expect_err("shared selector").to_string();
        assert!(err.contains("share the selector s1"), "{err}");
    }
}
