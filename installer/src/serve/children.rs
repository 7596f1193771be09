//! Running the children: spawn with the setup channel, notice exits, restart with backoff,
//! replace moat-smtpd (certificates) and moat-remote (DKIM keys, route passwords) on SIGHUP (new
//! one first, so no connection or delivery request is refused), and drain in order on SIGTERM:
//! smtpd first (open transactions finish or get 421), then the queue and local and remote
//! delivery, then auth; whatever has not stopped in time is killed.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use moat_common::config::Config;
use moat_common::{error, info, warn};
use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Accounts;
use super::listeners::Sockets;
use super::remote_files::RemoteFiles;
use super::specs::{ProgramDir, Role, TlsFiles, items};

/// A child that ran at least this long is considered healthy: its next crash restarts fast.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Running {
    pid: i32,
    generation: u64,
    started: Instant,
    /// Closing it tells the child the supervisor is gone.
    _control: UnixStream,
}

struct Exit {
    role: Role,
    generation: u64,
    status: String,
}

pub struct Supervisor {
    config: Config,
    accounts: Accounts,
    sockets: Sockets,
    programs: ProgramDir,
    running: BTreeMap<Role, Running>,
    /// Replaced children still finishing their work (old moat-smtpd after a reload).
    retiring: Vec<(Role, Running)>,
    backoff: BTreeMap<Role, Duration>,
    restart_at: BTreeMap<Role, Instant>,
    generation: u64,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
}

impl Supervisor {
    pub fn new(
        config: &Config,
        accounts: Accounts,
        sockets: Sockets,
        programs: ProgramDir,
    ) -> Supervisor {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Supervisor {
            config: config.clone(),
            accounts,
            sockets,
            programs,
            running: BTreeMap::new(),
            retiring: Vec::new(),
            backoff: BTreeMap::new(),
            restart_at: BTreeMap::new(),
            generation: 0,
            exits_tx,
            exits_rx,
        }
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for role in Role::ALL {
            let child = self.spawn(role)?;
            self.running.insert(role, child);
        }
        Ok(())
    }

    fn spawn(&mut self, role: Role) -> anyhow::Result<Running> {
        let tls = match role {
            Role::Smtpd | Role::Pop3d | Role::Imapd => Some(TlsFiles::open(&self.config)?),
            // moat-lists serves HTTPS only when the one-click endpoint is configured.
            Role::Lists if self.config.lists.web_listen.is_some() => {
                Some(TlsFiles::open(&self.config)?)
            }
            _ => None,
        };
        let remote = match role {
            Role::Remote => RemoteFiles::open(&self.config)?,
            _ => RemoteFiles::default(),
        };
        let setup = items(
            role,
            &self.config,
            &self.accounts,
            &self.sockets,
            tls.as_ref(),
            &remote,
        );
        let mut cmd = Command::new(self.programs.path(role));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/");
        if let Ok(bt) = std::env::var("RUST_BACKTRACE") {
            cmd.env("RUST_BACKTRACE", bt);
        }
        if self.accounts.privileged {
            // std clears the supplementary groups when root sets a uid; the child checks again.
            let account = role.account(&self.accounts);
            cmd.uid(account.uid).gid(account.gid);
        }
        let (mut child, control) = moat_common::child::spawn(&mut cmd, &setup)
            .with_context(|| format!("cannot start {}", role.program()))?;
        self.generation += 1;
        let generation = self.generation;
        let pid = child.id() as i32;
        let tx = self.exits_tx.clone();
        std::thread::spawn(move || {
            let status = match child.wait() {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown status ({e})"),
            };
            let _ = tx.send(Exit {
                role,
                generation,
                status,
            });
        });
        info!("started {} (pid {pid})", role.program());
        Ok(Running {
            pid,
            generation,
            started: Instant::now(),
            _control: control,
        })
    }

    /// The main loop: until SIGTERM or SIGINT, then drain.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            let next_restart = self.restart_at.values().min().copied();
            tokio::select! {
                Some(exit) = self.exits_rx.recv() => self.on_exit(exit),
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => self.reload(),
                _ = sleep_until(next_restart) => self.restart_due(),
            }
        }
        info!("stopping: draining moat-smtpd first");
        self.drain().await;
        info!("stopped");
        Ok(())
    }

    fn on_exit(&mut self, exit: Exit) {
        let program = exit.role.program();
        if let Some(i) = self
            .retiring
            .iter()
            .position(|(r, c)| *r == exit.role && c.generation == exit.generation)
        {
            self.retiring.remove(i);
            info!("the replaced {program} finished: {}", exit.status);
            return;
        }
        let Some(child) = self.running.get(&exit.role) else {
            return;
        };
        if child.generation != exit.generation {
            return;
        }
        let ran = child.started.elapsed();
        self.running.remove(&exit.role);
        let backoff = self
            .backoff
            .entry(exit.role)
            .or_insert(Duration::from_secs(1));
        if ran >= HEALTHY_AFTER {
            *backoff = Duration::from_secs(1);
        }
        let wait = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        error!(
            "{program} exited ({}) after {} s; restarting in {} s",
            exit.status,
            ran.as_secs(),
            wait.as_secs()
        );
        self.restart_at.insert(exit.role, Instant::now() + wait);
    }

    fn restart_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Role> = self
            .restart_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(r, _)| *r)
            .collect();
        for role in due {
            self.restart_at.remove(&role);
            match self.spawn(role) {
                Ok(child) => {
                    self.running.insert(role, child);
                }
                Err(e) => {
                    let wait = *self.backoff.get(&role).unwrap_or(&MAX_BACKOFF);
                    error!("{e:#}; trying again in {} s", wait.as_secs());
                    self.restart_at.insert(role, now + wait);
                }
            }
        }
    }

    /// SIGHUP: start a new moat-smtpd with freshly opened certificates and a new moat-remote
    /// with the current DKIM keys and route passwords, then let the old ones finish their
    /// sessions and transactions. The listeners are shared, so nobody is refused meanwhile.
    fn reload(&mut self) {
        info!(
            "reloading: replacing moat-smtpd (certificates) and moat-remote (DKIM keys, route \
             passwords)"
        );
        for role in [Role::Smtpd, Role::Remote] {
            match self.spawn(role) {
                Ok(fresh) => {
                    // A restart that was waiting for its backoff is this one now.
                    self.restart_at.remove(&role);
                    if let Some(old) = self.running.insert(role, fresh) {
                        terminate(&old);
                        self.retiring.push((role, old));
                    }
                }
                Err(e) => warn!(
                    "reload failed, keeping the running {}: {e:#}",
                    role.program()
                ),
            }
        }
    }

    async fn drain(&mut self) {
        self.restart_at.clear();
        self.stop(
            &[Role::Smtpd, Role::Pop3d, Role::Imapd],
            Duration::from_secs(60),
        )
        .await;
        self.stop(
            &[Role::Queue, Role::Local, Role::Remote, Role::Lists],
            Duration::from_secs(30),
        )
        .await;
        self.stop(&[Role::Auth], Duration::from_secs(10)).await;
    }

    async fn stop(&mut self, roles: &[Role], limit: Duration) {
        let mut waiting: Vec<(Role, u64, i32)> = Vec::new();
        for role in roles {
            if let Some(child) = self.running.remove(role) {
                terminate(&child);
                waiting.push((*role, child.generation, child.pid));
            }
            for (r, child) in self.retiring.drain(..).collect::<Vec<_>>() {
                if r == *role {
                    terminate(&child);
                    waiting.push((r, child.generation, child.pid));
                } else {
                    self.retiring.push((r, child));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, self.exits_rx.recv()).await {
                Ok(Some(exit)) => {
                    waiting.retain(|(r, g, _)| !(*r == exit.role && *g == exit.generation));
                    info!("{} stopped ({})", exit.role.program(), exit.status);
                }
                Ok(None) => break,
                Err(_) => {
                    for (role, _, pid) in &waiting {
                        warn!("{} did not stop in time: killing it", role.program());
                        if let Some(pid) = Pid::from_raw(*pid) {
                            let _ = kill_process(pid, Signal::KILL);
                        }
                    }
                    break;
                }
            }
        }
    }
}

fn terminate(child: &Running) {
    if let Some(pid) = Pid::from_raw(child.pid) {
        let _ = kill_process(pid, Signal::TERM);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
