//! moat-pop3d: the POP3 server (RFC 1939; CAPA and response codes, RFC 2449/3206; STLS, RFC
//! 2595; AUTH PLAIN, RFC 5034) over the shared Maildir (docs/ARCHITECTURE.md "POP3").
//!
//! | file | job |
//! |---|---|
//! | `settings.rs` | POP3's defaults for the settings (`moat_common::daemon::access`) |
//! | `command.rs` | command lines → `Command` |
//! | `lines.rs` | bytes → bounded lines (255 octets), cleared at STLS |
//! | `session.rs` | the sans-I/O state machine: AUTHORIZATION, TRANSACTION, UPDATE |
//! | `maildrop.rs` | the snapshot at login (UIDs, UIDL), the UPDATE state's commit |
//! | `lock.rs` | one POP3 session per maildrop (`[IN-USE]`), an flock |
//! | `dotstuff.rs` | RETR/TOP streamed: CRLF, dot-stuffing, the TOP cut |
//! | `connection.rs` | one connection: the driver around the session; the hand-over from |
//! |  | moat-pop3-login and its resumption in moat-pop3d |
//!
//! Two binaries run this crate (the login split, docs/ARCHITECTURE.md "POP3"):
//! `moat-pop3-login` holds the TCP listeners and the TLS key and serves every client up to a
//! successful login (setting `handoff_socket`: login mode), then hands it to `moat-pop3d`, which
//! has no listener and no key, only the `handoff` socket, and serves logged-in clients.
//!
//! The connection limits, the stop flag (SIGTERM/SIGINT and the supervisor's end), the rustls
//! configuration and the accept loop's skeleton are shared with moat-smtpd; the settings, the
//! start, the accept loops and the drain (`daemon::access`), the plain/TLS stream, the Maildir
//! path and the moat-auth login with moat-imapd: `moat_common::daemon`,
//! `moat_common::client::auth`.
//!
//! SECURITY: moat-pop3-login reads what the internet sends before any login, the TLS handshake
//! included, as its own user that can reach no mail. moat-pop3d runs as the mail user (dropped
//! in `Setup::receive` before any thread exists) and reads only what logged-in clients send:
//! it can read every Maildir, so it acts only for the user moat-auth names (for the token the
//! login process passed), and only on that user's INBOX. Passwords are never checked
//! here (moat-auth does that, and throttles). The listeners and TLS files arrive as
//! descriptors. Input is bounded everywhere: line length, commands before login, errors,
//! idle time, connections.

pub mod command;
pub mod connection;
pub mod dotstuff;
pub mod lines;
pub mod lock;
pub mod maildrop;
pub mod session;
pub mod settings;

use moat_common::child::Setup;
use moat_common::daemon::access::{self, Protocol};

/// Runs moat-pop3d or moat-pop3-login (the settings say which) with what the supervisor
/// handed over. Call after `Setup::receive`.
pub fn run(setup: Setup) -> Result<(), String> {
    access::run(
        setup,
        Protocol {
            service: "pop3",
            listeners: ["pop3", "pop3s"],
            without_tls: "no STLS, port 995 off",
            idle_default_secs: settings::IDLE_TIMEOUT_SECS,
            refusal: |why| format!("-ERR [SYS/TEMP] {why}, try again later\r\n"),
            dropped: "dropped without UPDATE",
            serve: connection::serve,
            resume: connection::resume,
        },
    )
}
