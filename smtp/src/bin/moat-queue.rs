//! moat-queue: the durable mail queue (docs/PROTOCOLS.md "moat-queue").
//!
//! Started by the supervisor with its setup on fd 0; takes injections on `queue.sock`, delivers
//! through moat-local, bounces, expires. Exit status: 0 after SIGTERM or the supervisor's exit,
//! 1 when it cannot start (the reason is logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread: it drops root for the `user` setting
//! and asserts the process is not root. Everything else is in `moat_smtp::queue`.

use std::process::ExitCode;

fn main() -> ExitCode {
    moat_common::daemon::main("moat-queue", 1, moat_smtp::queue::daemon::run)
}
