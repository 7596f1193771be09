//! `moat-bench`: Moat's benchmark commands. One module (file) per benchmark under src/; to add one
//! (`smtp`, `imap`, ...), add a variant to `Command` with its `Args` and a match arm in `main`.

mod imap;
mod lists;
mod maildir;
mod pop3;
mod relay;
mod report;
mod smtp;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "moat-bench", about = "Moat benchmarks", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Maildir delivery rate against the disk's raw fsync rate.
    Maildir(maildir::Args),
    /// SMTP: messages/s accepted and delivered into Maildir, Moat against a private Postfix.
    Smtp(smtp::Args),
    /// Relay: messages/s submitted and relayed to a loopback SMTP sink, Moat against Postfix.
    Relay(smtp::Args),
    /// POP3: RETR throughput and login rate, Moat against a private Dovecot.
    Pop3(pop3::Args),
    /// IMAP: SELECT/FETCH/SEARCH on a large folder and idle-connection memory, against Dovecot.
    Imap(imap::Args),
    /// Lists: one post to 10,000 list members relayed to a loopback sink: time and queue disk use.
    Lists(lists::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Maildir(args) => maildir::run(&args),
        Command::Smtp(args) => smtp::run(&args),
        Command::Relay(args) => relay::run(&args),
        Command::Pop3(args) => pop3::run(&args),
        Command::Imap(args) => imap::run(&args),
        Command::Lists(args) => lists::run(&args),
    }
}
