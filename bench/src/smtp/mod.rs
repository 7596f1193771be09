//! `moat-bench smtp`: messages per second accepted over SMTP and delivered into Maildir, Moat
//! against a private Postfix in the same run, on the same disk, with the same client.
//!
//! Each round starts a fresh server (Moat with `moat up`, Postfix from Debian's package with its
//! own configuration and queue), warms it up with a small load to another mailbox, then sends the
//! measured load: `--messages` messages of `--size` bytes over `--sessions` parallel SMTP
//! sessions to one virtual mailbox. "Accepted" is the time from the start of the load to the last
//! `250` after DATA; "delivered" the time until every message is a file in the mailbox's Maildir
//! (new/ and cur/ are polled). The disk's raw fsync rates are measured in the same folder in every
//! round (the `maildir` benchmark's function), so the results can be read against the disk.

mod client;
mod cpu;
mod guard;
mod moat;
mod postfix;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use self::cpu::CpuUse;
use crate::maildir::{self as md, Measurement};
use crate::report::Table;

/// The virtual domain both servers host for the benchmark.
pub const DOMAIN: &str = "bench.test";
/// Its mailboxes: the measured one, the warm-up one, and the envelope sender (local, so that
/// even a bounce would stay on the machine).
pub const USERS: &[&str] = &["bench", "warmup", "sender"];
/// No delivery progress for this long fails the run.
const STALL: Duration = Duration::from_secs(60);
/// How often the Maildir is counted while the load runs.
const POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Moat,
    Postfix,
}

#[derive(clap::Args)]
pub struct Args {
    /// Messages in the measured load.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Parallel SMTP sessions; each sends its share of the messages, one after another.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Message size in bytes (headers and body, CRLF line ends).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Repeat everything this many times (a fresh server each time) and report the median.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Benchmark one server only.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Messages sent (over the same number of sessions) to another mailbox before each
    /// measurement, so that processes are started and caches warm; 0 to skip.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Folder holding the servers' data and the raw fsync test (default: the system's temporary
    /// folder); pick the disk you want measured. Removed afterwards unless --keep.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the Moat binaries are (default: beside moat-bench, i.e. target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Keep the servers' folders (queues, Maildirs, logs) for inspection; servers are still stopped.
    #[arg(long)]
    keep: bool,
}

/// A running server under test.
pub trait Server {
    fn name(&self) -> &'static str;
    /// Its SMTP port on 127.0.0.1.
    fn port(&self) -> u16;
    /// The Maildir of `user@DOMAIN`.
    fn maildir(&self, user: &str) -> PathBuf;
    /// The end of its log, for error messages.
    fn log_tail(&self) -> String;
    /// Stops it and checks nothing is left running.
    fn stop(&mut self) -> Result<()>;
    /// The process whose children are the server's processes (the supervisor, Postfix's master).
    fn root_pid(&self) -> Option<u32>;
}

/// One measured load.
struct Run {
    accepted: Duration,
    delivered: Duration,
    /// Machine-wide CPU use from the start of the load until the last delivery.
    cpu: Option<CpuUse>,
}

pub fn run(args: &Args) -> Result<()> {
    if args.messages == 0 || args.sessions == 0 || args.rounds == 0 {
        bail!("--messages, --sessions and --rounds must be at least 1");
    }
    if args.size < 512 {
        bail!("--size must be at least 512 bytes (the headers take about 300)");
    }
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("moat-bench has no folder")?
            .to_path_buf(),
    };
    let servers: Vec<Only> = match args.only {
        Some(one) => vec![one],
        None => vec![Only::Moat, Only::Postfix],
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let holder = tempfile::Builder::new()
        .prefix(".moat-bench-smtp-")
        .tempdir_in(&parent)
        .with_context(|| format!("temp dir in {}", parent.display()))?;
    // Servers' unprivileged users must be able to reach their folders inside.
    std::fs::set_permissions(holder.path(), std::fs::Permissions::from_mode(0o755))?;
    let base = holder.path().to_path_buf();
    // From here on, Ctrl-C stops the servers and removes the folder instead of leaving them.
    guard::remove_on_signal((!args.keep).then(|| base.clone()));

    println!(
        "SMTP benchmark: {} messages of {} bytes over {} parallel sessions (warm-up {}), {} round(s), in {} ({})",
        args.messages,
        args.size,
        args.sessions,
        args.warmup,
        args.rounds,
        base.display(),
        md::fs_name(&base)
    );
    // Both servers are CPU-bound on small machines: anything else running skews the figures.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "{} CPUs, load average {} before the run",
        cpu::sample().map_or(0, |c| c.cpus),
        load.join(" ")
    );

    let fsync_sample = md::sample_message(args.size);
    let mut disk: [Vec<Measurement>; 3] = Default::default();
    let mut results: Vec<(Only, Vec<Run>)> = servers.iter().map(|s| (*s, Vec::new())).collect();
    for round in 0..args.rounds {
        let r = |name: &str| format!("{name}-{round}");
        disk[0].push(md::raw(
            &base,
            &r("raw-file-1"),
            args.messages,
            1,
            &fsync_sample,
            false,
        )?);
        disk[1].push(md::raw(
            &base,
            &r("raw-dir-1"),
            args.messages,
            1,
            &fsync_sample,
            true,
        )?);
        disk[2].push(md::raw(
            &base,
            &r("raw-dir-n"),
            args.messages,
            args.sessions,
            &fsync_sample,
            true,
        )?);
        // Alternate the order so that neither server always runs first.
        let mut order: Vec<usize> = (0..results.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let which = results[i].0;
            let dir = base.join(format!("round{}-{}", round + 1, name(which)));
            let run = bench_one(which, &dir, &bin_dir, args, round)?;
            println!(
                "round {}/{}  {:<8} {}",
                round + 1,
                args.rounds,
                name(which),
                describe(&run, args.messages)
            );
            results[i].1.push(run);
            if !args.keep {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
    }

    report(args, &results, disk);
    if args.keep {
        let kept = holder.keep();
        println!("Kept {}", kept.display());
    }
    Ok(())
}

/// One round's figures on one line.
fn describe(run: &Run, messages: usize) -> String {
    let ms = |seconds: f64| 1000.0 * seconds / messages as f64;
    let mut line = format!(
        "accepted {:>6.0}/s ({:.3} s)  delivered {:>6.0}/s ({:.3} s)",
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

/// The medians: servers side by side with their ratio, then the disk.
fn report(args: &Args, results: &[(Only, Vec<Run>)], disk: [Vec<Measurement>; 3]) {
    let [file_1, dir_1, dir_n] = disk.map(md::median);
    struct Summary {
        which: Only,
        accepted: Duration,
        delivered: Duration,
        cpu: Option<CpuUse>,
    }
    let summaries: Vec<Summary> = results
        .iter()
        .map(|(which, runs)| {
            let cpus: Vec<CpuUse> = runs.iter().filter_map(|r| r.cpu).collect();
            let mid = |v: Vec<f64>| {
                let mut v = v;
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let servers: Vec<(f64, f64)> = cpus.iter().filter_map(|c| c.server).collect();
            Summary {
                which: *which,
                accepted: median(runs.iter().map(|r| r.accepted).collect()),
                delivered: median(runs.iter().map(|r| r.delivered).collect()),
                cpu: (cpus.len() == runs.len()).then(|| CpuUse {
                    busy: mid(cpus.iter().map(|c| c.busy).collect()),
                    seconds: mid(cpus.iter().map(|c| c.seconds).collect()),
                    client: None,
                    server: (servers.len() == cpus.len()).then(|| {
                        (
                            mid(servers.iter().map(|s| s.0).collect()),
                            mid(servers.iter().map(|s| s.1).collect()),
                        )
                    }),
                }),
            }
        })
        .collect();

    let mut table = Table::new(&[
        "server",
        "accepted/s",
        "delivered/s",
        "accepted in s",
        "delivered in s",
        "delivered ÷ disk",
        "CPU busy",
        "CPU ms/msg",
        "server user+sys ms/msg",
    ]);
    let per_msg = |seconds: f64| format!("{:.2}", 1000.0 * seconds / args.messages as f64);
    for s in &summaries {
        let delivered_rate = rate(args.messages, s.delivered);
        let (busy, machine, own) = s.cpu.map_or(Default::default(), |c| {
            (
                format!("{:.0} %", 100.0 * c.busy),
                per_msg(c.seconds),
                c.server.map_or(String::new(), |(u, s)| {
                    format!("{} + {}", per_msg(u), per_msg(s))
                }),
            )
        });
        table.row(vec![
            name(s.which).to_owned(),
            format!("{:.0}", rate(args.messages, s.accepted)),
            format!("{delivered_rate:.0}"),
            format!("{:.3}", s.accepted.as_secs_f64()),
            format!("{:.3}", s.delivered.as_secs_f64()),
            format!("{:.2}", delivered_rate / dir_n.rate()),
            busy,
            machine,
            own,
        ]);
    }
    if let [moat, postfix] = summaries.as_slice() {
        table.row(vec![
            "moat ÷ postfix".to_owned(),
            format!(
                "{:.2}",
                postfix.accepted.as_secs_f64() / moat.accepted.as_secs_f64()
            ),
            format!(
                "{:.2}",
                postfix.delivered.as_secs_f64() / moat.delivered.as_secs_f64()
            ),
        ]);
    }
    println!();
    print!("{}", table.render());

    let mut disk_table = Table::new(&["disk, same folder", "threads", "ops", "seconds", "ops/s"]);
    for (label, threads, m) in [
        ("raw file fsync", 1, &file_1),
        ("raw file+dir fsync", 1, &dir_1),
        ("raw file+dir fsync", args.sessions, &dir_n),
    ] {
        disk_table.row(vec![
            label.to_owned(),
            threads.to_string(),
            m.ops.to_string(),
            format!("{:.3}", m.elapsed.as_secs_f64()),
            format!("{:.0}", m.rate()),
        ]);
    }
    println!();
    print!("{}", disk_table.render());
    println!(
        "\nMedian of {} round(s). \"delivered ÷ disk\" compares with raw file+dir fsync on {} threads \
         (create + write + fsync, rename, fsync the directory). CPU is machine-wide (servers, client, \
         kernel and anything else running) from the start of the load to the last delivery, on {} CPUs; \
         \"server\" is the user + system CPU of the server's own processes only.",
        args.rounds,
        args.sessions,
        cpu::sample().map_or(0, |c| c.cpus)
    );
}

fn name(which: Only) -> &'static str {
    match which {
        Only::Moat => "moat",
        Only::Postfix => "postfix",
    }
}

fn rate(messages: usize, d: Duration) -> f64 {
    messages as f64 / d.as_secs_f64().max(f64::EPSILON)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Starts one server in `dir`, warms it up, measures, stops it.
fn bench_one(which: Only, dir: &Path, bin_dir: &Path, args: &Args, round: usize) -> Result<Run> {
    let mut server: Box<dyn Server> = match which {
        Only::Moat => Box::new(moat::Moat::start(dir, bin_dir, args.sessions)?),
        Only::Postfix => Box::new(postfix::Postfix::start(dir, args.sessions)?),
    };
    let load = |user: &str, messages: usize, tag: &str| client::Load {
        port: server.port(),
        sessions: args.sessions,
        messages,
        size: args.size,
        sender: format!("sender@{DOMAIN}"),
        recipient: format!("{user}@{DOMAIN}"),
        tag: format!("r{}-{tag}", round + 1),
    };
    if args.warmup > 0 {
        let warm = load("warmup", args.warmup, "warmup");
        measure(server.as_ref(), &warm).with_context(|| format!("warming up {}", server.name()))?;
    }
    let measured = load("bench", args.messages, "load");
    let run = measure(server.as_ref(), &measured)
        .with_context(|| format!("measuring {}", server.name()))?;
    server.stop()?;
    Ok(run)
}

/// Sends `load` and watches the recipient's Maildir until every message is there.
fn measure(server: &dyn Server, load: &client::Load) -> Result<Run> {
    let user = load
        .recipient
        .split_once('@')
        .map_or(load.recipient.as_str(), |(u, _)| u);
    let maildir = server.maildir(user);
    let before = count(&maildir);
    let root = server.root_pid();
    let server_before = root.and_then(cpu::tree_ticks);
    let cpu_before = cpu::sample();
    let client_before = cpu::self_ticks();
    let running = client::start(load)?;
    let start = running.start;
    let mut last = (before, Instant::now());
    let delivered_at = loop {
        let n = count(&maildir);
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
    let delivered = delivered_at.duration_since(start);
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => cpu::usage(
            &a,
            &b,
            delivered,
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
    let extra = count(&maildir).saturating_sub(before + load.messages);
    if extra > 0 {
        eprintln!(
            "moat-bench: {}: {extra} more messages than sent in {} (duplicates)",
            server.name(),
            maildir.display()
        );
    }
    Ok(Run {
        accepted: finished.last_accept.duration_since(start),
        delivered,
        cpu,
    })
}

/// Messages in a Maildir's new/ and cur/ (0 while it does not exist).
fn count(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|sub| std::fs::read_dir(maildir.join(sub)).map_or(0, Iterator::count))
        .sum()
}

/// A free TCP port on 127.0.0.1 (never a standard one: the kernel hands out ephemeral ports).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port")?
        .port())
}

pub fn wait_for_port(port: u16, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "nothing listens on 127.0.0.1:{port} after {} s",
                patience.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The last `lines` lines of a text file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
