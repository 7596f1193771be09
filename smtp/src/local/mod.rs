//! moat-local: delivery into virtual users' Maildirs, qmail-local's job (docs/PROTOCOLS.md,
//! "moat-local"). It runs as moat-vmail, reads the message only through the descriptor the
//! queue hands it, asks moat-auth where mail goes, and writes nothing but Maildirs.
//!
//! | file | job |
//! |---|---|
//! | `server.rs` | [`Daemon`]: the accept loop, peer check per request, shutdown and drain |
//! | `peers.rs` | who may send `L` (the queue) and `C` (smtpd) |
//! | `settings.rs` | the settings from the supervisor, checked |
//! | `request.rs` | the `L` and `C` records, parsed and re-checked |
//! | `resolve.rs` | asking moat-auth (`R`) and mapping its answer to K/Z/D |
//! | `deliver.rs` | `L`: one recipient, all its targets, one verdict |
//! | `check.rs` | `C`: does the recipient exist, has it room |
//! | `message.rs` | the message descriptor: positional, bounded reads, header section |
//! | `header.rs` | header fields (for the loop check) and the prepended lines |
//! | `loops.rs` | Delivered-To and Received-count loop detection |
//! | `mailbox.rs` | one Maildir delivery, with the location checked at the file-system boundary |
//! | `quota.rs` | room for a message (`C`): the store's limit (`moat_maildir::store_limit`), usage from `maildirsize` |
//! | `forward.rs` | re-injection of a forward into the queue |
//! | `list.rs` | mailing-list targets: handed to moat-lists over `lists.sock` |
//!
//! Not done yet: SRS for forwards (the sender is kept as is), and delivery of sub-addressed
//! mail into a folder named by the tag (it goes to INBOX).
//!
//! SECURITY: see each file's header. In short: peer uids checked per request kind; every field
//! from a peer and every target from moat-auth checked again; the message read by position,
//! bounded, streamed; Maildir locations validated where they meet the file system; nothing
//! but a fixed reply text goes back to a peer, details go to the log.

pub mod check;
pub mod deliver;
pub mod forward;
pub mod header;
pub mod list;
pub mod loops;
pub mod mailbox;
pub mod message;
pub mod peers;
pub mod quota;
pub mod request;
pub mod resolve;
pub mod server;
pub mod settings;

pub use server::Daemon;
pub use settings::Settings;
