//! moat-remote: delivery to other mail servers (docs/PROTOCOLS.md, "moat-remote").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit codes:
//! 0 stopped (SIGTERM, or the supervisor went away) after finishing transactions in flight;
//! 111 cannot start (bad setup, settings, CA file or runtime).
//!
//! SECURITY: the setup is received (and root dropped to the `user` setting) before any thread
//! or runtime exists.

use std::process::ExitCode;

use moat_common::child::Setup;
use moat_common::{error, log};
use moat_smtp::remote::Daemon;

fn main() -> ExitCode {
    log::init("moat-remote");
    let setup = match Setup::receive() {
        Ok(setup) => setup,
        Err(e) => return fail(&e),
    };
    let daemon = match Daemon::from_setup(setup) {
        Ok(daemon) => daemon,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(daemon.serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    error!("{e}");
    ExitCode::from(111)
}
