//! The MTA: SMTP server, queue, local and remote delivery (see docs/ARCHITECTURE.md).
//!
//! `proto` is the sans-I/O SMTP server core: command parsing, replies, line framing, DATA/BDAT
//! decoding and the session state machine. It never touches a socket; `moat-smtpd` drives it.
//!
//! `queue` is moat-queue (the durable queue: injection, commit, scheduling, bounces, admin) and
//! the `sendmail` command.
//!
//! `smtpd` is moat-smtpd: the async driver of `proto` on ports 25, 587 and 465 (TLS, limits,
//! deadlines, recipient and login checks, streaming into the queue).
//!
//! `remote` is moat-remote: delivery to other mail servers (routes, MX, STARTTLS, SMTP client).

pub mod local;
pub mod proto;
pub mod queue;
pub mod remote;
pub mod smtpd;
