//! The servers of the POP3 and IMAP benchmarks: a Moat stack (`moat up` in a temporary folder on
//! free loopback ports) and a private Dovecot (`dovecot -F -c FILE`, loopback high port, passwd-file
//! auth with the same argon2id hash Moat stores, its own base/state/log folders), each over its
//! own copy of the same Maildir. With TLS, Dovecot also serves implicit TLS (`pop3s`/`imaps`,
//! `ssl = required`) with the certificate `moat up` made, so both present the same one. Both are
//! stopped by pid (also on Ctrl-C, through the smtp benchmark's guard); nothing system-wide is
//! touched.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::smtp::guard::{self, Emergency, Registration};

pub const DOMAIN: &str = "bench.test";
pub const PASSWORD: &str = "bench-password-1";

/// The mail-access protocol a Dovecot is started for, and how its greeting starts.
#[derive(Clone, Copy)]
pub enum Protocol {
    Pop3,
    Imap,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
        }
    }

    fn greeting(self) -> &'static str {
        match self {
            Protocol::Pop3 => "+OK",
            Protocol::Imap => "* OK",
        }
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port")?
        .port())
}

/// True when a server on `port` greets with a line starting with `greeting`.
fn greets(port: u16, greeting: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(greeting)
}

/// A running server (the root of its process tree); stopped on drop, children included.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    _registration: Registration,
}

impl Server {
    fn new(name: &'static str, port: u16, child: Child) -> Server {
        let registration = guard::register(Emergency::Tree { pid: child.id() });
        Server {
            name,
            port,
            child,
            _registration: registration,
        }
    }

    /// The root process: its tree is the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `port` greets for `protocol`; fails with `log` when the server exits first.
    fn wait_for(&mut self, protocol: Protocol, port: u16, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if greets(port, protocol.greeting()) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "the server exited ({status}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("no {} greeting on port {port} after 60 s", protocol.name());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM, then SIGKILL for the root and whatever children outlive it.
        guard::stop(&Emergency::Tree {
            pid: self.child.id(),
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Moat {
    /// The stack, `port` being its POP3 port.
    pub server: Server,
    /// Its implicit-TLS POP3 port (`[listen] pop3s`).
    pub pop3s_port: u16,
    pub imap_port: u16,
    pub data: PathBuf,
    config: PathBuf,
    bin_dir: PathBuf,
}

impl Moat {
    /// Starts `moat up` on free loopback ports (POP3 and IMAP included: the defaults would be
    /// 143/993 on every address); `extra` is appended to moat.toml (e.g. a `[limits]` section).
    pub fn start(dir: &Path, bin_dir: &Path, extra: &str) -> Result<Moat> {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let data = dir.join("moat-data");
        std::fs::create_dir_all(data.join("db"))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
        let ports: Vec<u16> = (0..7).map(|_| free_port()).collect::<Result<_>>()?;
        let config = data.join("moat.toml");
        std::fs::write(
            &config,
            format!(
                "# moat-bench\nhostname = \"mx.{DOMAIN}\"\n\
                 [store]\nurl = \"sqlite:db/users.db\"\n\
                 [paths]\nmail = \"mail\"\nqueue = \"queue\"\nrun = \"run\"\n\
                 [listen]\nsmtp = [\"127.0.0.1:{}\"]\nsubmission = [\"127.0.0.1:{}\"]\n\
                 submissions = [\"127.0.0.1:{}\"]\npop3 = [\"127.0.0.1:{}\"]\npop3s = [\"127.0.0.1:{}\"]\n\
                 imap = [\"127.0.0.1:{}\"]\nimaps = [\"127.0.0.1:{}\"]\n{extra}",
                ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
            ),
        )?;
        let log = dir.join("moat.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(bin_dir.join("moat"))
            .args(["up", "--no-demo", "--dir"])
            .arg(&data)
            .env_remove("MOAT_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot run {}", bin_dir.join("moat").display()))?;
        let mut server = Server::new("moat", ports[3], child);
        server.wait_for(Protocol::Pop3, ports[3], &log)?;
        server.wait_for(Protocol::Imap, ports[5], &log)?;
        Ok(Moat {
            server,
            pop3s_port: ports[4],
            imap_port: ports[5],
            data,
            config,
            bin_dir: bin_dir.to_path_buf(),
        })
    }

    pub fn admin(&self, args: &[&str], stdin: &str) -> Result<()> {
        let mut child = Command::new(self.bin_dir.join("moat"))
            .args(args)
            .env("MOAT_CONFIG", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("moat {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The self-signed certificate and key (PEM) `moat up` made for the host name and localhost
    /// (the configuration's `[tls]` defaults, relative to the data folder).
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.data.join("tls/cert.pem"),
            key: self.data.join("tls/key.pem"),
        }
    }

    pub fn maildir(&self, local: &str) -> PathBuf {
        self.data
            .join("mail")
            .join(DOMAIN)
            .join(local)
            .join("Maildir")
    }

    /// The argon2id PHC string the store holds for `local` (read with Python's sqlite3).
    pub fn password_hash(&self, local: &str) -> Result<String> {
        let out = Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select password_hash from users where local_part=?', (sys.argv[2],)).fetchone()[0])")
            .arg(self.data.join("db/users.db"))
            .arg(local)
            .output()
            .context("python3 (to read the store's hash)")?;
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || !hash.starts_with("$argon2id$") {
            bail!(
                "cannot read the password hash: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(hash)
    }
}

/// A certificate and its key, PEM files.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A private Dovecot 2.3 serving `mail` (`<mail>/<domain>/<local>/Maildir`) over `protocol`;
/// `extra` is appended to its configuration (settings the benchmark needs beyond the defaults).
pub fn dovecot(
    dir: &Path,
    mail: &Path,
    users: &[&str],
    hash: &str,
    protocol: Protocol,
    extra: &str,
) -> Result<Server> {
    start_dovecot(dir, mail, users, hash, protocol, extra, None).map(|(server, _)| server)
}

/// As `dovecot`, also listening for implicit TLS (`pop3s`/`imaps`) with `tls`, and requiring
/// TLS for every login (`ssl = required`); returns the server and its TLS port.
pub fn dovecot_tls(
    dir: &Path,
    mail: &Path,
    users: &[&str],
    hash: &str,
    protocol: Protocol,
    extra: &str,
    tls: &TlsFiles,
) -> Result<(Server, u16)> {
    let (server, port) = start_dovecot(dir, mail, users, hash, protocol, extra, Some(tls))?;
    Ok((server, port.context("no TLS port")?))
}

fn start_dovecot(
    dir: &Path,
    mail: &Path,
    users: &[&str],
    hash: &str,
    protocol: Protocol,
    extra: &str,
    tls: Option<&TlsFiles>,
) -> Result<(Server, Option<u16>)> {
    let p = protocol.name();
    let dovecot = Command::new("dovecot").arg("--version").output();
    if !dovecot.is_ok_and(|o| o.status.success()) {
        bail!("dovecot is not installed: apt-get install -y dovecot-{p}d");
    }
    for d in ["run", "state"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let port = free_port()?;
    // Port 0: no implicit-TLS listener. The plaintext one stays either way (with
    // `ssl = required` it greets but refuses logins): it is where readiness is checked.
    let (ssl, tls_port) = match tls {
        None => ("ssl = no\n".to_string(), None),
        Some(files) => (
            format!(
                "ssl = required\nssl_cert = <{}\nssl_key = <{}\n",
                files.cert.display(),
                files.key.display()
            ),
            Some(free_port()?),
        ),
    };
    let (mail_user, internal, login) = if rustix::process::geteuid().is_root() {
        // Dovecot refuses root as a mail user: the copy belongs to nobody.
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(mail)
            .status()?;
        if !status.success() {
            bail!("chown of the Dovecot copy failed");
        }
        (
            "65534:65534".to_string(),
            "dovecot".to_string(),
            "dovenull".to_string(),
        )
    } else {
        let me = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
        let ids = format!(
            "{}:{}",
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw()
        );
        (ids, me.clone(), me)
    };
    let (uid, gid) = mail_user.split_once(':').unwrap_or(("65534", "65534"));
    let passwd = dir.join("passwd");
    let lines: String = users
        .iter()
        .map(|u| format!("{u}@{DOMAIN}:{{ARGON2ID}}{hash}\n"))
        .collect();
    std::fs::write(&passwd, lines)?;
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644))?;
    let conf = dir.join("dovecot.conf");
    let log = dir.join("dovecot.log");
    std::fs::write(
        &conf,
        format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {log}\n\
             protocols = {p}\nlisten = 127.0.0.1\n{ssl}disable_plaintext_auth = no\n\
             auth_mechanisms = plain\nmail_location = maildir:{mail}/%d/%n/Maildir\n\
             pop3_uidl_format = %08Xu%08Xv\nfirst_valid_uid = 1\n\
             default_internal_user = {internal}\ndefault_login_user = {login}\n\
             passdb {{\n  driver = passwd-file\n  args = username_format=%u {passwd}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid}\n}}\n\
             service {p}-login {{\n  inet_listener {p} {{\n    port = {port}\n  }}\n  \
             inet_listener {p}s {{\n    port = {tls_port}\n  }}\n}}\n{extra}",
            d = dir.display(),
            log = log.display(),
            mail = mail.display(),
            passwd = passwd.display(),
            tls_port = tls_port.unwrap_or(0),
        ),
    )?;
    let child = Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dovecot")?;
    let mut server = Server::new("dovecot", port, child);
    server.wait_for(protocol, port, &log)?;
    Ok((server, tls_port))
}
