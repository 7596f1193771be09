//! moat-imapd's settings: the mail-access servers' set
//! (`moat_common::daemon::access::Settings`: `hostname`, `mail_root`, `auth_socket`,
//! `plaintext_on_loopback`, `idle_timeout_secs`, `max_connections`,
//! `max_connections_per_ip`, as installer/src/serve/specs.rs hands them over), with IMAP's
//! timeouts (docs/IMAP.md "Limits").

use std::time::Duration;

/// `idle_timeout_secs` when not set: RFC 3501 §5.4's thirty minutes, once logged in.
pub const IDLE_TIMEOUT_SECS: u64 = 1800;

/// The largest message APPEND takes (RFC 7889 `APPENDLIMIT`): the site's default
/// `max_message_size` (moat.toml `[limits]`), which the installer does not hand to moat-imapd
/// yet.
pub const APPEND_LIMIT: usize = 35 * 1024 * 1024;

/// How long a client that has not logged in may be silent.
pub const PREAUTH_IDLE: Duration = Duration::from_secs(60);
