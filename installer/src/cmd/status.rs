//! `moat status`: each process the supervisor runs, with its user and its confinement as the
//! kernel shows it now (/proc/PID/status: Uid, CapEff, NoNewPrivs, Seccomp) next to what the
//! process reported once it confined itself (Landlock and seccomp summaries). The list comes
//! from the supervisor's `run_dir/status` (`serve/status.rs`).
//!
//! SECURITY: read-only; it needs no privilege (the status file is 0644 and /proc/PID/status is
//! readable by anyone unless /proc is mounted with hidepid, where the kernel columns show `?`).
//! A pid is trusted only while its /proc start time is the one the supervisor recorded.

use anyhow::bail;
use moat_common::config::Config;
use serde_json::json;

use crate::output;
use crate::serve::status::{self, Process, Snapshot};

/// What the kernel says about one process now.
#[derive(Debug, Default)]
struct Kernel {
    uid: String,
    cap_eff: String,
    no_new_privs: String,
    seccomp: String,
}

impl Kernel {
    /// `None` when the process is gone (or its pid now belongs to another process).
    fn of(p: &Process) -> Option<Kernel> {
        if status::start_time(p.pid)? != p.start {
            return None;
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", p.pid)) else {
            // Alive (its stat was readable) but hidden from us.
            return Some(Kernel {
                uid: "?".into(),
                cap_eff: "?".into(),
                no_new_privs: "?".into(),
                seccomp: "?".into(),
            });
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
                .unwrap_or("?")
                .to_string()
        };
        // Real, effective, saved and file-system uid: one number when all four agree.
        let uids: Vec<String> = field("Uid").split_whitespace().map(String::from).collect();
        let uid = if uids.windows(2).all(|w| w[0] == w[1]) {
            uids.first().cloned().unwrap_or_else(|| "?".into())
        } else {
            uids.join("/")
        };
        Some(Kernel {
            uid,
            cap_eff: field("CapEff"),
            no_new_privs: field("NoNewPrivs"),
            seccomp: field("Seccomp"),
        })
    }
}

/// The kernel's seccomp mode in words.
fn seccomp_mode(mode: &str) -> String {
    match mode {
        "0" => "0 (off)".into(),
        "1" => "1 (strict)".into(),
        "2" => "2 (filter)".into(),
        other => other.into(),
    }
}

pub fn run(config: &Config, json: bool) -> anyhow::Result<()> {
    let snapshot = read_live(config)?;
    let rows: Vec<(&Process, Option<Kernel>)> = snapshot
        .processes
        .iter()
        .map(|p| (p, Kernel::of(p)))
        .collect();
    if json {
        let processes: Vec<_> = rows
            .iter()
            .map(|(p, k)| {
                json!({
                    "program": p.program, "pid": p.pid, "user": p.user, "uid": p.uid,
                    "started": p.started, "retiring": p.retiring, "running": k.is_some(),
                    "proc_uid": k.as_ref().map(|k| &k.uid),
                    "cap_eff": k.as_ref().map(|k| &k.cap_eff),
                    "no_new_privs": k.as_ref().map(|k| &k.no_new_privs),
                    "seccomp_mode": k.as_ref().map(|k| &k.seccomp),
                    "landlock": p.landlock, "seccomp": p.seccomp,
                })
            })
            .collect();
        return output::json(&json!({
            "supervisor": snapshot.supervisor, "stopping": snapshot.stopping,
            "restarting": snapshot.restarting, "processes": processes,
        }));
    }
    let state = if snapshot.stopping {
        "stopping"
    } else {
        "running"
    };
    println!(
        "supervisor pid {} ({state}); status of {}",
        snapshot.supervisor,
        output::time(snapshot.written as i64)
    );
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(p, k)| {
            let program = if p.retiring {
                format!("{} (replaced)", p.program)
            } else {
                p.program.clone()
            };
            let kernel = |f: fn(&Kernel) -> String| k.as_ref().map_or_else(|| "gone".into(), f);
            vec![
                program,
                p.pid.to_string(),
                p.user.clone(),
                kernel(|k| k.uid.clone()),
                kernel(|k| k.cap_eff.clone()),
                kernel(|k| k.no_new_privs.clone()),
                kernel(|k| seccomp_mode(&k.seccomp)),
                p.landlock.clone().unwrap_or_else(|| "(no report)".into()),
                p.seccomp.clone().unwrap_or_else(|| "(no report)".into()),
            ]
        })
        .collect();
    output::table(
        &[
            "PROGRAM",
            "PID",
            "USER",
            "UID",
            "CAPEFF",
            "NONEWPRIVS",
            "SECCOMP",
            "LANDLOCK (REPORTED)",
            "SECCOMP (REPORTED)",
        ],
        &table,
    );
    if !snapshot.restarting.is_empty() {
        println!(
            "exited, waiting to be restarted: {}",
            snapshot.restarting.join(", ")
        );
    }
    Ok(())
}

/// The supervisor's status, if that supervisor is still alive.
fn read_live(config: &Config) -> anyhow::Result<Snapshot> {
    let path = status::path(&config.run_dir);
    let hint = "start it with `moat up` or `moat serve` (for another configuration: --config PATH)";
    let snapshot = match status::read(&config.run_dir) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no supervisor is running for {} ({} does not exist): {hint}",
                config.source.display(),
                path.display()
            )
        }
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    };
    if status::start_time(snapshot.supervisor) != Some(snapshot.supervisor_start) {
        bail!(
            "no supervisor is running for {} ({} was left by pid {}, which is gone): {hint}",
            config.source.display(),
            path.display(),
            snapshot.supervisor
        );
    }
    Ok(snapshot)
}
