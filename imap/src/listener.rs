//! Starting moat-imap-login and moat-imapd, one entry for both: the settings decide
//! (`moat_common::daemon::access`, shared with POP3). moat-imap-login (`handoff_socket` set)
//! serves the listeners `imap` (port 143: STARTTLS) and `imaps` (port 993: TLS from the first
//! byte), each admitted connection with `connection::serve` in its own task; a refused client
//! on the plain port is told `* BYE [UNAVAILABLE]`. moat-imapd takes the logged-in clients it
//! hands over on `handoff`, each with `connection::resume`. The limits and the drain are
//! `access`'s.
//!
//! SECURITY: see `moat_common::daemon::access`. Sessions still open after the drain are
//! dropped: IMAP commits every change as it is made, so nothing waits for a clean end.

use moat_common::child::Setup;
use moat_common::daemon::access::{self, Protocol};

use crate::connection;
use crate::settings::IDLE_TIMEOUT_SECS;

/// Runs moat-imapd with what the supervisor handed over. Call after `Setup::receive`.
pub fn run(setup: Setup) -> Result<(), String> {
    access::run(
        setup,
        Protocol {
            service: "imap",
            listeners: ["imap", "imaps"],
            without_tls: "no STARTTLS, port 993 off",
            idle_default_secs: IDLE_TIMEOUT_SECS,
            refusal: |why| format!("* BYE [UNAVAILABLE] {why}, try again later\r\n"),
            dropped: "dropped (every change is already committed)",
            serve: connection::serve,
            resume: connection::resume,
        },
    )
}
