//! moat-lists, the mailing-list manager (ezmlm's model; docs/LISTS.md, docs/PROTOCOLS.md
//! "moat-lists"). moat-local hands it each list target of a delivery over `lists.sock`, with the
//! message descriptor; it answers `K`/`Z`/`D` for that target.
//!
//! | file | job |
//! |---|---|
//! | `server.rs` | the setup, the accept loop, the peer check, one request per connection |
//! | `request.rs` | the `L` request's fields, checked again |
//! | `command.rs` | what the extension asks for (re-parsed: it crossed a socket) |
//! | `context.rs` | what handlers share; the null-sender and machine-mail screen |
//! | `header.rs` | the message's header, read bounded, split into fields |
//! | `help.rs` | `list-help`: the help text, mailed to the sender |
//! | `subscribe.rs` | `list-subscribe`/`-unsubscribe` and their `sc.`/`uc.` confirmations |
//! | `cookie.rs` | the confirmation cookies (HMAC-SHA256 with the list's secret) |
//! | `throttle.rs` | one confirmation per address, list and hour |
//! | `post.rs` | posts: checks, list headers, numbering, one VERP injection for all members |
//! | `reply.rs` | composing and injecting the manager's own messages |
//!
//! The lists' data comes from moat-auth (`moat_common::client::list_store`): moat-lists opens
//! no store. Bounces (`list-return-…`), moderation, the archive and digests are the next
//! slice; until then mail for them is answered `Z` and waits in the queue.

pub mod command;
pub mod context;
pub mod cookie;
pub mod header;
pub mod help;
pub mod post;
pub mod reply;
pub mod request;
pub mod server;
pub mod subscribe;
pub mod throttle;

pub use server::Daemon;
