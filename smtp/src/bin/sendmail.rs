//! sendmail: queue a message from standard input (`sendmail --help`; logic in
//! `moat_smtp::queue::sendmail`).
//!
//! SECURITY: an ordinary program run by any user: no privilege, no setuid; the queue checks and
//! records everything it is given.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdin = std::io::stdin().lock();
    ExitCode::from(moat_smtp::queue::sendmail::main(args, stdin))
}
