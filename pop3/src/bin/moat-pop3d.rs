//! moat-pop3d: the POP3 server for ports 110 (STLS) and 995 (TLS) (docs/ARCHITECTURE.md
//! "POP3").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit status:
//! 0 after SIGTERM/SIGINT or the supervisor's exit; 1 when it cannot start (the reason is
//! logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread or runtime: it drops root for the
//! `user` setting (the mail user) and asserts the process is not root. Everything else is in
//! `moat_pop3`.

use std::process::ExitCode;

fn main() -> ExitCode {
    moat_common::daemon::main("moat-pop3d", 1, moat_pop3::run)
}
