//! Memory of idle logged-in connections: the resident memory of a server's whole process tree
//! (the root and every descendant: Moat's supervisor and its programs, Dovecot's master and its
//! process per connection), before and while `n` connections sit logged in and silent.
//!
//! RSS counts a page shared by several processes once per process (Dovecot's libraries, in every
//! one of its imap processes), so PSS (each shared page divided among its sharers) is read too:
//! the sum of PSS is what the tree really costs the machine.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use super::client::Imap;

/// A process tree's memory, in KiB.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// Memory of `root` and all its descendants, with the per-program split (by command name).
pub fn tree(root: u32) -> (Usage, Vec<(String, Usage)>) {
    let mut total = Usage::default();
    let mut by_name: HashMap<String, Usage> = HashMap::new();
    for pid in descendants(root) {
        let Some((name, rss, pss)) = process(pid) else {
            continue;
        };
        for u in [&mut total, by_name.entry(name).or_default()] {
            u.processes += 1;
            u.rss_kib += rss;
            u.pss_kib += pss;
        }
    }
    let mut split: Vec<(String, Usage)> = by_name.into_iter().collect();
    split.sort_by_key(|(_, u)| std::cmp::Reverse(u.rss_kib));
    (total, split)
}

/// `root` and every process below it, from one pass over /proc (thousands of processes).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm is in parentheses and may hold spaces; state and ppid follow it.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, after)| after.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&pid) = out.get(i) {
        out.extend(children.get(&pid).into_iter().flatten());
        i += 1;
    }
    out
}

/// Name, RSS and PSS (KiB) of one process; None once it is gone.
fn process(pid: u32) -> Option<(String, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |text: &str, key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let name = status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))?
        .trim()
        .to_string();
    let rss = field(&status, "VmRSS:").unwrap_or(0);
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let pss = field(&rollup, "Pss:").unwrap_or(0);
    Some((name, rss, pss))
}

/// Opens `n` connections to `port` and logs each in as `user`, `parallel` logins at a time;
/// they are returned open and silent.
pub async fn open_idle(
    port: u16,
    user: &str,
    password: &str,
    n: usize,
    parallel: usize,
) -> Result<Vec<Imap>> {
    let mut set = JoinSet::new();
    let per = n.div_ceil(parallel.max(1));
    for worker in 0..parallel.max(1) {
        let share = per.min(n.saturating_sub(worker * per));
        let (user, password) = (user.to_string(), password.to_string());
        set.spawn(async move {
            let mut open = Vec::with_capacity(share);
            for k in 0..share {
                // Small buffers: the client holds thousands of these.
                let mut imap = Imap::connect(port, 1024).await?;
                imap.login(&user, &password)
                    .await
                    .with_context(|| format!("idle login {} of worker {worker}", k + 1))?;
                open.push(imap);
            }
            anyhow::Ok(open)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        all.extend(done.context("login task panicked")??);
    }
    // Let the servers finish what a login starts (log lines, Dovecot's process hand-over).
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(all)
}
