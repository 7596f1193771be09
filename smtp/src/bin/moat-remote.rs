//! moat-remote: delivery to other mail servers (docs/PROTOCOLS.md, "moat-remote").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit codes:
//! 0 stopped (SIGTERM, or the supervisor went away) after finishing transactions in flight;
//! 111 cannot start (bad setup, settings, CA file or runtime).
//!
//! SECURITY: the setup is received (and root dropped to the `user` setting) before any thread
//! or runtime exists.

use std::process::ExitCode;

use moat_common::daemon;
use moat_smtp::remote::Daemon;

fn main() -> ExitCode {
    daemon::main("moat-remote", 111, |setup| {
        let daemon = Daemon::from_setup(setup)?;
        daemon::block_on(daemon.serve(), None)
    })
}
