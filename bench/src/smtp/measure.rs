//! One measured load against one running server: the clock, the delivery watch, the CPU
//! accounting, and the medians over rounds. Shared by `moat-bench smtp` (delivery = files in a
//! Maildir) and `moat-bench relay` (delivery = messages at the sink), so both time the same way.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Server;
use super::client::{self, Finished, Load};
use super::cpu::{self, CpuUse};

/// No delivery progress for this long fails the run.
const STALL: Duration = Duration::from_secs(60);
/// How often delivered messages are counted while the load runs.
const POLL: Duration = Duration::from_millis(10);

/// One measured load.
#[derive(Clone, Copy)]
pub struct Run {
    /// From the start of the load to the last `250` after DATA.
    pub accepted: Duration,
    /// From the start of the load until every message was delivered.
    pub delivered: Duration,
    /// Machine-wide CPU use from the start of the load until the last delivery.
    pub cpu: Option<CpuUse>,
}

/// Sends `load` and polls `delivered` (messages that reached their destination: a count that
/// only grows) until every message is there. `place` names the destination in messages.
pub fn measure(
    server: &dyn Server,
    load: &Load,
    delivered: &dyn Fn() -> usize,
    place: &str,
) -> Result<(Run, Finished)> {
    let before = delivered();
    let root = server.root_pid();
    let server_before = root.and_then(cpu::tree_ticks);
    let cpu_before = cpu::sample();
    let client_before = cpu::self_ticks();
    let running = client::start(load)?;
    let start = running.start;
    let mut last = (before, Instant::now());
    let delivered_at = loop {
        let n = delivered();
        let now = Instant::now();
        if n >= before + load.messages {
            break Some((
                now,
                cpu::sample(),
                root.and_then(cpu::tree_ticks),
                cpu::self_ticks(),
            ));
        }
        if running.failed() {
            break None;
        }
        if n != last.0 {
            last = (n, now);
        } else if now.duration_since(last.1) > STALL {
            bail!(
                "{}: no delivery for {} s; {} of {} messages delivered, {} accepted; log:\n{}",
                server.name(),
                STALL.as_secs(),
                n - before,
                load.messages,
                running.accepted(),
                server.log_tail()
            );
        }
        std::thread::sleep(POLL);
    };
    let finished = running
        .finish()
        .with_context(|| format!("{}'s log:\n{}", server.name(), server.log_tail()))?;
    let Some((delivered_at, cpu_after, server_after, client_after)) = delivered_at else {
        bail!("a session failed without an error");
    };
    let delivered_in = delivered_at.duration_since(start);
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => cpu::usage(
            &a,
            &b,
            delivered_in,
            server_before.zip(server_after),
            client_before.zip(client_after),
        ),
        _ => None,
    };
    if finished.accepted != load.messages {
        bail!(
            "{} of {} messages accepted",
            finished.accepted,
            load.messages
        );
    }
    let extra = delivered().saturating_sub(before + load.messages);
    if extra > 0 {
        eprintln!(
            "moat-bench: {}: {extra} more messages than sent {place} (duplicates)",
            server.name(),
        );
    }
    let run = Run {
        accepted: finished.last_accept.duration_since(start),
        delivered: delivered_in,
        cpu,
    };
    Ok((run, finished))
}

/// One round's figures on one line; `delivered` names the second rate ("delivered", "relayed").
pub fn describe(run: &Run, messages: usize, delivered: &str) -> String {
    let ms = |seconds: f64| 1000.0 * seconds / messages as f64;
    let mut line = format!(
        "accepted {:>6.0}/s ({:.3} s)  {delivered} {:>6.0}/s ({:.3} s)",
        rate(messages, run.accepted),
        run.accepted.as_secs_f64(),
        rate(messages, run.delivered),
        run.delivered.as_secs_f64(),
    );
    if let Some(c) = run.cpu {
        line.push_str(&format!(
            "  CPU {:.0} % busy, {:.2} ms/msg",
            100.0 * c.busy,
            ms(c.seconds)
        ));
        if let Some((u, s)) = c.server {
            line.push_str(&format!("; server {:.2} + {:.2}", ms(u), ms(s)));
        }
        if let Some(t) = c.client {
            line.push_str(&format!("; client {:.2}", ms(t)));
        }
    }
    line
}

/// The median of each figure over the rounds (CPU only when every round has it).
pub fn median_run(runs: &[Run]) -> Run {
    let cpus: Vec<CpuUse> = runs.iter().filter_map(|r| r.cpu).collect();
    let servers: Vec<(f64, f64)> = cpus.iter().filter_map(|c| c.server).collect();
    Run {
        accepted: median(runs.iter().map(|r| r.accepted).collect()),
        delivered: median(runs.iter().map(|r| r.delivered).collect()),
        cpu: (cpus.len() == runs.len()).then(|| CpuUse {
            busy: median_f64(cpus.iter().map(|c| c.busy).collect()),
            seconds: median_f64(cpus.iter().map(|c| c.seconds).collect()),
            client: None,
            server: (servers.len() == cpus.len()).then(|| {
                (
                    median_f64(servers.iter().map(|s| s.0).collect()),
                    median_f64(servers.iter().map(|s| s.1).collect()),
                )
            }),
        }),
    }
}

/// The CPU columns of a report: busy share, machine-wide ms per message, the server's own
/// user + system ms per message (empty cells when not measured).
pub fn cpu_cells(cpu: Option<CpuUse>, messages: usize) -> [String; 3] {
    let per_msg = |seconds: f64| format!("{:.2}", 1000.0 * seconds / messages as f64);
    cpu.map_or(Default::default(), |c| {
        [
            format!("{:.0} %", 100.0 * c.busy),
            per_msg(c.seconds),
            c.server.map_or(String::new(), |(u, s)| {
                format!("{} + {}", per_msg(u), per_msg(s))
            }),
        ]
    })
}

/// Moat ÷ Postfix as rates (Postfix's time over Moat's), accepted then delivered.
pub fn ratios(moat: &Run, postfix: &Run) -> [String; 2] {
    let ratio = |f: fn(&Run) -> Duration| {
        format!("{:.2}", f(postfix).as_secs_f64() / f(moat).as_secs_f64())
    };
    [ratio(|r| r.accepted), ratio(|r| r.delivered)]
}

pub fn rate(messages: usize, d: Duration) -> f64 {
    messages as f64 / d.as_secs_f64().max(f64::EPSILON)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
