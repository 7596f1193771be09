//! The frame of a side-by-side benchmark run, shared by `smtp` and `relay`: the temporary folder
//! (removed on Ctrl-C too), the machine line, and the rounds, each starting fresh servers in
//! fresh folders with the order of the servers alternating so neither always runs first.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use super::{Args, Only, cpu, guard, name};

/// A run's folder, its binaries and the servers to measure.
pub struct Frame {
    pub base: PathBuf,
    pub bin_dir: PathBuf,
    pub servers: Vec<Only>,
    holder: TempDir,
}

impl Frame {
    /// Checks the arguments and makes a fresh folder named `<prefix>` plus a random suffix in `--dir`.
    pub fn new(args: &Args, prefix: &str) -> Result<Frame> {
        if args.messages == 0 || args.sessions == 0 || args.rounds == 0 {
            bail!("--messages, --sessions and --rounds must be at least 1");
        }
        if args.size < 512 {
            bail!("--size must be at least 512 bytes (the headers take about 300)");
        }
        let bin_dir = bin_dir(args.bin_dir.as_deref())?;
        let servers = match args.only {
            Some(one) => vec![one],
            None => vec![Only::Moat, Only::Postfix],
        };
        let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let holder = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .with_context(|| format!("temp dir in {}", parent.display()))?;
        // Servers' unprivileged users must be able to reach their folders inside.
        std::fs::set_permissions(holder.path(), std::fs::Permissions::from_mode(0o755))?;
        let base = holder.path().to_path_buf();
        // From here on, Ctrl-C stops the servers and removes the folder instead of leaving them.
        guard::remove_on_signal((!args.keep).then(|| base.clone()));
        Ok(Frame {
            base,
            bin_dir,
            servers,
            holder,
        })
    }

    /// Runs every round: `before_round(round)` first, then `one(round, server, folder)` for each
    /// server in alternating order, printing `show(result)` per server and removing its folder
    /// unless --keep. Results are grouped by server, in `self.servers` order.
    pub fn rounds<R>(
        &self,
        args: &Args,
        mut before_round: impl FnMut(usize) -> Result<()>,
        mut one: impl FnMut(usize, Only, &Path) -> Result<R>,
        show: impl Fn(&R) -> String,
    ) -> Result<Vec<(Only, Vec<R>)>> {
        let mut results: Vec<(Only, Vec<R>)> =
            self.servers.iter().map(|s| (*s, Vec::new())).collect();
        for round in 0..args.rounds {
            before_round(round)?;
            let mut order: Vec<usize> = (0..results.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let which = results[i].0;
                let dir = self
                    .base
                    .join(format!("round{}-{}", round + 1, name(which)));
                let result = one(round, which, &dir)?;
                println!(
                    "round {}/{}  {:<8} {}",
                    round + 1,
                    args.rounds,
                    name(which),
                    show(&result)
                );
                results[i].1.push(result);
                if !args.keep {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("removing {}", dir.display()))?;
                }
            }
        }
        Ok(results)
    }

    /// Keeps the folder when asked to (it is removed otherwise).
    pub fn finish(self, keep: bool) {
        if keep {
            println!("Kept {}", self.holder.keep().display());
        }
    }
}

/// Where the Moat programs are: `--bin-dir`, or beside moat-bench (target/release).
pub fn bin_dir(arg: Option<&Path>) -> Result<PathBuf> {
    match arg {
        Some(d) => Ok(d.to_path_buf()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("moat-bench has no folder")?
            .to_path_buf()),
    }
}

/// The CPU count and load average: both servers are CPU-bound on small machines, so anything
/// else running skews the figures.
pub fn machine_line() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{} CPUs, load average {} before the run",
        cpu::sample().map_or(0, |c| c.cpus),
        load.join(" ")
    )
}
