//! `moat-bench maildir`: how fast Maildir delivery is compared with what the disk allows.
//!
//! A durable delivery costs at least one file fsync (the message) and one directory fsync (the rename
//! that commits it). So the reference is the disk's raw rate for exactly that work without Maildir:
//! "file fsync" (create + write + fsync + close) and "file+dir fsync" (the same, then rename into a
//! second directory and fsync it). Delivery is then measured with 1 and with N threads; the ratio
//! delivery / raw says how much of the disk's capability Maildir's own work (names, link+unlink,
//! sizes) costs. With several threads the file system can merge concurrent fsyncs into one journal
//! commit, so parallel rates can exceed the single-thread raw rate; compare like with like.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use moat_maildir::Maildir;

use crate::report::Table;

#[derive(clap::Args)]
pub struct Args {
    /// Operations per measurement (files written, messages delivered), split across threads.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Message / file size in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Threads for the parallel runs (the single-thread runs always happen too).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Repeat every measurement this many times, interleaved, and report the median (shared disks are
    /// noisy; interleaving spreads slow periods over all tests alike).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Directory to work in (default: the current directory, i.e. the same disk). The benchmark works
    /// in a temporary sub-directory that it removes afterwards.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) struct Measurement {
    pub(crate) ops: usize,
    pub(crate) elapsed: Duration,
}

impl Measurement {
    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.count == 0 || args.threads == 0 || args.rounds == 0 {
        bail!("--count, --threads and --rounds must be at least 1");
    }
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    // Removed on drop, also when a measurement fails.
    let holder = tempfile::Builder::new()
        .prefix(".moat-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("temp dir in {}", parent.display()))?;
    let base = holder.path().to_path_buf();
    let message = sample_message(args.size);
    let n = args.threads;

    println!(
        "Maildir delivery benchmark: {} ops of {} bytes, {} parallel threads, in {} ({})",
        args.count,
        args.size,
        n,
        base.display(),
        fs_name(&base)
    );

    let mut runs: [Vec<Measurement>; 6] = Default::default();
    for round in 0..args.rounds {
        let r = |name: &str| format!("{name}-{round}");
        runs[0].push(raw(
            &base,
            &r("raw-file-1"),
            args.count,
            1,
            &message,
            false,
        )?);
        runs[1].push(raw(
            &base,
            &r("raw-file-n"),
            args.count,
            n,
            &message,
            false,
        )?);
        runs[2].push(raw(&base, &r("raw-dir-1"), args.count, 1, &message, true)?);
        runs[3].push(raw(&base, &r("raw-dir-n"), args.count, n, &message, true)?);
        runs[4].push(deliver(&base, &r("maildir-1"), args.count, 1, &message)?);
        runs[5].push(deliver(&base, &r("maildir-n"), args.count, n, &message)?);
    }
    let [
        raw_file_1,
        raw_file_n,
        raw_dir_1,
        raw_dir_n,
        deliver_1,
        deliver_n,
    ] = runs.map(median);

    let mut table = Table::new(&[
        "test",
        "threads",
        "ops",
        "seconds",
        "ops/s",
        "µs/op",
        "÷ file fsync",
        "÷ file+dir fsync",
    ]);
    let mut add = |name: &str,
                   threads: usize,
                   m: &Measurement,
                   ratios: Option<(&Measurement, &Measurement)>| {
        let (r1, r2) = match ratios {
            Some((a, b)) => (
                format!("{:.2}", m.rate() / a.rate()),
                format!("{:.2}", m.rate() / b.rate()),
            ),
            None => (String::new(), String::new()),
        };
        table.row(vec![
            name.to_owned(),
            threads.to_string(),
            m.ops.to_string(),
            format!("{:.3}", m.elapsed.as_secs_f64()),
            format!("{:.0}", m.rate()),
            format!("{:.0}", 1e6 * threads as f64 / m.rate()),
            r1,
            r2,
        ]);
    };
    add("raw file fsync", 1, &raw_file_1, None);
    add("raw file fsync", n, &raw_file_n, None);
    add("raw file+dir fsync", 1, &raw_dir_1, None);
    add("raw file+dir fsync", n, &raw_dir_n, None);
    add(
        "maildir deliver",
        1,
        &deliver_1,
        Some((&raw_file_1, &raw_dir_1)),
    );
    add(
        "maildir deliver",
        n,
        &deliver_n,
        Some((&raw_file_n, &raw_dir_n)),
    );
    println!();
    print!("{}", table.render());
    println!(
        "\nMedian of {} rounds. Ratios compare with the raw run of the same thread count. µs/op is per thread (latency).",
        args.rounds
    );
    Ok(())
}

/// The run with the median rate.
pub(crate) fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// A plausible message of exactly `size` bytes (headers, then LF-terminated lines).
pub(crate) fn sample_message(size: usize) -> Vec<u8> {
    let mut m = b"Return-Path: <bench@example.org>\nFrom: bench@example.org\nTo: user@example.org\nSubject: benchmark\n\n"
        .to_vec();
    let line = b"The quick brown fox jumps over the lazy dog 0123456789.\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m.truncate(size);
    m
}

/// Splits `count` operations over `threads` threads running `work(thread, ops)`; times the whole.
fn parallel(
    count: usize,
    threads: usize,
    work: impl Fn(usize, usize) -> Result<()> + Send + Sync,
) -> Result<Measurement> {
    let work = Arc::new(work);
    let start = Instant::now();
    thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ops = count / threads + usize::from(t < count % threads);
                let work = Arc::clone(&work);
                s.spawn(move || work(t, ops))
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(Measurement {
        ops: count,
        elapsed: start.elapsed(),
    })
}

/// Raw disk work: create+write+fsync+close, and with `commit_dir` also rename into a second directory
/// and fsync that directory (what committing a delivery needs). Also used by the `smtp` benchmark.
pub(crate) fn raw(
    base: &Path,
    name: &str,
    count: usize,
    threads: usize,
    data: &[u8],
    commit_dir: bool,
) -> Result<Measurement> {
    let work_dir = base.join(name);
    let (tmp, dst) = (work_dir.join("tmp"), work_dir.join("new"));
    fs::create_dir_all(&tmp)?;
    fs::create_dir_all(&dst)?;
    let m = parallel(count, threads, |t, ops| {
        for i in 0..ops {
            let file_name = format!("{t}-{i}");
            let path = tmp.join(&file_name);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            if commit_dir {
                fs::rename(&path, dst.join(&file_name))?;
                File::open(&dst)?.sync_all()?;
            }
        }
        Ok(())
    })?;
    fs::remove_dir_all(&work_dir)?;
    Ok(m)
}

fn deliver(
    base: &Path,
    name: &str,
    count: usize,
    threads: usize,
    data: &[u8],
) -> Result<Measurement> {
    let md = Maildir::create(base.join(name))?;
    let m = parallel(count, threads, |_, ops| {
        for _ in 0..ops {
            md.deliver(data)?;
        }
        Ok(())
    })?;
    let delivered = md.list()?.len();
    if delivered != count {
        bail!("expected {count} messages, found {delivered}");
    }
    fs::remove_dir_all(md.path())?;
    Ok(m)
}

/// The file system type, for the report.
pub(crate) fn fs_name(path: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(path) else {
        return "unknown fs".to_owned();
    };
    #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets
    let magic = st.f_type as i64;
    match magic {
        0xEF53 => "ext4/ext3".to_owned(),
        0x5846_5342 => "xfs".to_owned(),
        0x9123_683E => "btrfs".to_owned(),
        0x0102_1994 => "tmpfs".to_owned(),
        0x794C_7630 => "overlayfs".to_owned(),
        0x2FC1_2FC1 => "zfs".to_owned(),
        0x6969 => "nfs".to_owned(),
        other => format!("fs magic {other:#x}"),
    }
}
