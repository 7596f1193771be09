//! Starting moat-imapd: listeners `imap` (port 143: STARTTLS) and `imaps` (port 993: TLS from
//! the first byte), the accept loops, the limits and the drain, all from
//! `moat_common::daemon::access` (shared with moat-pop3d); a refused client on the plain port
//! is told `* BYE [UNAVAILABLE]`. Each admitted connection runs `connection::serve` in its own
//! task.
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
            listeners: ["imap", "imaps"],
            without_tls: "no STARTTLS, port 993 off",
            idle_default_secs: IDLE_TIMEOUT_SECS,
            refusal: |why| format!("* BYE [UNAVAILABLE] {why}, try again later\r\n"),
            dropped: "dropped (every change is already committed)",
            serve: connection::serve,
        },
    )
}
