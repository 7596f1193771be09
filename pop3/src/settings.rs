//! moat-pop3d's and moat-pop3-login's settings: the mail-access servers' set
//! (`moat_common::daemon::access::Settings`: `hostname`, `auth_socket`, `idle_timeout_secs`,
//! `max_connections`, `max_connections_per_ip`; `mail_root` and `handoff_peers` for
//! moat-pop3d; `handoff_socket` and `plaintext_on_loopback` for moat-pop3-login, as
//! installer/src/serve/specs.rs hands them over), with POP3's idle timeout.

/// `idle_timeout_secs` when not set: RFC 1939's ten minutes of the autologout timer.
pub const IDLE_TIMEOUT_SECS: u64 = 600;
