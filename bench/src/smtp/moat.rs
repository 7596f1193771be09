//! A Moat stack for the benchmark, started the way an admin would: a moat-data folder with a
//! `moat.toml` on free loopback ports, `moat up --no-demo --dir DIR` (as root each program runs
//! under its own system user), the bench domain and users added with the `moat` CLI, and SIGTERM
//! (the graceful drain) at the end. Like tests/src/lib.rs, without depending on it. For the relay
//! benchmark, the `*` route sends every other domain to the sink, without TLS.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::guard::{self, Emergency, Registration};
use super::{DOMAIN, Options, PASSWORD, Server, USERS, free_port, tail};

/// The programs of the stack, all expected in the binary folder.
pub const PROGRAMS: &[&str] = &[
    "moat",
    "moat-smtpd",
    "moat-queue",
    "moat-local",
    "moat-auth",
    "moat-remote",
];
/// The children `moat up` must have spawned before the stack is ready.
const CHILDREN: &[&str] = &[
    "moat-smtpd",
    "moat-queue",
    "moat-local",
    "moat-auth",
    "moat-remote",
];

pub struct Moat {
    data: PathBuf,
    config: PathBuf,
    bin_dir: PathBuf,
    log: PathBuf,
    port: u16,
    submission: u16,
    child: Option<Child>,
    _registration: Option<Registration>,
}

impl Moat {
    /// Writes the folder `dir/moat-data`, starts `moat up` and adds the bench domain and users.
    pub fn start(dir: &Path, bin_dir: &Path, options: &Options<'_>) -> Result<Moat> {
        for program in PROGRAMS {
            if !bin_dir.join(program).is_file() {
                bail!(
                    "{program} is not in {}: build the stack with `cargo build --release --workspace` \
                     (or name the folder with --bin-dir)",
                    bin_dir.display()
                );
            }
        }
        std::fs::create_dir_all(dir)?;
        // As root, the programs run as their own users and must be able to reach in.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let data = dir.join("moat-data");
        std::fs::create_dir_all(data.join("db"))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
        let (smtp, submission, submissions) = (free_port()?, free_port()?, free_port()?);
        let config = data.join("moat.toml");
        // The same connection room Postfix has by default (50 per client, 100 smtpd processes).
        let per_ip = 50.max(2 * options.sessions);
        let total = 200.max(4 * options.sessions);
        let mut text = format!(
            "# moat-bench smtp\n\
                 hostname = \"mx.{DOMAIN}\"\n\n\
                 [store]\nurl = \"sqlite:db/users.db\"\n\n\
                 [paths]\nmail = \"mail\"\nqueue = \"queue\"\nrun = \"run\"\n\n\
                 [listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nsubmission = [\"127.0.0.1:{submission}\"]\n\
                 submissions = [\"127.0.0.1:{submissions}\"]\n\n\
                 [limits]\nmax_connections = {total}\nmax_connections_per_ip = {per_ip}\n"
        );
        if let Some(port) = options.relay_to {
            text.push_str(&format!(
                "\n[remote]\ntls = \"none\"\n\n[remote.routes]\n\"*\" = \"127.0.0.1:{port}\"\n"
            ));
        }
        std::fs::write(&config, text)?;
        // `moat up` makes its own certificate only when none is there (the default paths).
        if let Some(cert) = options.tls {
            cert.write(&data.join("tls/cert.pem"), &data.join("tls/key.pem"))?;
        }
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
            .context("starting moat up")?;
        let registration = guard::register(Emergency::Tree { pid: child.id() });
        let mut moat = Moat {
            data,
            config,
            bin_dir: bin_dir.to_path_buf(),
            log,
            port: smtp,
            submission,
            child: Some(child),
            _registration: Some(registration),
        };
        moat.wait_ready(smtp)?;
        moat.admin(&["domain", "add", DOMAIN], "")?;
        for user in USERS {
            // The relay benchmark logs in on the submission port; the smtp one uses the MX.
            moat.admin(
                &[
                    "user",
                    "add",
                    &format!("{user}@{DOMAIN}"),
                    "--password-stdin",
                ],
                &format!("{PASSWORD}\n"),
            )?;
        }
        Ok(moat)
    }

    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port_up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            let pid = self.child.as_ref().map_or(0, Child::id);
            let children: Vec<PathBuf> = guard::children_of(pid)
                .into_iter()
                .filter_map(|c| std::fs::read_link(format!("/proc/{c}/exe")).ok())
                .collect();
            let programs_up = CHILDREN.iter().all(|p| {
                children
                    .iter()
                    .any(|exe| exe.file_name().is_some_and(|n| n == *p))
            });
            if port_up && programs_up {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("moat up exited ({status}); its log:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "the Moat stack did not start within 60 s; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the admin CLI against this stack and insists it succeeds.
    fn admin(&self, args: &[&str], stdin: &str) -> Result<()> {
        let mut child = Command::new(self.bin_dir.join("moat"))
            .args(args)
            .env("MOAT_CONFIG", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running the moat CLI")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "moat {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(())
    }

    fn stop_now(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let children = guard::children_of(child.id());
        guard::signal(child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for pid in children {
            if guard::alive(pid) {
                guard::signal(pid, rustix::process::Signal::KILL);
            }
        }
        status
    }
}

impl Server for Moat {
    fn name(&self) -> &'static str {
        "moat"
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn relay_port(&self) -> u16 {
        self.submission
    }

    fn relay_needs_login(&self) -> bool {
        true
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data
            .join("mail")
            .join(DOMAIN)
            .join(user)
            .join("Maildir")
    }

    fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }

    fn root_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stop(&mut self) -> Result<()> {
        match self.stop_now() {
            Some(status) if !status.success() => {
                bail!(
                    "moat up exited with {status} after SIGTERM; its log:\n{}",
                    self.log_tail()
                )
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Moat {
    fn drop(&mut self) {
        self.stop_now();
    }
}
