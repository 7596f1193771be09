//! `moat-bench lists`: one post to a mailing list of `--subscribers` remote members, fanned out
//! to a loopback SMTP sink, Moat against Postfix in the same run.
//!
//! Moat: a fresh stack (`moat up`, as the relay benchmark starts it: every other domain routed
//! to the sink by the `*` route), a list `list@bench.test` made with `moat list create`, its
//! members written into the store's SQLite file in one transaction (`sqlite3`; `moat list add`
//! per address would take minutes), then one post over SMTP to the list. moat-lists injects it
//! once, with every member and VERP; the queue makes each member's sender at delivery time.
//! Postfix has no list manager: the same message goes in with its `sendmail -XV` (VERP, one
//! transaction per recipient, like the list's) and, as a reference, without VERP (Postfix then
//! puts up to 50 recipients in one transaction), all to the sink through `relayhost`.
//!
//! Measured: the time from the post until the sink has every member as a recipient of a
//! completed transaction ("relayed"), and until the queue is empty again; the queue's disk use
//! (allocated blocks of its files, sampled every 20 ms) and its number of queued message files,
//! both at their peak; the sink's transactions and the recipients it got more than once
//! ("duplicates").

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::relay::sink::Sink;
use crate::report::Table;
use crate::smtp::client::{Load, message};
use crate::smtp::measure::median;
use crate::smtp::rounds::{Frame, machine_line};
use crate::smtp::session::Session;
use crate::smtp::{self, DOMAIN, Only, Options};

/// The list's address.
const LIST: &str = "list";
/// The members' domains: hosted by neither server, routed to the sink by both.
const MEMBER_DOMAIN: &str = "lists.test";
/// How long one post may take to reach everyone.
const PATIENCE: Duration = Duration::from_secs(1800);
/// The most members given to Postfix's sendmail as arguments (about 1 MiB of them, half the
/// usual `ARG_MAX`).
const POSTFIX_MAX: usize = 40_000;
/// The queue's disk use is sampled this often.
const SAMPLE: Duration = Duration::from_millis(20);

#[derive(clap::Args)]
pub struct Args {
    /// Members of the list (the store takes at most 100,000).
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// The members are spread over this many domains (`d0.lists.test`, ...).
    #[arg(long, default_value_t = 10)]
    pub domains: usize,
    /// Size of the post in bytes (headers and body).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Repeat everything this many times (fresh servers each time) and report the median.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Benchmark one server only.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Folder for the servers' data (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where the Moat binaries are (default: beside moat-bench, i.e. target/release).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Keep the servers' folders for inspection.
    #[arg(long)]
    pub keep: bool,
}

/// One fan-out.
#[derive(Clone, Copy)]
struct Fanout {
    /// Until the sink had its first recipient (Moat: the list manager's roster fetch and the
    /// injection come before it).
    first: Duration,
    /// Until the sink had every member.
    relayed: Duration,
    /// Until the queue was empty again.
    emptied: Duration,
    peak_bytes: u64,
    peak_files: usize,
    transactions: usize,
    duplicates: usize,
}

/// One server's fan-outs in one round.
type Round = Vec<(Way, Fanout)>;

/// The ways a post is sent: Moat's list, Postfix with and without VERP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    MoatList,
    PostfixVerp,
    PostfixPlain,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::MoatList => "moat (list post, VERP)",
            Way::PostfixVerp => "postfix (sendmail -XV)",
            Way::PostfixPlain => "postfix (sendmail, no VERP)",
        }
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.subscribers == 0 || args.subscribers > 100_000 || args.domains == 0 {
        bail!("--subscribers must be 1 to 100000 and --domains at least 1");
    }
    let common = smtp::Args {
        messages: args.subscribers,
        sessions: 1,
        size: args.size,
        rounds: args.rounds,
        only: args.only,
        warmup: 0,
        dir: args.dir.clone(),
        bin_dir: args.bin_dir.clone(),
        keep: args.keep,
    };
    let frame = Frame::new(&common, ".moat-bench-lists-")?;
    if frame.servers.contains(&Only::Postfix) && args.subscribers > POSTFIX_MAX {
        bail!(
            "Postfix gets the members as sendmail arguments, at most {POSTFIX_MAX} of them (the \
             kernel's argument space); use --only moat for more"
        );
    }
    if frame.servers.contains(&Only::Moat) && !frame.bin_dir.join("moat-lists").is_file() {
        bail!(
            "moat-lists is not in {}: build with `cargo build --release --workspace`",
            frame.bin_dir.display()
        );
    }
    println!(
        "Lists benchmark: one post of {} bytes to {} members at {} domains, relayed to a loopback \
         sink, {} round(s), in {}",
        args.size,
        args.subscribers,
        args.domains,
        args.rounds,
        frame.base.display()
    );
    println!("{}", machine_line());
    let results = frame.rounds(
        &common,
        |_| Ok(()),
        |_, which, dir| match which {
            Only::Moat => Ok(vec![(Way::MoatList, moat_post(dir, &frame.bin_dir, args)?)]),
            Only::Postfix => {
                let verp = postfix_post(&dir.join("verp"), &frame.bin_dir, args, true)?;
                let plain = postfix_post(&dir.join("plain"), &frame.bin_dir, args, false)?;
                Ok(vec![(Way::PostfixVerp, verp), (Way::PostfixPlain, plain)])
            }
        },
        |runs| {
            runs.iter()
                .map(|(way, f)| {
                    format!(
                        "{}: first at {:.2} s, relayed {:.2} s, queue empty {:.2} s, peak {} KiB in {} message \
                         file(s), {} transactions, {} duplicates",
                        way.label(),
                        f.first.as_secs_f64(),
                        f.relayed.as_secs_f64(),
                        f.emptied.as_secs_f64(),
                        f.peak_bytes / 1024,
                        f.peak_files,
                        f.transactions,
                        f.duplicates
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    )?;
    report(args, &results);
    frame.finish(args.keep);
    Ok(())
}

/// The members' addresses.
fn members(args: &Args) -> impl Iterator<Item = String> + '_ {
    (0..args.subscribers).map(|i| format!("member{i}@d{}.{MEMBER_DOMAIN}", i % args.domains))
}

/// The post: a `Load` message (Message-ID and all) of `--size` bytes.
fn post(args: &Args, to: &str) -> Vec<u8> {
    let load = Load {
        port: 0,
        sessions: 1,
        messages: 1,
        size: args.size,
        sender: format!("sender@{DOMAIN}"),
        recipient: to.to_owned(),
        tag: "post".into(),
        tls: None,
        login: None,
    };
    message(&load, 0, 0)
}

fn moat_post(dir: &Path, bin_dir: &Path, args: &Args) -> Result<Fanout> {
    let sink = Sink::start()?;
    let options = Options {
        sessions: 1,
        tls: None,
        relay_to: Some(sink.port()),
    };
    let mut server = smtp::start(Only::Moat, dir, bin_dir, &options)?;
    let data = dir.join("moat-data");
    let list = format!("{LIST}@{DOMAIN}");
    let moat = |cli: &[&str]| -> Result<()> {
        let out = Command::new(bin_dir.join("moat"))
            .args(cli)
            .env("MOAT_CONFIG", data.join("moat.toml"))
            .stdin(Stdio::null())
            .output()
            .context("running the moat CLI")?;
        if !out.status.success() {
            bail!(
                "moat {} failed: {}",
                cli.join(" "),
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(())
    };
    moat(&["list", "create", &list])?;
    add_members(&data.join("db/users.db"), args)?;
    let queue = data.join("queue");
    let start = Instant::now();
    let mut smtp = Session::open(server.port(), None, None)?;
    smtp.command(
        Some(format!("MAIL FROM:<sender@{DOMAIN}>\r\n").as_bytes()),
        250,
        "MAIL",
    )?;
    smtp.command(
        Some(format!("RCPT TO:<{list}>\r\n").as_bytes()),
        250,
        "RCPT",
    )?;
    smtp.command(Some(b"DATA\r\n"), 354, "DATA")?;
    let mut data_bytes = post(args, &list);
    data_bytes.extend_from_slice(b".\r\n");
    smtp.command(Some(&data_bytes), 250, "end of data")?;
    smtp.command(Some(b"QUIT\r\n"), 221, "QUIT")?;
    let fanout = watch(start, &sink, args.subscribers, &queue, &["mess"], &|| {
        count_files(&queue.join("env"))
    })
    .with_context(|| format!("moat's log:\n{}", server.log_tail()))?;
    server.stop()?;
    Ok(fanout)
}

/// Writes the members into the list's roster in one transaction (the CLI's `list add` is one
/// transaction per address).
fn add_members(db: &Path, args: &Args) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut sql = String::from("BEGIN;\n");
    for address in members(args) {
        sql.push_str(&format!(
            "INSERT INTO list_members (list_id, address, kind, added_at) \
             SELECT id, '{address}', 'member', {now} FROM lists WHERE local_part = '{LIST}';\n"
        ));
    }
    sql.push_str("COMMIT;\n");
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running sqlite3 (apt-get install sqlite3)")?;
    if let Some(mut input) = child.stdin.take() {
        std::io::Write::write_all(&mut input, sql.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

fn postfix_post(dir: &Path, bin_dir: &Path, args: &Args, verp: bool) -> Result<Fanout> {
    let sink = Sink::start()?;
    let options = Options {
        sessions: 1,
        tls: None,
        relay_to: Some(sink.port()),
    };
    let mut server = smtp::start(Only::Postfix, dir, bin_dir, &options)?;
    let queue = dir.join("queue");
    let start = Instant::now();
    let mut sendmail = Command::new("/usr/sbin/sendmail");
    sendmail
        .arg("-C")
        .arg(dir.join("etc"))
        .arg("-f")
        .arg(format!("{LIST}-return@{DOMAIN}"));
    if verp {
        sendmail.arg("-XV");
    }
    sendmail.arg("--").args(members(args));
    let mut child = sendmail
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running Postfix's sendmail")?;
    if let Some(mut input) = child.stdin.take() {
        std::io::Write::write_all(&mut input, &post(args, &format!("{LIST}@{DOMAIN}")))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "Postfix's sendmail failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let queues = ["maildrop", "incoming", "active", "deferred", "hold"];
    let fanout = watch(start, &sink, args.subscribers, &queue, &queues, &|| {
        queues.iter().map(|q| count_files(&queue.join(q))).sum()
    })
    .with_context(|| format!("Postfix's log:\n{}", server.log_tail()))?;
    server.stop()?;
    Ok(fanout)
}

/// Samples the queue until the sink has `expected` recipients and `queued()` is 0.
fn watch(
    start: Instant,
    sink: &Sink,
    expected: usize,
    queue: &Path,
    message_dirs: &[&str],
    queued: &dyn Fn() -> usize,
) -> Result<Fanout> {
    let mut peak_bytes = 0;
    let mut peak_files = 0;
    let mut relayed = None;
    let mut first = None;
    loop {
        peak_bytes = peak_bytes.max(disk_use(queue));
        peak_files = peak_files.max(
            message_dirs
                .iter()
                .map(|d| count_files(&queue.join(d)))
                .sum(),
        );
        let got = sink.recipients();
        if first.is_none() && got > 0 {
            first = Some(start.elapsed());
        }
        if relayed.is_none() && got >= expected {
            relayed = Some(start.elapsed());
        }
        if let Some(relayed) = relayed
            && queued() == 0
        {
            return Ok(Fanout {
                first: first.unwrap_or(relayed),
                relayed,
                emptied: start.elapsed(),
                peak_bytes,
                peak_files,
                transactions: sink.transactions(),
                duplicates: sink.recipient_repeats(),
            });
        }
        if start.elapsed() > PATIENCE {
            bail!(
                "after {} s the sink has {got} of {expected} recipients and {} message(s) are queued",
                PATIENCE.as_secs(),
                queued()
            );
        }
        std::thread::sleep(SAMPLE);
    }
}

/// Files in `dir` and its subfolders (Postfix hashes `deferred/` into some); 0 if it cannot be
/// read.
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// The blocks allocated to every file under `dir`, in bytes (what `du` counts).
fn disk_use(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.filter_map(Result::ok) {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            total += disk_use(&entry.path());
        } else {
            total += meta.blocks() * 512;
        }
    }
    total
}

fn report(args: &Args, results: &[(Only, Vec<Round>)]) {
    let mut table = Table::new(&[
        "server",
        "first at s",
        "relayed in s",
        "recipients/s",
        "queue empty in s",
        "peak queue KiB",
        "queued message files",
        "sink transactions",
        "duplicates",
    ]);
    for (_, rounds) in results {
        let Some(first) = rounds.first() else {
            continue;
        };
        for (i, (way, _)) in first.iter().enumerate() {
            let runs: Vec<Fanout> = rounds
                .iter()
                .filter_map(|r| r.get(i))
                .map(|r| r.1)
                .collect();
            let first_at = median(runs.iter().map(|r| r.first).collect());
            let relayed = median(runs.iter().map(|r| r.relayed).collect());
            let emptied = median(runs.iter().map(|r| r.emptied).collect());
            let mut bytes: Vec<u64> = runs.iter().map(|r| r.peak_bytes).collect();
            bytes.sort_unstable();
            let mid = |v: &[usize]| {
                let mut v = v.to_vec();
                v.sort_unstable();
                v[v.len() / 2]
            };
            table.row(vec![
                way.label().to_owned(),
                format!("{:.2}", first_at.as_secs_f64()),
                format!("{:.2}", relayed.as_secs_f64()),
                format!("{:.0}", args.subscribers as f64 / relayed.as_secs_f64()),
                format!("{:.2}", emptied.as_secs_f64()),
                (bytes[bytes.len() / 2] / 1024).to_string(),
                mid(&runs.iter().map(|r| r.peak_files).collect::<Vec<_>>()).to_string(),
                mid(&runs.iter().map(|r| r.transactions).collect::<Vec<_>>()).to_string(),
                mid(&runs.iter().map(|r| r.duplicates).collect::<Vec<_>>()).to_string(),
            ]);
        }
    }
    println!();
    print!("{}", table.render());
    println!(
        "\nMedian of {} round(s). \"relayed\": from the post (Moat: MAIL FROM of the SMTP post to \
         the list; Postfix: sendmail started) until the sink had every member as a recipient, \
         \"first at\" until it had the first; \"queue empty\": until no message was queued. Peak queue: the allocated blocks of every \
         file in the queue folder, sampled every {} ms; message files: Moat's mess/, Postfix's \
         maildrop, incoming, active, deferred and hold.",
        args.rounds,
        SAMPLE.as_millis()
    );
}
