//! moat-queue: the durable mail queue (docs/PROTOCOLS.md "moat-queue").
//!
//! Started by the supervisor with its setup on fd 0; takes injections on `queue.sock`, delivers
//! through moat-local, bounces, expires. Exit status: 0 after SIGTERM or the supervisor's exit,
//! 1 when it cannot start (the reason is logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread: it drops root for the `user` setting
//! and asserts the process is not root. Everything else is in `moat_smtp::queue`.

use std::process::ExitCode;

use moat_common::child::Setup;
use moat_common::error;

fn main() -> ExitCode {
    moat_common::log::init("moat-queue");
    let setup = match Setup::receive() {
        Ok(setup) => setup,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match moat_smtp::queue::daemon::run(setup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
