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
//! | `throttle.rs` | hourly allowances: one confirmation per address and list, 5 archive answers |
//! | `post.rs` | posts: checks, list headers, numbering, one VERP injection for all members |
//! | `bounce.rs` | `list-return-…`: which mail is a bounce, counting, probes, removal |
//! | `probe.rs` | the warning probe to a member whose mail bounced |
//! | `replay.rs` | replay records: a post the queue delivers again is not sent twice |
//! | `reply.rs` | composing and injecting the manager's own messages |
//! | `archive.rs` | the archive Maildir and index of each list; `list-get.N[_M]`, `list-index` |
//! | `digest.rs` | digests (count and timer), the multipart/digest bundle `get` shares |
//! | `rewrite.rs` | a post's new header: list fields, subject prefix, Reply-To, DMARC From: |
//! | `dmarc.rs` | the From: domain's DMARC policy (hickory-resolver, cached 10 minutes) |
//! | `footer.rs` | the footer added without breaking MIME; the body streamed to the queue |
//! | `moderate.rs` | moderated lists: holding posts, `list-accept-ID`/`list-reject-ID` |
//! | `held.rs` | the held-post store (`<data_dir>/<list>/held/<ID>`) and its expiry sweep |
//! | `owner.rs` | `list-owner`: forwarded to the owner (or the moderators) |
//! | `web.rs` | the RFC 8058 one-click unsubscribe endpoint (HTTPS); `web/http.rs` its bounded HTTP/1.1 |
//!
//! The lists' data comes from moat-auth (`moat_common::client::list_store`): moat-lists opens
//! no store. Its own files (held posts, archives, digest state) live in `[paths] lists`, a
//! folder only moat-lists can read. An extension that is no command is answered `Z`.

pub mod archive;
pub mod bounce;
pub mod command;
pub mod context;
pub mod cookie;
pub mod digest;
pub mod dmarc;
pub mod footer;
pub mod header;
pub mod held;
pub mod help;
pub mod moderate;
pub mod owner;
pub mod post;
pub mod probe;
pub mod replay;
pub mod reply;
pub mod request;
pub mod rewrite;
pub mod server;
pub mod subscribe;
pub mod throttle;
pub mod web;

pub use server::Daemon;
