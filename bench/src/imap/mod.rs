//! `moat-bench imap`: moat-imapd side by side with a private Dovecot imap over copies of the same
//! large folder (docs/BENCHMARKS.md "IMAP").
//!
//! One Maildir of `--count` varied messages (`corpus.rs`, `templates.rs`) is written once per
//! server (Moat's copy owned by its mail user, Dovecot's by its own) and never changed: each cold
//! step runs on a fresh hard-linked copy (`fetches.rs`). Timed, per round and server (the order
//! alternating): SELECT + `UID FETCH 1:* (FLAGS)` cold and warm, SELECT + `FETCH 1:* (ENVELOPE)`
//! cold and warm, `SEARCH TEXT` warm; medians reported. Then the memory of `--idle` logged-in,
//! silent connections (`memory.rs`): the server's process tree before and while they are open.
//! Both servers check the same argon2id hash (the one Moat's store holds), plaintext on
//! loopback; both are stopped (children included) on every exit, Ctrl-C too.

mod client;
mod corpus;
mod fetches;
mod memory;
mod report;
mod templates;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::runtime::Runtime;

use crate::pop3::servers::{self, DOMAIN, PASSWORD, Protocol, Server};
use crate::smtp::guard;
use fetches::{Round, Target};

#[derive(Parser)]
#[command(after_help = "Examples:\n  cargo build --release --workspace\n  \
    ./target/release/moat-bench imap                     # 50,000 messages, 5,000 idle connections\n  \
    ./target/release/moat-bench imap --count 5000 --idle 500 --rounds 1   # a quick look")]
pub struct Args {
    /// Messages in the folder.
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Distinct message templates (MIME shapes and bodies) the folder is made of.
    #[arg(long, default_value_t = 300)]
    templates: usize,
    /// Rounds of the timed commands (each with fresh cold copies); medians reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Idle logged-in connections for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 5000)]
    idle: usize,
    /// Logins in flight while the idle connections are opened.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Folder holding moat and its moat-* programs (default: next to moat-bench).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Work folder, kept afterwards (default: a temporary folder, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The user whose INBOX is the large folder, and the one the idle connections log in as.
const BULK: &str = "bulk";
const IDLE: &str = "idle";

pub fn run(args: &Args) -> Result<()> {
    if args.count == 0 || args.rounds == 0 {
        bail!("--count and --rounds must be at least 1");
    }
    raise_fd_limit(args.idle)?;
    let bin_dir = crate::smtp::rounds::bin_dir(args.bin_dir.as_deref())?;
    let tmp = tempfile::Builder::new()
        .prefix("moat-bench-imap")
        .tempdir()?;
    let base = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&base)?;
    // Ctrl-C stops the servers (they register themselves) and removes a temporary folder.
    guard::remove_on_signal(args.dir.is_none().then(|| base.clone()));
    let room = args.idle + 100;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let moat = servers::Moat::start(
        &base.join("moat"),
        &bin_dir,
        // The defaults (200 connections, 20 per address) are SMTP's; the idle test needs room.
        &format!("[limits]\nmax_connections = {room}\nmax_connections_per_ip = {room}\n"),
    )?;
    moat.admin(&["domain", "add", DOMAIN], "")?;
    for u in [BULK, IDLE] {
        moat.admin(
            &["user", "add", &format!("{u}@{DOMAIN}"), "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )?;
    }
    let moat_domain = moat.data.join("mail").join(DOMAIN);
    let moat_pristine = base.join("pristine-moat");
    eprintln!(
        "writing {} messages from {} templates",
        args.count, args.templates
    );
    let corpus = corpus::write(&moat_pristine, args.count, args.templates)?;
    // The pristine folders are never served; Dovecot gets its own copy (its own owner: hard
    // links would share Moat's).
    let dove_dir = base.join("dovecot");
    let dove_mail = dove_dir.join("mail");
    let dove_pristine = dove_mail.join("pristine");
    std::fs::create_dir_all(dove_mail.join(DOMAIN).join(BULK))?;
    copy(&moat_pristine, &dove_pristine)?;
    std::fs::create_dir_all(moat_domain.join(BULK))?;
    let mail = moat.data.join("mail");
    chown(&mail, &moat_domain)?;
    chown(&mail, &moat_pristine)?;
    // Hard links need both in one file system: keep the pristine copy beside the mailboxes.
    let moat_pristine_final = moat_domain.join("pristine");
    std::fs::rename(&moat_pristine, &moat_pristine_final)?;
    let hash = moat.password_hash(BULK)?;
    let dovecot = servers::dovecot(
        &dove_dir,
        &dove_mail,
        &[BULK, IDLE],
        &hash,
        Protocol::Imap,
        &dovecot_extra(room),
    )?;
    let user = format!("{BULK}@{DOMAIN}");
    let moat_target = Target {
        port: moat.imap_port,
        root: moat.server.pid(),
        user: &user,
        password: PASSWORD,
        work: &moat_domain.join(BULK).join("Maildir"),
        pristine: &moat_pristine_final,
        count: args.count,
        search: templates::SEARCH_WORD,
    };
    let dove_target = Target {
        port: dovecot.port,
        root: dovecot.pid(),
        work: &dove_mail.join(DOMAIN).join(BULK).join("Maildir"),
        pristine: &dove_pristine,
        ..moat_target
    };

    let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for r in 0..args.rounds {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (name, target) = [("moat", &moat_target), ("dovecot", &dove_target)][i];
            let result =
                fetches::round(&rt, target).with_context(|| format!("{name}, round {}", r + 1))?;
            eprintln!(
                "round {}/{} {name:<8} {}",
                r + 1,
                args.rounds,
                report::line(&result)
            );
            rounds[i].push(result);
        }
    }

    let idle = if args.idle > 0 {
        Some([
            idle_memory(&rt, &moat.server, moat.imap_port, args)?,
            idle_memory(&rt, &dovecot, dovecot.port, args)?,
        ])
    } else {
        None
    };
    drop(dovecot);
    drop(moat);

    print!(
        "{}",
        report::render(args, &corpus, &rounds, idle.as_ref(), &report::machine())
    );
    if let Some(dir) = &args.dir {
        println!("Kept {}", dir.display());
    }
    Ok(())
}

/// Dovecot's defaults, except what taking `room` connections needs: a process per connection
/// (`service imap`'s process_limit, 1024 by default), every imap process a client of the stats
/// and other services (default_client_limit, 1000 by default), and all of them one user from one
/// address (mail_max_userip_connections, 10 by default).
fn dovecot_extra(room: usize) -> String {
    format!(
        "default_client_limit = {}\nservice imap {{\n  process_limit = {room}\n}}\n\
         protocol imap {{\n  mail_max_userip_connections = {room}\n}}\n",
        room.max(1000) + 1000
    )
}

/// The memory of `n` idle logged-in connections: the tree before (after a burst of logins as
/// parallel as the measured ones, opened and closed, so that what logins leave behind whatever
/// the number of connections, such as allocator arenas of the password hashing, is in the
/// baseline) and with them open; per program also from the first login, before that burst
/// (the burst's connections may leave memory the measured ones reuse: at most its share).
fn idle_memory(rt: &Runtime, server: &Server, port: u16, args: &Args) -> Result<report::Idle> {
    let user = format!("{IDLE}@{DOMAIN}");
    let warmup = (args.parallel * 25).min(args.idle);
    eprintln!("{}: {warmup} warm-up logins", server.name);
    // One login first (it creates the Maildir): the start of the per-program growth.
    rt.block_on(memory::open_idle(port, &user, PASSWORD, 1, 1))?;
    let first = memory::tree(server.pid());
    rt.block_on(async {
        let open = memory::open_idle(port, &user, PASSWORD, warmup, args.parallel).await?;
        drop(open);
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        anyhow::Ok(())
    })?;
    let before = memory::tree(server.pid());
    eprintln!(
        "{}: opening {} idle connections ({} logins at a time)",
        server.name, args.idle, args.parallel
    );
    let start = std::time::Instant::now();
    let open = rt.block_on(memory::open_idle(
        port,
        &user,
        PASSWORD,
        args.idle,
        args.parallel,
    ))?;
    let login_time = start.elapsed();
    let after = memory::tree(server.pid());
    drop(open);
    Ok(report::Idle {
        before: before.0,
        after: after.0,
        split_first: first.1,
        split_before: before.1,
        split_after: after.1,
        connections: args.idle,
        login_time,
    })
}

/// The idle test holds thousands of sockets in this process, and the servers (started from it)
/// inherit the limit: soft up to the hard limit.
fn raise_fd_limit(idle: usize) -> Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    let need = idle as u64 * 2 + 1000;
    if hard.is_some_and(|h| h < need) {
        bail!(
            "the hard limit on open files ({}) is too low for {idle} idle connections; \
             raise it (ulimit -Hn) or lower --idle",
            hard.unwrap_or(0)
        );
    }
    setrlimit(
        Resource::Nofile,
        rustix::process::Rlimit {
            current: hard,
            maximum: hard,
        },
    )
    .context("raising the open-file limit")?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("cp -a {} {} failed", from.display(), to.display());
    }
    Ok(())
}

/// Gives `path` (recursively) to the owner of `like`: as root Moat runs as its mail user.
fn chown(like: &Path, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(like)?;
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", meta.uid(), meta.gid()))
        .arg(path)
        .status()?;
    if !status.success() {
        bail!("chown of {} failed", path.display());
    }
    Ok(())
}
