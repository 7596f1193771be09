//! moat-local: local delivery into Maildirs (docs/PROTOCOLS.md, "moat-local").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit codes:
//! 0 stopped (SIGTERM, or the supervisor went away) after finishing deliveries in flight;
//! 111 cannot start (bad setup, settings or runtime) or the server failed.
//!
//! SECURITY: the setup is received (and root dropped to the `user` setting) before any thread
//! or runtime exists; the umask makes every file and directory we create private (0600/0700).

use std::process::ExitCode;

use moat_common::daemon;
use moat_smtp::local::Daemon;

fn main() -> ExitCode {
    daemon::main("moat-local", 111, |setup| {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let daemon = Daemon::from_setup(setup)?;
        daemon::block_on(daemon.serve(), None)
    })
}
