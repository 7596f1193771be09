//! moat-lists: the mailing-list manager (docs/PROTOCOLS.md, "moat-lists").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit codes:
//! 0 stopped (SIGTERM, or the supervisor went away) after finishing the requests in flight;
//! 111 cannot start.
//!
//! SECURITY: the setup is received (and root dropped to the `user` setting) before any thread
//! or runtime exists.

use std::process::ExitCode;

use moat_common::daemon;
use moat_lists::Daemon;

fn main() -> ExitCode {
    daemon::main("moat-lists", 111, |setup| {
        let daemon = Daemon::from_setup(setup)?;
        daemon::block_on(daemon.serve(), None)
    })
}
