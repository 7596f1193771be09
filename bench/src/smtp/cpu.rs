//! Where the CPU went during a measured load: machine-wide from /proc/stat (every process and
//! the kernel, neighbours included), the server's own processes from /proc/PID/stat, and this
//! program. Both servers are CPU-bound on small machines, so CPU per message explains the rates.

use std::time::Duration;

use super::guard;

#[derive(Clone, Copy)]
pub struct CpuUse {
    /// Busy share of all CPUs, 0..1.
    pub busy: f64,
    /// CPU seconds used (every process on the machine: servers, client, kernel, neighbours).
    pub seconds: f64,
    /// CPU seconds of the server's own processes (user, system).
    pub server: Option<(f64, f64)>,
    /// CPU seconds of this program (the SMTP client and the Maildir polling).
    pub client: Option<f64>,
}

/// /proc/PID/stat times are in USER_HZ, which the kernel ABI fixes at 100 on Linux.
const USER_HZ: f64 = 100.0;

/// User and system ticks of a server's processes: the root, its live children, and the
/// children that already exited (counted into the root's cutime/cstime when reaped, so the
/// total is conserved while processes come and go, as Postfix's daemons do after max_use).
pub fn tree_ticks(root: u32) -> Option<(u64, u64)> {
    let [ru, rs, rcu, rcs] = stat_times(&root.to_string())?;
    let (mut user, mut system) = (ru + rcu, rs + rcs);
    for child in guard::children_of(root) {
        if let Some([u, s, ..]) = stat_times(&child.to_string()) {
            user += u;
            system += s;
        }
    }
    Some((user, system))
}

/// utime, stime, cutime, cstime of a process (`self` or a pid), in ticks.
fn stat_times(pid: &str) -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised comm: state is field 3, utime 14 ... cstime 17.
    let (_, after) = stat.rsplit_once(')')?;
    let mut times = after.split_whitespace().skip(11).map(|f| f.parse().ok());
    Some([
        times.next()??,
        times.next()??,
        times.next()??,
        times.next()??,
    ])
}

pub fn self_ticks() -> Option<u64> {
    stat_times("self").map(|[u, s, ..]| u + s)
}

/// The `cpu` line of /proc/stat: busy and total ticks, and the number of CPUs.
pub struct CpuSample {
    busy: u64,
    total: u64,
    pub cpus: usize,
}

pub fn sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let fields: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = fields[..] else {
        return None;
    };
    let cpus = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let busy = user + nice + system + irq + softirq + steal;
    Some(CpuSample {
        busy,
        total: busy + idle + iowait,
        cpus,
    })
}

pub fn usage(
    before: &CpuSample,
    after: &CpuSample,
    wall: Duration,
    server: Option<((u64, u64), (u64, u64))>,
    client: Option<(u64, u64)>,
) -> Option<CpuUse> {
    let total = after.total.checked_sub(before.total).filter(|t| *t > 0)?;
    let busy = after.busy.checked_sub(before.busy)? as f64 / total as f64;
    Some(CpuUse {
        busy,
        seconds: busy * before.cpus as f64 * wall.as_secs_f64(),
        server: server.map(|((u0, s0), (u1, s1))| {
            (
                u1.saturating_sub(u0) as f64 / USER_HZ,
                s1.saturating_sub(s0) as f64 / USER_HZ,
            )
        }),
        client: client.map(|(c0, c1)| c1.saturating_sub(c0) as f64 / USER_HZ),
    })
}
