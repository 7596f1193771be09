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

pub mod client;
pub mod cpu;
pub mod guard;
pub mod measure;
mod moat;
mod postfix;
pub mod rounds;
pub mod session;
pub mod tls;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use self::measure::{Run, cpu_cells, describe, measure, median_run, rate, ratios};
use self::rounds::{Frame, machine_line};
use self::tls::Certificate;
use crate::maildir::{self as md, Measurement};
use crate::report::Table;

/// The virtual domain both servers host for the benchmark.
pub const DOMAIN: &str = "bench.test";
/// Its mailboxes: the measured one, the warm-up one, and the envelope sender (local, so that
/// even a bounce would stay on the machine).
pub const USERS: &[&str] = &["bench", "warmup", "sender"];
/// Every bench user's password (Moat's submission logs in with it).
pub const PASSWORD: &str = "moat-bench-not-a-secret";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Moat,
    Postfix,
}

/// The options of the side-by-side benchmarks (`smtp`, `relay`).
#[derive(clap::Args)]
pub struct Args {
    /// Messages in the measured load.
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Parallel SMTP sessions; each sends its share of the messages, one after another.
    #[arg(long, visible_alias = "concurrency", default_value_t = 20)]
    pub sessions: usize,
    /// Message size in bytes (headers and body, CRLF line ends).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Repeat everything this many times (a fresh server each time) and report the median.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Benchmark one server only.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Messages sent (over the same number of sessions, to another destination) before each
    /// measurement, so that processes are started and caches warm; 0 to skip.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// Folder holding the servers' data (and the smtp benchmark's raw fsync test; default: the
    /// system's temporary folder); pick the disk you want measured. Removed afterwards unless
    /// --keep.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where the Moat binaries are (default: beside moat-bench, i.e. target/release).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Keep the servers' folders (queues, Maildirs, logs) for inspection; servers are still stopped.
    #[arg(long)]
    pub keep: bool,
}

/// How a server is set up beyond the bench domain and its users.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Parallel client sessions the load opens (connection limits must admit them).
    pub sessions: usize,
    /// Offer STARTTLS with this certificate.
    pub tls: Option<&'a Certificate>,
    /// Send every recipient outside the bench domain to 127.0.0.1 at this port, plaintext
    /// (Moat: the `*` route; Postfix: `relayhost`).
    pub relay_to: Option<u16>,
}

/// A running server under test.
pub trait Server {
    fn name(&self) -> &'static str;
    /// Its SMTP port on 127.0.0.1 (the MX: local recipients only).
    fn port(&self) -> u16;
    /// Where a client on 127.0.0.1 may relay: Moat's submission port (after STARTTLS and
    /// AUTH), Postfix's smtpd (127.0.0.0/8 is in mynetworks).
    fn relay_port(&self) -> u16;
    /// Whether relaying needs AUTH.
    fn relay_needs_login(&self) -> bool;
    /// The Maildir of `user@DOMAIN`.
    fn maildir(&self, user: &str) -> PathBuf;
    /// The end of its log, for error messages.
    fn log_tail(&self) -> String;
    /// Stops it and checks nothing is left running.
    fn stop(&mut self) -> Result<()>;
    /// The process whose children are the server's processes (the supervisor, Postfix's master).
    fn root_pid(&self) -> Option<u32>;
}

/// Starts `which` in `dir`.
pub fn start(
    which: Only,
    dir: &Path,
    bin_dir: &Path,
    options: &Options<'_>,
) -> Result<Box<dyn Server>> {
    Ok(match which {
        Only::Moat => Box::new(moat::Moat::start(dir, bin_dir, options)?),
        Only::Postfix => Box::new(postfix::Postfix::start(dir, options)?),
    })
}

pub fn run(args: &Args) -> Result<()> {
    let frame = Frame::new(args, ".moat-bench-smtp-")?;
    let base = frame.base.clone();
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
    println!("{}", machine_line());

    let fsync_sample = md::sample_message(args.size);
    let mut disk: [Vec<Measurement>; 3] = Default::default();
    let results = frame.rounds(
        args,
        |round| {
            let r = |name: &str| format!("{name}-{round}");
            let raw = |label: &str, threads: usize, dir_fsync: bool| {
                md::raw(
                    &base,
                    &r(label),
                    args.messages,
                    threads,
                    &fsync_sample,
                    dir_fsync,
                )
            };
            disk[0].push(raw("raw-file-1", 1, false)?);
            disk[1].push(raw("raw-dir-1", 1, true)?);
            disk[2].push(raw("raw-dir-n", args.sessions, true)?);
            Ok(())
        },
        |round, which, dir| bench_one(which, dir, &frame.bin_dir, args, round),
        |run| describe(run, args.messages, "delivered"),
    )?;
    report(args, &results, disk);
    frame.finish(args.keep);
    Ok(())
}

/// The medians: servers side by side with their ratio, then the disk.
fn report(args: &Args, results: &[(Only, Vec<Run>)], disk: [Vec<Measurement>; 3]) {
    let [file_1, dir_1, dir_n] = disk.map(md::median);
    let summaries: Vec<(Only, Run)> = results
        .iter()
        .map(|(which, runs)| (*which, median_run(runs)))
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
    for (which, s) in &summaries {
        let delivered_rate = rate(args.messages, s.delivered);
        let [busy, machine, own] = cpu_cells(s.cpu, args.messages);
        table.row(vec![
            name(*which).to_owned(),
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
    if let [(_, moat), (_, postfix)] = summaries.as_slice() {
        let [accepted, delivered] = ratios(moat, postfix);
        table.row(vec!["moat ÷ postfix".to_owned(), accepted, delivered]);
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

pub fn name(which: Only) -> &'static str {
    match which {
        Only::Moat => "moat",
        Only::Postfix => "postfix",
    }
}

/// Starts one server in `dir`, warms it up, measures, stops it.
fn bench_one(which: Only, dir: &Path, bin_dir: &Path, args: &Args, round: usize) -> Result<Run> {
    let options = Options {
        sessions: args.sessions,
        tls: None,
        relay_to: None,
    };
    let mut server = start(which, dir, bin_dir, &options)?;
    let load = |user: &str, messages: usize, tag: &str| client::Load {
        port: server.port(),
        sessions: args.sessions,
        messages,
        size: args.size,
        sender: format!("sender@{DOMAIN}"),
        recipient: format!("{user}@{DOMAIN}"),
        tag: format!("r{}-{tag}", round + 1),
        tls: None,
        login: None,
    };
    let to_maildir = |load: &client::Load| -> Result<Run> {
        let user = load
            .recipient
            .split_once('@')
            .map_or(load.recipient.as_str(), |(u, _)| u);
        let maildir = server.maildir(user);
        let place = format!("in {}", maildir.display());
        let (run, _) = measure(server.as_ref(), load, &|| count(&maildir), &place)?;
        Ok(run)
    };
    if args.warmup > 0 {
        to_maildir(&load("warmup", args.warmup, "warmup"))
            .with_context(|| format!("warming up {}", server.name()))?;
    }
    let run = to_maildir(&load("bench", args.messages, "load"))
        .with_context(|| format!("measuring {}", server.name()))?;
    server.stop()?;
    Ok(run)
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
