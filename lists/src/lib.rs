//! moat-lists, the mailing-list manager (ezmlm's model; docs/LISTS.md, docs/PROTOCOLS.md
//! "moat-lists"). moat-local hands it each list target of a delivery over `lists.sock`, with the
//! message descriptor; it answers `K`/`Z`/`D` for that target.
//!
//! | file | job |
//! |---|---|
//! | `server.rs` | the setup, the accept loop, the peer check, one request per connection |
//! | `request.rs` | the `L` request's fields, checked again |
//! | `command.rs` | what the extension asks for (re-parsed: it crossed a socket) |
//! | `header.rs` | the few header fields read from a message, bounded |
//! | `help.rs` | `list-help`: the help text, mailed to the sender |
//! | `reply.rs` | composing and injecting the manager's own messages |
//!
//! This slice answers `list-help`; every other command (posts, subscriptions, bounces) is a
//! temporary failure for now, so the queue keeps that mail for the next slice.

pub mod command;
pub mod header;
pub mod help;
pub mod reply;
pub mod request;
pub mod server;

pub use server::Daemon;
