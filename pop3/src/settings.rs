//! moat-pop3d's settings: the mail-access servers' set
//! (`moat_common::daemon::access::Settings`: `hostname`, `mail_root`, `auth_socket`,
//! `plaintext_on_loopback`, `idle_timeout_secs`, `max_connections`,
//! `max_connections_per_ip`, as installer/src/serve/specs.rs hands them over), with POP3's
//! idle timeout.

/// `idle_timeout_secs` when not set: RFC 1939's ten minutes of the autologout timer.
pub const IDLE_TIMEOUT_SECS: u64 = 600;
