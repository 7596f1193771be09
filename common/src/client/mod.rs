//! Clients of the internal protocols (docs/PROTOCOLS.md), and the record shapes the servers share
//! with them, so each shape is written down in code exactly once.
//!
//! Every call opens its own connection: Unix sockets are cheap, and a fresh connection per
//! request means no state to lose when a server restarts. An `io::Error` from any call means the
//! peer could not be asked: callers treat it as a temporary failure.

pub mod auth;
pub mod list_store;
pub mod lists;
pub mod local;
pub mod queue;
pub mod remote;
