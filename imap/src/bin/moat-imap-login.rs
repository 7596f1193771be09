//! moat-imap-login: the pre-login half of IMAP on ports 143 (STARTTLS) and 993 (TLS)
//! (docs/IMAP.md "Processes"): greeting, capabilities, STARTTLS/TLS, LOGIN and AUTHENTICATE,
//! then the logged-in client goes to moat-imapd with a moat-auth ticket.
//!
//! Started by the supervisor with its setup on fd 0 (with `handoff_socket`, which puts the
//! shared entry `moat_imap::run` in login mode); not meant to be run by hand. Exit status: 0
//! after SIGTERM/SIGINT or the supervisor's exit; 1 when it cannot start (the reason is
//! logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread or runtime: it drops root for the
//! `user` setting (moat-imap-login's own user, which owns no mail) and asserts the process is
//! not root. This process parses everything a client sends before it has logged in, the TLS
//! handshake included, and holds the TLS key but no mail: it creates no file (the umask is
//! only a guard).

use std::process::ExitCode;

fn main() -> ExitCode {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    moat_common::daemon::main("moat-imap-login", 1, moat_imap::run)
}
