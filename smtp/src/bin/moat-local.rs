//! moat-local: local delivery into Maildirs (docs/PROTOCOLS.md, "moat-local").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit codes:
//! 0 stopped (SIGTERM, or the supervisor went away) after finishing deliveries in flight;
//! 111 cannot start (bad setup, settings or runtime) or the server failed.
//!
//! SECURITY: the setup is received (and root dropped to the `user` setting) before any thread
//! or runtime exists; the umask makes every file and directory we create private (0600/0700).

use std::process::ExitCode;

use moat_common::child::Setup;
use moat_common::{error, log};
use moat_smtp::local::Daemon;

fn main() -> ExitCode {
    log::init("moat-local");
    let setup = match Setup::receive() {
        Ok(setup) => setup,
        Err(e) => return fail(&e),
    };
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
