//! The password files of routes with credentials (`[remote.routes] … auth = { user,
//! password_file }`): opened here at each spawn of moat-remote and handed over as descriptors
//! `route_auth_secret_<i>`, with the `route_auth` setting naming the routes and
//! `route_auth_user_<i>` their users (docs/PROTOCOLS.md "moat-remote").
//!
//! SECURITY: custody stays with the supervisor (root when installed), as for the DKIM keys:
//! moat-remote never opens the file and could not read it (it must be the admin's, with no
//! permission for group or others, or it is refused); the password never travels in a setting,
//! an argument or the environment. Files are opened with O_NOFOLLOW and must be regular files,
//! so a link cannot hand moat-remote some other root-only file. The content is checked here with
//! the same rules moat-remote applies, so a bad file stops `moat serve` (or the reload) with its
//! name, and never its content, in the message.

use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use moat_common::config::Config;
use moat_smtp::remote::auth::{self, secret};

/// One route's credentials, the password file open.
pub struct SecretFile {
    /// The route's domain (`*` for the smarthost).
    pub route: String,
    pub user: String,
    /// `route_auth_user_<i>`.
    pub user_setting: String,
    /// `route_auth_secret_<i>`.
    pub fd_name: String,
    pub file: File,
}

/// Opens the password file of every route with credentials, in route order.
pub fn open_secrets(config: &Config) -> anyhow::Result<Vec<SecretFile>> {
    config
        .remote
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| (r, a)))
        .enumerate()
        .map(|(i, (route, a))| {
            let file = open_secret(&a.password_file).with_context(|| {
                format!(
                    "remote.routes.{:?}: the password file {}",
                    route.domain,
                    a.password_file.display()
                )
            })?;
            Ok(SecretFile {
                route: route.domain.clone(),
                user: a.user.clone(),
                user_setting: auth::user_setting(i),
                fd_name: auth::fd_name(i),
                file,
            })
        })
        .collect()
}

fn open_secret(path: &Path) -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(path)
        .context("cannot be opened (it must be a regular file, not a link)")?;
    let meta = file.metadata().context("cannot be examined")?;
    if !meta.is_file() {
        bail!("is not a regular file");
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "is readable or writable by others (mode {mode:04o}): `chmod 600 {}`",
            path.display()
        );
    }
    secret::read(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(file)
}

/// The `route_auth` setting: the routes' domains, in descriptor order.
pub fn setting(files: &[SecretFile]) -> String {
    let routes: Vec<&str> = files.iter().map(|f| f.route.as_str()).collect();
    routes.join(",")
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, file: &str) -> Config {
        Config::parse(
            &format!(
                "[store]\nurl = \"sqlite:a\"\n[remote.routes]\n\"a.example\" = \"mx.a.example\"\n\
                 \"*\" = {{ host = \"smart.example\", port = 587, tls = \"encrypt\", \
                 auth = {{ user = \"relay@example\", password_file = \"{file}\" }} }}\n"
            ),
            &dir.join("moat.toml"),
        )
        .expect("config")
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn opens_the_routes_password_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write(&tmp.path().join("relay.secret"), "s3cret\n", 0o600);
        let files = open_secrets(&config(tmp.path(), "relay.secret")).expect("opens");
        assert_eq!(files.len(), 1);
        assert_eq!(setting(&files), "*");
        assert_eq!(
            (files[0].user.as_str(), files[0].user_setting.as_str()),
            ("relay@example", "route_auth_user_0")
        );
        assert_eq!(files[0].fd_name, "route_auth_secret_0");
    }

    #[test]
    fn refuses_loose_modes_links_and_bad_content_without_quoting_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        write(&dir.join("open.secret"), "s3cret\n", 0o644);
        write(&dir.join("two.secret"), "s3cret\nmore\n", 0o600);
        write(&dir.join("real.secret"), "s3cret\n", 0o600);
        std::os::unix::fs::symlink(dir.join("real.secret"), dir.join("link.secret"))
            .expect("symlink");
        for (file, needle) in [
            ("open.secret", "chmod 600"),
            ("two.secret", "more than one line"),
            ("link.secret", "not a link"),
            ("missing.secret", "cannot be opened"),
        ] {
            let err = match open_secrets(&config(dir, file)) {
                Ok(_) => panic!("{file} accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(err.contains(needle), "{err}");
            assert!(err.contains("remote.routes.\"*\""), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
