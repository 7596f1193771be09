//! `moat-bench`: Moat's benchmark commands. One module (file) per benchmark under src/; to add one
//! (`smtp`, `imap`, ...), add a variant to `Command` with its `Args` and a match arm in `main`.

mod maildir;
mod report;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Maildir(args) => maildir::run(&args),
    }
}
