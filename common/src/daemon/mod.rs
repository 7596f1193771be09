//! The plumbing the network daemons share (moat-smtpd, moat-pop3d, moat-imapd, moat-queue,
//! moat-local, moat-remote), Postfix's `single_server` idea in small pieces, one concern per file:
//!
//! | file | job |
//! |---|---|
//! | `tls.rs` | the rustls server configuration from the passed certificate and key descriptors |
//! | `stop.rs` | SIGTERM/SIGINT and the supervisor's end of the setup channel |
//! | `limits.rs` | TCP connections in total and per client network |
//! | `tcp_server.rs` | the accept loop of a TCP service, with the limits and the stop flag |
//! | `unix_server.rs` | the accept loop of a one-request-per-connection Unix socket, and reading that request |
//! | `settings.rs` | strict parsing of the settings the supervisor hands over |
//! | `stream.rs` | a mail-access client's plain or TLS stream, every read and write with a deadline |
//! | `access.rs` | what moat-pop3d and moat-imapd share: settings, start, accept loops, drain |
//! | `user_maildir.rs` | the Maildir of a user moat-auth named, checked before it becomes a path |
//!
//! This file holds the order every daemon's `main` keeps: log, receive the setup (which drops
//! root before any thread exists), run, map the result to an exit status.
//!
//! SECURITY: nothing here parses attacker input except what `tcp_server` accepts, and that is
//! handed on untouched; see each file's header.

pub mod access;
pub mod limits;
pub mod settings;
pub mod stop;
pub mod stream;
pub mod tcp_server;
pub mod tls;
pub mod unix_server;
pub mod user_maildir;

use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

use crate::child::Setup;
use crate::{error, log};

/// A daemon's `main`: logs as `program`, receives the setup (dropping root) before anything
/// else happens, then runs `run`. Exit status 0 when it returns `Ok`, else `failure` with the
/// reason logged.
pub fn main(program: &str, failure: u8, run: impl FnOnce(Setup) -> Result<(), String>) -> ExitCode {
    log::init(program);
    match Setup::receive().map_err(|e| e.to_string()).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(failure)
        }
    }
}

/// Runs `serve` on a new multi-thread runtime. Afterwards tasks still running get `grace` to
/// end; `None` waits for every blocking task (the runtime is simply dropped).
pub fn block_on<E: Display>(
    serve: impl Future<Output = Result<(), E>>,
    grace: Option<Duration>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(serve).map_err(|e| e.to_string());
    if let Some(grace) = grace {
        runtime.shutdown_timeout(grace);
    }
    result
}
