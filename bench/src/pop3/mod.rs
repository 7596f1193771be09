//! `moat-bench pop3`: RETR throughput and login rate of moat-pop3d, side by side with a private
//! Dovecot pop3 over a copy of the same Maildir (docs/BENCHMARKS.md "POP3").
//!
//! One mailbox of `--count` messages of `--size` bytes is written with the maildir crate into a
//! Moat stack's mail folder, then copied (`cp -a`) for Dovecot. RETR: one session retrieves
//! every message in order, request/response as fetchers do (no pipelining), `--rounds` times
//! after one warm-up round, median reported; the session ends without QUIT so every round sees
//! the same maildrop. Logins: `--logins` sessions of USER/PASS/STAT/QUIT over `--threads`
//! parallel connections, each thread with its own empty mailbox; both servers check the same
//! argon2id hash (Moat through moat-auth, Dovecot through a passwd-file).
//!
//! With `--tls` the same measurements run over implicit TLS (pop3s) for both: Moat's `pop3s`
//! listener and a Dovecot `inet_listener pop3s` with `ssl = required`, both presenting the
//! self-signed certificate `moat up` made; the client (rustls, ring) trusts exactly that one and
//! resumes no sessions, so every login includes a full handshake.

mod client;
pub mod servers;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use rustls::ClientConfig;

use crate::report::Table;
use client::Pop;
use servers::{DOMAIN, PASSWORD};

#[derive(Parser)]
#[command(after_help = "Examples:\n  cargo build --release --workspace\n  \
    ./target/release/moat-bench pop3                    # 2000 x 50 KB, 200 logins\n  \
    ./target/release/moat-bench pop3 --count 500 --rounds 5 --threads 2\n  \
    ./target/release/moat-bench pop3 --tls              # the same over implicit TLS (pop3s)")]
pub struct Args {
    /// Messages in the mailbox.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Size of each message in bytes.
    #[arg(long, default_value_t = 50 * 1024)]
    size: usize,
    /// Measured RETR rounds (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Logins to time.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Parallel connections for the login test.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Measure both servers over implicit TLS (pop3s) instead of plaintext.
    #[arg(long)]
    tls: bool,
    /// Folder holding moat and its moat-* programs (default: next to moat-bench).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Work folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Where and how the client reaches one server.
struct Target {
    name: &'static str,
    port: u16,
    /// Implicit TLS with this client configuration; plaintext without.
    tls: Option<Arc<ClientConfig>>,
}

struct Figures {
    retr: Duration,
    octets: u64,
    logins: Duration,
    /// The negotiated TLS version and cipher suite, over TLS.
    tls: Option<String>,
}

fn retr_round(target: &Target, count: usize) -> Result<(Duration, u64)> {
    let mut p = Pop::connect(target.port, target.tls.as_ref())?;
    p.login(&format!("bulk@{DOMAIN}"), PASSWORD)?;
    let stat = p.cmd("STAT")?;
    if !stat.starts_with(&format!("+OK {count} ")) {
        bail!("expected {count} messages, got {stat}");
    }
    let start = Instant::now();
    let mut octets = 0;
    for n in 1..=count {
        octets += p.retr(n)?;
    }
    // No QUIT: nothing is marked Seen, the next round sees the same maildrop.
    Ok((start.elapsed(), octets))
}

fn login_run(target: &Target, total: usize, threads: usize) -> Result<Duration> {
    let start = Instant::now();
    let per = total.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (port, tls) = (target.port, target.tls.clone());
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..per {
                    let mut p = Pop::connect(port, tls.as_ref())?;
                    p.login(&format!("login{t}@{DOMAIN}"), PASSWORD)?;
                    p.cmd("STAT")?;
                    p.cmd("QUIT")?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("login thread panicked"))??;
    }
    Ok(start.elapsed())
}

fn measure(target: &Target, args: &Args) -> Result<Figures> {
    let tls = match target.tls {
        Some(_) => Pop::connect(target.port, target.tls.as_ref())?.tls_parameters(),
        None => None,
    };
    if let Some(parameters) = &tls {
        eprintln!("{}: TLS {parameters}", target.name);
    }
    eprintln!("{}: warm-up round", target.name);
    retr_round(target, args.count)?;
    let mut rounds = Vec::new();
    for r in 0..args.rounds.max(1) {
        let (elapsed, octets) = retr_round(target, args.count)?;
        eprintln!(
            "{}: RETR round {} {:.2} s",
            target.name,
            r + 1,
            elapsed.as_secs_f64()
        );
        rounds.push((elapsed, octets));
    }
    rounds.sort();
    let (retr, octets) = rounds[rounds.len() / 2];
    eprintln!("{}: {} logins", target.name, args.logins);
    let logins = login_run(target, args.logins, args.threads.max(1))?;
    Ok(Figures {
        retr,
        octets,
        logins,
        tls,
    })
}

/// A message of exactly `size` bytes with CRLF line ends, as moat-local stores mail.
fn sample_message(size: usize) -> Vec<u8> {
    let mut m =
        format!("From: bench@example.org\r\nTo: bulk@{DOMAIN}\r\nSubject: pop3 benchmark\r\n\r\n")
            .into_bytes();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit 0123456789\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m.resize(size.max(m.len()), b'x');
    m
}

pub fn run(args: &Args) -> Result<()> {
    let bin_dir = crate::smtp::rounds::bin_dir(args.bin_dir.as_deref())?;
    let tmp = tempfile::tempdir()?;
    let base = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let moat = servers::Moat::start(&base.join("moat"), &bin_dir, "")?;
    moat.admin(&["domain", "add", DOMAIN], "")?;
    let mut users = vec!["bulk".to_string()];
    users.extend((0..args.threads.max(1)).map(|t| format!("login{t}")));
    for u in &users {
        moat.admin(
            &["user", "add", &format!("{u}@{DOMAIN}"), "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )?;
    }
    eprintln!("writing {} messages of {} bytes", args.count, args.size);
    let md = moat_maildir::Maildir::create(moat.maildir("bulk"))?;
    let message = sample_message(args.size);
    for _ in 0..args.count {
        md.deliver(&message)?;
    }
    // As root the stack runs as system users: the mailbox must belong to the mail folder's owner.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(moat.data.join("mail"))?);
    let group = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(moat.data.join("mail"))?);
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{owner}:{group}"))
        .arg(moat.data.join("mail").join(DOMAIN))
        .status()?;
    if !status.success() {
        bail!("chown of the Moat mailbox failed");
    }
    // The copy for Dovecot, taken before either server touched the mailbox.
    let dove_dir = base.join("dovecot");
    let dove_mail = dove_dir.join("mail");
    std::fs::create_dir_all(dove_mail.join(DOMAIN).join("bulk"))?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(moat.maildir("bulk"))
        .arg(dove_mail.join(DOMAIN).join("bulk"))
        .status()?;
    if !status.success() {
        bail!("cp -a of the Maildir failed");
    }
    let hash = moat.password_hash("bulk")?;
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();

    // Over TLS both servers present the certificate `moat up` made; the files outlive the stack.
    let tls_files = moat.tls_files();
    let tls = if args.tls {
        Some(client::tls_config(&tls_files.cert)?)
    } else {
        None
    };

    let moat_target = Target {
        name: "moat",
        port: if args.tls {
            moat.pop3s_port
        } else {
            moat.server.port
        },
        tls: tls.clone(),
    };
    let moat_figures = measure(&moat_target, args)?;
    drop(moat);
    let protocol = servers::Protocol::Pop3;
    let (dovecot, dove_port) = if args.tls {
        servers::dovecot_tls(
            &dove_dir, &dove_mail, &user_refs, &hash, protocol, "", &tls_files,
        )?
    } else {
        let server = servers::dovecot(&dove_dir, &dove_mail, &user_refs, &hash, protocol, "")?;
        let port = server.port;
        (server, port)
    };
    let dove_target = Target {
        name: "dovecot",
        port: dove_port,
        tls,
    };
    let dove_figures = measure(&dove_target, args)?;
    drop(dovecot);

    let over = match (&moat_figures.tls, &dove_figures.tls) {
        (Some(m), Some(d)) if m == d => format!(" over implicit TLS (pop3s, {m})"),
        (Some(m), Some(d)) => format!(" over implicit TLS (pop3s; moat {m}, dovecot {d})"),
        _ => String::new(),
    };
    println!(
        "POP3 benchmark{over}: {} messages of {} bytes, RETR in one session (median of {}), \
         {} logins over {} connections\n",
        args.count,
        args.size,
        args.rounds.max(1),
        args.logins,
        args.threads.max(1)
    );
    let mut table = Table::new(&["server", "RETR msgs/s", "RETR MB/s", "RETR s", "logins/s"]);
    for (name, f) in [
        ("moat-pop3d", &moat_figures),
        ("dovecot pop3", &dove_figures),
    ] {
        let secs = f.retr.as_secs_f64().max(f64::EPSILON);
        table.row(vec![
            name.to_string(),
            format!("{:.0}", args.count as f64 / secs),
            format!("{:.1}", f.octets as f64 / secs / 1e6),
            format!("{secs:.2}"),
            format!(
                "{:.1}",
                args.logins as f64 / f.logins.as_secs_f64().max(f64::EPSILON)
            ),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
