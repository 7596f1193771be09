//! moat-imapd: the IMAP server for ports 143 (STARTTLS) and 993 (TLS) (docs/IMAP.md).
//!
//! Started by the supervisor with its setup on fd 0; not meant to be run by hand. Exit status:
//! 0 after SIGTERM/SIGINT or the supervisor's exit; 1 when it cannot start (the reason is
//! logged).
//!
//! SECURITY: `Setup::receive` runs first, before any thread or runtime: it drops root for the
//! `user` setting (the mail user) and asserts the process is not root. The umask makes every
//! file and directory we create (a first login's Maildir, the subscriptions) private, as
//! moat-local's are. Everything else is in `moat_imap`.

use std::process::ExitCode;

fn main() -> ExitCode {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    moat_common::daemon::main("moat-imapd", 1, moat_imap::run)
}
