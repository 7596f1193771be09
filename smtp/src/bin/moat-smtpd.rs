//! moat-smtpd: the SMTP server for ports 25 (MX), 587 (submission) and 465 (submission over
//! TLS) (docs/PROTOCOLS.md "moat-smtpd").
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit status:
//! 0 after SIGTERM/SIGINT or the supervisor's exit, once open sessions ended; 1 when it cannot
//! start (the reason is logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread or runtime: it drops root for the
//! `user` setting and asserts the process is not root. Everything else is in
//! `moat_smtp::smtpd`.

use std::process::ExitCode;

fn main() -> ExitCode {
    moat_common::daemon::main("moat-smtpd", 1, moat_smtp::smtpd::run)
}
