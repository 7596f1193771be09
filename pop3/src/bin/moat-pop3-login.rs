//! moat-pop3-login: the pre-login half of POP3 on ports 110 (STLS) and 995 (TLS)
//! (docs/ARCHITECTURE.md "POP3"): greeting, CAPA, STLS/TLS, USER/PASS and AUTH PLAIN; a client
//! whose login moat-auth accepts goes to moat-pop3d with moat-auth's one-time ticket.
//!
//! Started by the supervisor with its setup on fd 0 (with `handoff_socket`, which puts the
//! shared entry `moat_pop3::run` in login mode); not meant to be run by hand. Exit status: 0
//! after SIGTERM/SIGINT or the supervisor's exit; 1 when it cannot start (the reason is
//! logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread or runtime: it drops root for the
//! `user` setting (moat-pop3-login's own user, which owns no mail) and asserts the process is
//! not root. This process parses everything a client sends before it has logged in, the TLS
//! handshake included, and holds the TLS key but no mail: it creates no file (the umask is
//! only a guard).

use std::process::ExitCode;

fn main() -> ExitCode {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    moat_common::daemon::main("moat-pop3-login", 1, moat_pop3::run)
}
