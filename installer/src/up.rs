//! `moat up`: the quickstart. Everything lives in one folder (`./moat-data` by default): the
//! configuration, the SQLite store, a self-signed certificate, the queue and the Maildirs; the
//! SMTP and POP3 services listen on high ports, IMAP on 1143/1993 (143/993 as root). On first
//! run it adds the demo domain `example.test` with `postmaster@example.test` and prints that
//! password once. Then it runs the same supervisor as `moat serve`: as root each program gets
//! its own system user (created if missing), as anyone else they all run as that user.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use moat_common::config::{Config, system_hostname};
use moat_vdomain::{Address, Store};
use rand::Rng as _;

use crate::serve;
use crate::system_users;

pub struct UpOptions {
    pub dir: PathBuf,
    pub no_demo: bool,
    pub listen_ip: String,
}

pub async fn up(opts: UpOptions) -> anyhow::Result<()> {
    let dir = std::path::absolute(&opts.dir)?;
    let config_path = dir.join("moat.toml");
    if !config_path.exists() {
        create_folder(&dir, &opts.listen_ip)?;
        println!("created {}", dir.display());
    }
    let config = Config::load(&config_path)?;
    if !config.tls_cert.exists() || !config.tls_key.exists() {
        make_certificate(&config)?;
    }
    if moat_common::privilege::is_root() {
        system_users::ensure(&config.users)?;
    }
    if !opts.no_demo {
        demo(&config).await?;
    }
    println!(
        "Moat is starting: SMTP {}, submission {} (STARTTLS), {} (TLS), POP3 {} (STLS), {} (TLS), \
         IMAP {} (STARTTLS), {} (TLS). Stop with Ctrl-C.",
        config.listen.smtp.join(" "),
        config.listen.submission.join(" "),
        config.listen.submissions.join(" "),
        config.listen.pop3.join(" "),
        config.listen.pop3s.join(" "),
        config.listen.imap.join(" "),
        config.listen.imaps.join(" ")
    );
    if let (Some(listen), Some(url)) = (&config.lists.web_listen, &config.lists.web_url) {
        println!("List one-click unsubscribe: {url} (HTTPS on {listen}).");
    }
    println!(
        "Manage it from {} with e.g.: moat user add alice@example.test",
        dir.parent().unwrap_or(Path::new("/")).display()
    );
    serve::serve(&config).await
}

fn create_folder(dir: &Path, ip: &str) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("db"))?;
    let hostname = system_hostname();
    // IMAP on its own ports when root may bind them (mail clients assume 143/993), else high.
    let (imap, imaps) = if moat_common::privilege::is_root() {
        (143, 993)
    } else {
        (1143, 1993)
    };
    // The certificate names the host and localhost: on loopback, subscribers are on this host.
    let loopback = ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback());
    let web_host = if loopback {
        "localhost"
    } else {
        hostname.as_str()
    };
    let text = format!(
        "# Moat quickstart configuration (made by `moat up`). Paths are relative to this file.\n\
         hostname = \"{hostname}\"\n\n\
         [store]\nurl = \"sqlite:db/users.db\"\n\n\
         [paths]\nmail = \"mail\"\nqueue = \"queue\"\nrun = \"run\"\n\n\
         [listen]\nsmtp = [\"{ip}:2525\"]\nsubmission = [\"{ip}:2587\"]\nsubmissions = [\"{ip}:2465\"]\n\
         pop3 = [\"{ip}:1110\"]\npop3s = [\"{ip}:1995\"]\n\
         imap = [\"{ip}:{imap}\"]\nimaps = [\"{ip}:{imaps}\"]\n\n\
         [tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n\n\
         # RFC 8058 one-click unsubscribe for list mail, served by moat-lists over HTTPS.\n\
         [lists]\nweb_listen = \"{ip}:8443\"\nweb_url = \"https://{web_host}:8443\"\n"
    );
    let path = dir.join("moat.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A self-signed certificate for the host name and localhost; the key readable by its owner only.
fn make_certificate(config: &Config) -> anyhow::Result<()> {
    let names = vec![config.hostname.clone(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)
        .context("cannot make a self-signed certificate")?;
    for path in [&config.tls_cert, &config.tls_key] {
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
    }
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&config.tls_key)
        .with_context(|| format!("cannot write {}", config.tls_key.display()))?;
    key.write_all(certified.signing_key.serialize_pem().as_bytes())?;
    key.sync_all()?;
    std::fs::write(&config.tls_cert, certified.cert.pem())
        .with_context(|| format!("cannot write {}", config.tls_cert.display()))?;
    std::fs::set_permissions(&config.tls_cert, std::fs::Permissions::from_mode(0o644))?;
    println!(
        "made a self-signed certificate in {}",
        config.tls_cert.display()
    );
    Ok(())
}

/// On an empty store: the demo domain and its postmaster, whose password is shown once.
async fn demo(config: &Config) -> anyhow::Result<()> {
    if let Some(db) = config.store_url.strip_prefix("sqlite:")
        && let Some(parent) = Path::new(db).parent()
    {
        std::fs::create_dir_all(parent)?;
    }
    let store = Store::connect(&config.store_url).await?;
    let result = async {
        if !store.list_domains().await?.is_empty() {
            return Ok(());
        }
        store.add_domain("example.test").await?;
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        let postmaster = Address::parse("postmaster@example.test")?;
        store.add_user(&postmaster, &password, None).await?;
        println!("added the demo domain example.test");
        println!("  postmaster@example.test  password: {password}   (shown once; change it with `moat user passwd`)");
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}
