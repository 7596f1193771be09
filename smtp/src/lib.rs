//! The MTA: SMTP server, queue, local and remote delivery (see docs/ARCHITECTURE.md).
//!
//! `proto` is the sans-I/O SMTP server core: command parsing, replies, line framing, DATA/BDAT
//! decoding and the session state machine. It never touches a socket; `moat-smtpd` drives it.

pub mod local;
pub mod proto;
pub mod queue;
