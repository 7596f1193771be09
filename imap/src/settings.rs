//! moat-imap-login's and moat-imapd's settings: the mail-access servers' set
//! (`moat_common::daemon::access::Settings`: `hostname`, `mail_root` (moat-imapd),
//! `auth_socket`, `handoff_socket` (moat-imap-login) or `handoff_peers` (moat-imapd),
//! `plaintext_on_loopback`, `idle_timeout_secs`, `max_connections`,
//! `max_connections_per_ip`, `max_message_size`, as installer/src/serve/specs.rs hands them
//! over), with IMAP's timeouts (docs/IMAP.md "Limits") and the APPEND limit.

use std::time::Duration;

/// `idle_timeout_secs` when not set: RFC 3501 §5.4's thirty minutes, once logged in.
pub const IDLE_TIMEOUT_SECS: u64 = 1800;

/// The largest APPENDLIMIT (RFC 7889): FETCH reads no larger file
/// (`session/selected/fetch.rs`), and a literal's length is 32 bits anyway.
pub const APPEND_LIMIT_MAX: u64 = 1 << 30;

/// APPENDLIMIT: the site's `max_message_size` (moat.toml `[limits]`, handed over by the
/// supervisor), at most `APPEND_LIMIT_MAX`.
pub fn append_limit(max_message_size: u64) -> u64 {
    max_message_size.min(APPEND_LIMIT_MAX)
}

/// How long a client that has not logged in may be silent.
pub const PREAUTH_IDLE: Duration = Duration::from_secs(60);
