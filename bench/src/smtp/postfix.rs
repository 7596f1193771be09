//! A private Postfix instance for the comparison: Debian's postfix package (installed here when
//! missing), its own configuration, queue and data directories under the benchmark's temporary
//! folder, smtpd on a free loopback port, virtual(8) delivery into Maildir for the bench domain,
//! Postfix's default durability (cleanup fsyncs the queue file before the 250; virtual fsyncs the
//! Maildir file before the link into new/). The system's /etc/postfix is only read, never changed;
//! nothing is routed off the machine: every non-local transport is `error:`, or, for the relay
//! benchmark, `relayhost` is the loopback sink.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::guard::{self, Emergency, Registration};
use super::{DOMAIN, Options, Server, USERS, free_port, wait_for_port};

/// Debian's Postfix programs (root's PATH may lack /usr/sbin).
pub const POSTFIX: &str = "/usr/sbin/postfix";
const POSTCONF: &str = "/usr/sbin/postconf";
const POSTMAP: &str = "/usr/sbin/postmap";

/// The packaged defaults this instance starts from (pristine copies first, then the installed
/// files, which an admin may have edited).
const MAIN_CF_SOURCES: &[&str] = &["/usr/share/postfix/main.cf.debian"];
const MASTER_CF_SOURCES: &[&str] = &[
    "/usr/share/postfix/master.cf.dist",
    "/etc/postfix/master.cf",
];

pub struct Postfix {
    dir: PathBuf,
    config_dir: PathBuf,
    queue_dir: PathBuf,
    port: u16,
    running: bool,
    _registration: Option<Registration>,
}

impl Postfix {
    /// Sets up and starts a private instance in `dir` (created, must not exist yet).
    pub fn start(dir: &Path, options: &Options<'_>) -> Result<Postfix> {
        let sessions = options.sessions;
        ensure_installed()?;
        if !rustix::process::geteuid().is_root() {
            bail!(
                "starting a private Postfix needs root (postfix start); run as root or use --only moat"
            );
        }
        let config_dir = dir.join("etc");
        let queue_dir = dir.join("queue");
        let data_dir = dir.join("data");
        let vmail = dir.join("vmail");
        for d in [dir, &config_dir, &queue_dir, &data_dir, &vmail] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        let postfix_user = account("postfix").context("the postfix user does not exist")?;
        std::os::unix::fs::chown(&data_dir, Some(postfix_user.0), Some(postfix_user.1))?;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))?;
        // virtual(8) writes the Maildirs as this (unprivileged) user.
        let (vuid, vgid) = account("nobody").unwrap_or((65534, 65534));
        std::os::unix::fs::chown(&vmail, Some(vuid), Some(vgid))?;

        let main_cf = config_dir.join("main.cf");
        let base = MAIN_CF_SOURCES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        std::fs::write(&main_cf, base)?;
        let port = free_port()?;
        let master = MASTER_CF_SOURCES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .context(
                "no master.cf to start from (looked in /usr/share/postfix and /etc/postfix)",
            )?;
        std::fs::write(
            config_dir.join("master.cf"),
            private_master_cf(&master, port),
        )?;

        let mut settings: Vec<String> = vec![
            format!("queue_directory = {}", queue_dir.display()),
            format!("data_directory = {}", data_dir.display()),
            "myhostname = postfix.bench.test".into(),
            format!("mydomain = {DOMAIN}"),
            "myorigin = $myhostname".into(),
            // The bench domain is a virtual mailbox domain, so it must not be in mydestination.
            "mydestination =".into(),
            "inet_interfaces = 127.0.0.1".into(),
            "inet_protocols = ipv4".into(),
            "mynetworks = 127.0.0.0/8".into(),
            // No DNS.
            "smtp_host_lookup = native".into(),
            "lmtp_host_lookup = native".into(),
            "smtp_dns_support_level = disabled".into(),
            "smtpd_peername_lookup = no".into(),
            "smtpd_client_restrictions =".into(),
            // The relay goes to the sink in plaintext, as Moat's route does.
            "smtp_tls_security_level = none".into(),
            "alias_maps =".into(),
            "alias_database =".into(),
            format!("maillog_file = {}", dir.join("maillog").display()),
            format!("maillog_file_prefixes = {}", dir.display()),
            // Delivery: virtual(8) into Maildir (a trailing / in the map means Maildir).
            format!("virtual_mailbox_domains = {DOMAIN}"),
            format!("virtual_mailbox_base = {}", vmail.display()),
            format!(
                "virtual_mailbox_maps = hash:{}",
                config_dir.join("vmailbox").display()
            ),
            format!("virtual_uid_maps = static:{vuid}"),
            format!("virtual_gid_maps = static:{vgid}"),
        ];
        match options.relay_to {
            // Everything not in the bench domain goes to the sink (square brackets: no MX lookup).
            Some(sink) => settings.push(format!("relayhost = [127.0.0.1]:{sink}")),
            // Nothing leaves the machine: no relay host, every non-local transport fails.
            None => settings.extend([
                "relayhost =".into(),
                "default_transport = error:moat-bench delivers nothing off loopback".into(),
                "relay_transport = error:moat-bench delivers nothing off loopback".into(),
            ]),
        }
        match options.tls {
            Some(cert) => {
                let (cert_file, key_file) =
                    (config_dir.join("cert.pem"), config_dir.join("key.pem"));
                cert.write(&cert_file, &key_file)?;
                settings.extend([
                    "smtpd_tls_security_level = may".into(),
                    format!("smtpd_tls_cert_file = {}", cert_file.display()),
                    format!("smtpd_tls_key_file = {}", key_file.display()),
                ]);
            }
            // Plain SMTP like the Moat side's MX; no snakeoil certificate needed.
            None => settings.push("smtpd_tls_security_level = none".into()),
        }
        // Postfix's defaults admit 50 connections per client and 100 processes per service; only
        // raise them when the load would not fit (Moat gets the same room).
        if sessions > 50 {
            settings.push(format!(
                "smtpd_client_connection_count_limit = {}",
                sessions * 2
            ));
            settings.push(format!("default_process_limit = {}", sessions * 2));
        }
        let mut postconf = Command::new(POSTCONF);
        postconf
            .arg("-c")
            .arg(&config_dir)
            .arg("-e")
            .args(&settings);
        run(&mut postconf, "postconf -e")?;

        let mut map = String::new();
        for user in USERS {
            let _ = writeln!(map, "{user}@{DOMAIN} {DOMAIN}/{user}/Maildir/");
        }
        std::fs::write(config_dir.join("vmailbox"), map)?;
        run(
            Command::new(POSTMAP)
                .arg("-c")
                .arg(&config_dir)
                .arg(format!("hash:{}", config_dir.join("vmailbox").display())),
            "postmap",
        )?;

        let mut instance = Postfix {
            dir: dir.to_path_buf(),
            config_dir: config_dir.clone(),
            queue_dir: queue_dir.clone(),
            port,
            running: true,
            _registration: Some(guard::register(Emergency::Postfix {
                config_dir: config_dir.clone(),
                queue_dir: queue_dir.clone(),
            })),
        };
        let started = run(
            Command::new(POSTFIX)
                .arg("-c")
                .arg(&config_dir)
                .arg("start"),
            "postfix start",
        );
        if let Err(e) = started {
            let log = instance.log_tail();
            return Err(e.context(format!("Postfix did not start; its log:\n{log}")));
        }
        if let Err(e) = wait_for_port(port, Duration::from_secs(30)) {
            let log = instance.log_tail();
            instance.stop_now();
            return Err(e.context(format!("Postfix's smtpd did not listen; its log:\n{log}")));
        }
        Ok(instance)
    }

    fn stop_now(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // `postfix stop` signals the master and returns; give it time, then kill what is left.
        guard::kill_postfix_leftovers(&self.config_dir, &self.queue_dir, Duration::from_secs(15));
    }
}

impl Server for Postfix {
    fn name(&self) -> &'static str {
        "postfix"
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn relay_port(&self) -> u16 {
        self.port
    }

    fn relay_needs_login(&self) -> bool {
        false
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.dir
            .join("vmail")
            .join(DOMAIN)
            .join(user)
            .join("Maildir")
    }

    fn log_tail(&self) -> String {
        super::tail(&self.dir.join("maillog"), 40)
    }

    fn root_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.queue_dir.join("pid/master.pid")).ok()?;
        pid.trim().parse().ok()
    }

    fn stop(&mut self) -> Result<()> {
        self.stop_now();
        let left = guard::postfix_processes(&self.config_dir, &self.queue_dir);
        if !left.is_empty() {
            bail!("Postfix processes still running after stop: {left:?}");
        }
        Ok(())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Debian's master.cf turned private: the public `inet` services (smtp on port 25 and any other
/// enabled one) are replaced by one smtpd on 127.0.0.1:`port`, and no service is chrooted (a
/// chroot would need copies of /etc files inside the private queue directory).
pub fn private_master_cf(master: &str, port: u16) -> String {
    let mut out = String::from("# moat-bench: a private copy of Debian's master.cf\n");
    let mut skipping = false;
    for line in master.lines() {
        let trimmed = line.trim_start();
        if line.starts_with(char::is_whitespace) && !trimmed.is_empty() && !trimmed.starts_with('#')
        {
            // A continuation line ("  -o ..." or "  flags=..."): belongs to the entry above.
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            skipping = false;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if fields[1] == "inet" {
            skipping = true;
            continue;
        }
        skipping = false;
        fields[4] = "n";
        out.push_str(&fields.join(" "));
        out.push('\n');
    }
    let _ = writeln!(out, "127.0.0.1:{port} inet n - n - - smtpd");
    out
}

/// Installs Debian's postfix when it is missing (as root, non-interactively, "No configuration",
/// so the system gets no running MTA from it). Refuses when another MTA owns /usr/sbin/sendmail:
/// installing postfix would remove it.
fn ensure_installed() -> Result<()> {
    if [POSTFIX, POSTCONF, POSTMAP]
        .iter()
        .all(|p| Path::new(p).exists())
    {
        return Ok(());
    }
    if Path::new("/usr/sbin/sendmail").exists() {
        bail!(
            "postfix is not installed and another MTA provides /usr/sbin/sendmail; installing postfix \
             would replace it, so moat-bench will not. Install postfix yourself, or use --only moat"
        );
    }
    if !rustix::process::geteuid().is_root() {
        bail!("postfix is not installed; run as root (moat-bench installs it) or use --only moat");
    }
    eprintln!(
        "moat-bench: installing Debian's postfix (No configuration; no system MTA is started)"
    );
    let mut preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .context("running debconf-set-selections")?;
    if let Some(mut stdin) = preseed.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(b"postfix postfix/main_mailer_type select No configuration\n")?;
    }
    if !preseed.wait()?.success() {
        bail!("debconf-set-selections failed");
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "postfix"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    if !install()?.success() {
        eprintln!("moat-bench: apt-get install failed; trying apt-get update first");
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status();
        if !install()?.success() {
            bail!("apt-get install postfix failed");
        }
    }
    Ok(())
}

/// uid and gid of a local account, from /etc/passwd.
fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

fn run(command: &mut Command, what: &str) -> Result<Output> {
    let started = Instant::now();
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}) after {:.1} s: {}{}",
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_cf_loses_public_services_and_chroot() {
        let master = "# comment\n\
            smtp      inet  n       -       y       -       -       smtpd\n\
            \x20 -o smtpd_sasl_auth_enable=yes\n\
            submission inet n       -       y       -       -       smtpd\n\
            pickup    unix  n       -       y       60      1       pickup\n\
            relay     unix  -       -       y       -       -       smtp\n\
            \x20       -o syslog_name=postfix/$service_name\n\
            postlog   unix-dgram n  -       n       -       1       postlogd\n";
        let out = private_master_cf(master, 42525);
        assert!(!out.contains("inet  n"), "{out}");
        assert!(!out.contains("smtpd_sasl_auth_enable"), "{out}");
        assert!(out.contains("pickup unix n - n 60 1 pickup\n"), "{out}");
        assert!(out.contains("relay unix - - n - - smtp\n"), "{out}");
        assert!(
            out.contains("-o syslog_name=postfix/$service_name"),
            "{out}"
        );
        assert!(
            out.contains("postlog unix-dgram n - n - 1 postlogd\n"),
            "{out}"
        );
        assert!(
            out.ends_with("127.0.0.1:42525 inet n - n - - smtpd\n"),
            "{out}"
        );
    }
}
