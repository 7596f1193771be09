//! `moat dkim generate` and `moat domain dns`: a domain's DKIM keys and the DNS records that
//! make its mail pass SPF, DKIM and DMARC.
//!
//! Keys: `<dkim folder>/<domain>/<selector>.rsa.pem` (RSA 2048, PKCS#8) and
//! `<selector>.ed25519.pem` (Ed25519, PKCS#8), folders 0700, files 0600, written to a temporary
//! file, fsynced, then linked into place (so an existing key is never half overwritten, and
//! without --force never overwritten at all). Selectors `<prefix>-rsa-<YYYYMM>` and
//! `<prefix>-ed-<YYYYMM>`: a new month gives new selectors, so a rotation never reuses a
//! published name. Each key is read back with moat-remote's own parser before the command
//! reports success.
//!
//! SECURITY: private keys are written only by this command (run by the admin, root when
//! installed) and read only by the supervisor, which hands them to moat-remote as descriptors.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use mail_auth::common::crypto::Ed25519Key;
use moat_smtp::remote::dkim::keys::{self, Algorithm, KeyName};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::pkcs8::LineEnding;

use crate::cli::DkimCmd;
use crate::context::Context;
use crate::serve::dkim::domain_keys;
use crate::zone;

pub async fn run(ctx: &Context, cmd: DkimCmd) -> anyhow::Result<()> {
    match cmd {
        DkimCmd::Generate {
            domain,
            selector,
            force,
        } => generate(ctx, &domain, &selector, force).await,
    }
}

async fn generate(ctx: &Context, domain: &str, prefix: &str, force: bool) -> anyhow::Result<()> {
    let config = ctx.require_config("moat dkim generate")?;
    // The store's spelling (A-label), and a clear error for a domain we do not host.
    let domain = ctx.store.get_domain(domain).await?.name;
    let month = yyyymm();
    let names = [
        (Algorithm::Rsa, format!("{prefix}-rsa-{month}")),
        (Algorithm::Ed25519, format!("{prefix}-ed-{month}")),
    ]
    .map(|(algorithm, selector)| KeyName {
        domain: domain.clone(),
        selector,
        algorithm,
    });
    if names.iter().any(|n| !keys::valid_selector(&n.selector)) {
        bail!(
            "--selector {prefix:?} cannot start a DKIM selector: use lower-case letters, digits \
             and '-' (for example --selector mail)"
        );
    }
    let folder = config.dkim_dir.join(&domain);
    let existing = domain_keys(&folder, &domain)?;
    if !existing.is_empty() && !force {
        let files: Vec<String> = existing.iter().map(KeyName::file_name).collect();
        bail!(
            "{domain} already has DKIM keys ({} in {}), and moat-remote signs with every one; \
             to rotate, add new ones beside them with `moat dkim generate {domain} --force \
             --selector NEW-PREFIX`, publish their records, then delete the old files and reload \
             the supervisor (SIGHUP); --force with this month's selectors replaces those keys",
            files.join(", "),
            folder.display()
        );
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let mut records = Vec::new();
    for name in &names {
        let pem = match name.algorithm {
            Algorithm::Rsa => rsa_pem()?,
            Algorithm::Ed25519 => ed25519_pem()?,
        };
        let path = folder.join(name.file_name());
        let replaced = path.exists();
        write_key(&path, &pem, force)?;
        records.push((name.clone(), read_record(&path, name)?));
        if replaced {
            println!(
                "replaced {} (mode 0600): its published record no longer matches, update it",
                path.display()
            );
        } else {
            println!("wrote {} (mode 0600)", path.display());
        }
    }
    println!(
        "\nPublish these records in the {domain} zone (`moat domain dns {domain}` prints all the \
         records the domain needs):\n"
    );
    for (name, record) in &records {
        println!(
            "{}",
            zone::line(&name.record_name(), "TXT", &zone::txt(record))
        );
    }
    println!(
        "\nThen reload the supervisor (kill -HUP the `moat serve` or `moat up` process) so \
         moat-remote signs with the new keys."
    );
    Ok(())
}

/// `moat domain dns DOMAIN`: MX, SPF, every DKIM key, DMARC.
pub async fn print_dns(ctx: &Context, domain: &str) -> anyhow::Result<()> {
    let config = ctx.require_config("moat domain dns")?;
    let domain = ctx.store.get_domain(domain).await?.name;
    let folder = config.dkim_dir.join(&domain);
    let keys = domain_keys(&folder, &domain)?;
    println!("; DNS records for {domain} (zone-file form)");
    println!(
        "{}",
        zone::line(&domain, "MX", &format!("10 {}.", config.hostname))
    );
    println!(
        "{}",
        zone::line(&domain, "TXT", &zone::txt("v=spf1 mx -all"))
    );
    if keys.is_empty() {
        println!("; no DKIM keys yet: `moat dkim generate {domain}` makes them");
    }
    for name in &keys {
        let record = read_record(&folder.join(name.file_name()), name)?;
        println!(
            "{}",
            zone::line(&name.record_name(), "TXT", &zone::txt(&record))
        );
    }
    let dmarc = format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}");
    println!(
        "{}",
        zone::line(&format!("_dmarc.{domain}"), "TXT", &zone::txt(&dmarc))
    );
    Ok(())
}

/// This month as `YYYYMM` (UTC).
fn yyyymm() -> String {
    let iso = moat_common::date::iso_utc(moat_common::date::now());
    format!("{}{}", &iso[..4], &iso[5..7])
}

fn rsa_pem() -> anyhow::Result<String> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .context("cannot generate an RSA key")?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("cannot encode the RSA key")?;
    Ok(pem.as_str().to_string())
}

fn ed25519_pem() -> anyhow::Result<String> {
    let der = Ed25519Key::generate_pkcs8()
        .map_err(|e| anyhow::anyhow!("cannot generate an Ed25519 key: {e}"))?;
    rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
        .map_err(|e| anyhow::anyhow!("cannot encode the Ed25519 key: {e}"))
}

/// Writes `pem` to `path` (0600): a temporary file, fsynced, then renamed over (`replace`) or
/// linked (fails if `path` exists), then the folder fsynced.
fn write_key(path: &Path, pem: &str, replace: bool) -> anyhow::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = folder.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let placed = if replace {
        std::fs::rename(&tmp, path)
    } else {
        std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "{} already exists: not overwritten (--force replaces it)",
                path.display()
            );
        }
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", folder.display()))
}

/// Reads a key file with moat-remote's parser and returns its TXT record.
fn read_record(path: &Path, name: &KeyName) -> anyhow::Result<String> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(keys::MAX_KEY_FILE).read_to_end(&mut pem))
        .with_context(|| {
            format!(
                "cannot read the DKIM key {} (run as the user who made it: root on an \
                 installed server)",
                path.display()
            )
        })?;
    let key = keys::parse_key(&pem, name.algorithm).map_err(|e| {
        anyhow::anyhow!(
            "the DKIM key {} is {e}: replace it (moat dkim generate {} --force)",
            path.display(),
            name.domain
        )
    })?;
    Ok(keys::dns_record(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_are_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for (algorithm, pem) in [
            (Algorithm::Rsa, rsa_pem().expect("rsa")),
            (Algorithm::Ed25519, ed25519_pem().expect("ed25519")),
        ] {
            let name = KeyName {
                domain: "example.org".into(),
                selector: "s".into(),
                algorithm,
            };
            let path = tmp.path().join(name.file_name());
            write_key(&path, &pem, false).expect("write");
            let record = read_record(&path, &name).expect("parses");
            assert!(
                record.starts_with(&format!("v=DKIM1; k={}; p=", algorithm.name())),
                "{record}"
            );
            let mode = std::fs::metadata(&path).expect("stat").permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o600
            );
            let again = write_key(&path, &pem, false).expect_err("no overwrite");
            assert!(again.to_string().contains("--force"), "{again}");
            write_key(&path, &pem, true).expect("replace");
        }
        assert_eq!(yyyymm().len(), 6);
    }
}
