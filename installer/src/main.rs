//! `moat`: the admin CLI (domains, users, aliases, catch-alls, mailing lists), and later the supervisor.
//!
//! Exit codes: 0 done; 1 the request was refused (not found, already exists, invalid input);
//! 2 usage error (from clap); 75 (EX_TEMPFAIL) the user store is unreachable: try again.
//! Errors are printed as one line on stderr, `moat: <what was wrong>`.

mod cli;
mod cmd;
mod context;
mod output;
mod password_input;
mod serve;
mod size;
mod system_users;
mod up;
mod zone;

use std::process::ExitCode;

use clap::Parser;

/// sysexits' EX_TEMPFAIL: the same command may work later.
const EXIT_TEMPFAIL: u8 = 75;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    moat_common::log::init("moat");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("moat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("moat: {}", one_line(&err));
            if is_temporary(&err) {
                ExitCode::from(EXIT_TEMPFAIL)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line, without repeating a cause the message already holds.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

fn is_temporary(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<moat_vdomain::StoreError>(),
            Some(moat_vdomain::StoreError::Unavailable(_))
        )
    })
}
