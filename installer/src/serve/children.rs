//! Running the children: spawn with the setup channel, notice exits, restart with backoff,
//! replace moat-smtpd and the IMAP/POP3 login processes (certificates) and moat-remote (DKIM
//! keys, route passwords) on SIGHUP (new one first, so no connection or delivery request is
//! refused; a replaced login process is retired with SIGUSR1 and relays its logged-in TLS
//! clients until they leave, however long), and drain in order on SIGTERM:
//! smtpd and the IMAP/POP3 login processes first (open transactions finish or get 421, nobody
//! new logs in), then moat-imapd and moat-pop3d, then the queue and local and remote delivery,
//! then auth; whatever has not stopped in time is killed.
//!
//! What runs, and how each child reported its confinement, is kept in `run_dir/status` for
//! `moat status` (`status.rs`, `reports.rs`).

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use moat_common::config::Config;
use moat_common::date;
use moat_common::{error, info, warn};
use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Accounts;
use super::listeners::Sockets;
use super::remote_files::RemoteFiles;
use super::reports::{self, Report};
use super::specs::{ProgramDir, Role, TlsFiles, items};
use super::status::{self, Process, Snapshot};

/// A child that ran at least this long is considered healthy: its next crash restarts fast.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Running {
    pid: i32,
    generation: u64,
    started: Instant,
    /// For `moat status`: Unix time of the start, /proc start time, the last report.
    started_unix: u64,
    start_time: u64,
    report: Option<Report>,
    /// Closing it tells the child the supervisor is gone.
    _control: UnixStream,
    /// The task reading the child's reports from `_control` (it holds a second descriptor of
    /// it, so it must end with this entry for the close to reach the child).
    reports: Option<tokio::task::AbortHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.reports {
            task.abort();
        }
    }
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
    /// Replaced children still finishing their work (old moat-smtpd after a reload, old login
    /// processes relaying their last TLS sessions). None is killed on a timer: only the drain
    /// stops them, with its bound.
    retiring: Vec<(Role, Running)>,
    backoff: BTreeMap<Role, Duration>,
    restart_at: BTreeMap<Role, Instant>,
    generation: u64,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports_rx: mpsc::UnboundedReceiver<Report>,
    /// SIGTERM received: draining.
    stopping: bool,
}

impl Supervisor {
    pub fn new(
        config: &Config,
        accounts: Accounts,
        sockets: Sockets,
        programs: ProgramDir,
    ) -> Supervisor {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
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
            reports_tx,
            reports_rx,
            stopping: false,
        }
    }

    /// Starts every role the configuration has work for, in `Role::ALL` order.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for role in Role::ALL {
            if !role.wanted(&self.config) {
                info!(
                    "{} is not started: its protocol has no listener",
                    role.program()
                );
                continue;
            }
            let child = self.spawn(role)?;
            self.running.insert(role, child);
        }
        self.write_status();
        Ok(())
    }

    fn spawn(&mut self, role: Role) -> anyhow::Result<Running> {
        let tls = match role {
            // The network-facing ones; moat-imapd and moat-pop3d only get clients already in TLS
            // (or plain) from their login process.
            Role::Smtpd | Role::Pop3Login | Role::ImapLogin => Some(TlsFiles::open(&self.config)?),
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
        // Without it the child still runs; `moat status` just has no report from it.
        let reports = reports::watch(&control, role, generation, self.reports_tx.clone())
            .map_err(|e| {
                warn!(
                    "{}: cannot read its confinement report: {e}",
                    role.program()
                )
            })
            .ok();
        Ok(Running {
            pid,
            generation,
            started: Instant::now(),
            started_unix: date::now(),
            start_time: u32::try_from(pid)
                .ok()
                .and_then(status::start_time)
                .unwrap_or(0),
            report: None,
            _control: control,
            reports,
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
                Some(report) = self.reports_rx.recv() => self.on_report(report),
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => self.reload(),
                _ = sleep_until(next_restart) => self.restart_due(),
            }
        }
        info!("stopping: draining moat-smtpd and the login processes first");
        self.stopping = true;
        self.write_status();
        self.drain().await;
        if let Err(e) = status::remove(&self.config.run_dir) {
            warn!("cannot remove the status file: {e}");
        }
        info!("stopped");
        Ok(())
    }

    /// Keeps a child's confinement report for `moat status`.
    fn on_report(&mut self, report: Report) {
        let child = match self.running.get_mut(&report.role) {
            Some(c) if c.generation == report.generation => Some(c),
            _ => self
                .retiring
                .iter_mut()
                .find(|(r, c)| *r == report.role && c.generation == report.generation)
                .map(|(_, c)| c),
        };
        if let Some(child) = child {
            child.report = Some(report);
            self.write_status();
        }
    }

    /// Rewrites `run_dir/status` from what runs now.
    fn write_status(&self) {
        let process = |role: Role, child: &Running, retiring: bool| {
            let account = role.account(&self.accounts);
            Process {
                program: role.program().to_string(),
                pid: u32::try_from(child.pid).unwrap_or(0),
                start: child.start_time,
                user: account.name.clone(),
                uid: account.uid,
                started: child.started_unix,
                retiring,
                landlock: child.report.as_ref().map(|r| r.landlock.clone()),
                seccomp: child.report.as_ref().map(|r| r.seccomp.clone()),
            }
        };
        let me = std::process::id();
        let snapshot = Snapshot {
            supervisor: me,
            supervisor_start: status::start_time(me).unwrap_or(0),
            stopping: self.stopping,
            processes: self
                .running
                .iter()
                .map(|(role, child)| process(*role, child, false))
                .chain(
                    self.retiring
                        .iter()
                        .map(|(role, child)| process(*role, child, true)),
                )
                .collect(),
            restarting: self
                .restart_at
                .keys()
                .map(|role| role.program().to_string())
                .collect(),
            written: date::now(),
        };
        if let Err(e) = status::write(&self.config.run_dir, &snapshot) {
            warn!("cannot write the status file for `moat status`: {e}");
        }
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
            self.write_status();
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
        self.write_status();
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
        self.write_status();
    }

    /// SIGHUP: start a new moat-smtpd and new IMAP/POP3 login processes (those running) with
    /// freshly opened certificates and a new moat-remote with the current DKIM keys and route
    /// passwords, then let the old ones finish their sessions and transactions. The listeners
    /// are shared, so nobody is refused meanwhile. An old moat-smtpd gets SIGTERM (its own
    /// drain bounds it); an old login process gets SIGUSR1, retire: it stops accepting but
    /// relays its logged-in TLS clients (IMAP IDLE may last hours) until the last one leaves.
    /// Plaintext sessions already live in moat-imapd / moat-pop3d, which a reload leaves alone.
    fn reload(&mut self) {
        let logins: Vec<Role> = [Role::ImapLogin, Role::Pop3Login]
            .into_iter()
            .filter(|role| self.running.contains_key(role))
            .collect();
        info!(
            "reloading: replacing moat-smtpd{} (certificates) and moat-remote (DKIM keys, route \
             passwords)",
            logins
                .iter()
                .map(|role| format!(", {}", role.program()))
                .collect::<String>()
        );
        for role in [Role::Smtpd, Role::Remote].into_iter().chain(logins) {
            match self.spawn(role) {
                Ok(fresh) => {
                    // A restart that was waiting for its backoff is this one now.
                    self.restart_at.remove(&role);
                    if let Some(old) = self.running.insert(role, fresh) {
                        match role {
                            Role::ImapLogin | Role::Pop3Login => retire(&old),
                            _ => terminate(&old),
                        }
                        self.retiring.push((role, old));
                    }
                }
                Err(e) => warn!(
                    "reload failed, keeping the running {}: {e:#}",
                    role.program()
                ),
            }
        }
        self.write_status();
    }

    async fn drain(&mut self) {
        self.restart_at.clear();
        // The network services, each pair of login and mail process together: a TLS session
        // the login process relays ends only when the mail process serving it ends it (with
        // its "shutting down" reply), so stopping the login process first would make it wait
        // out its whole drain and then cut those clients off without a word.
        self.stop(
            &[
                Role::Smtpd,
                Role::Pop3Login,
                Role::ImapLogin,
                Role::Pop3d,
                Role::Imapd,
            ],
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

    /// Drops a child that exited from the running and retiring lists.
    fn forget(&mut self, exit: &Exit) {
        if self
            .running
            .get(&exit.role)
            .is_some_and(|c| c.generation == exit.generation)
        {
            self.running.remove(&exit.role);
        }
        self.retiring
            .retain(|(r, c)| !(*r == exit.role && c.generation == exit.generation));
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
                    // One of a later step that stopped already (the signal went to the whole
                    // process group, or it crashed): not waited for, nor killed, there.
                    self.forget(&exit);
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
    send(child, Signal::TERM);
}

/// A login process: stop accepting, serve the open sessions to their end (`stop::retire`).
fn retire(child: &Running) {
    send(child, Signal::USR1);
}

fn send(child: &Running, sig: Signal) {
    if let Some(pid) = Pid::from_raw(child.pid) {
        let _ = kill_process(pid, sig);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
