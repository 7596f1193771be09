//! moat-remote: delivery to other mail servers (docs/PROTOCOLS.md "moat-remote"), qmail-remote's
//! job. The queue hands it one message descriptor and the recipients of one domain; it answers
//! one status per recipient.
//!
//! One concern per file: `settings`; `server` the socket and the request checks; `deliver` the
//! order of hosts and addresses; `dns` routes, MX and address lookups; `client` one SMTP
//! transaction; `reply` bounded reply parsing; `dotstuff` the DATA encoding; `tls` the rustls
//! client configurations.
//!
//! SECURITY: moat-remote runs as its own user with no file-system access it needs (the message
//! arrives as a read-only descriptor, the CA file as a descriptor), talks to untrusted servers
//! with hard bounds on every reply and a timeout on every wait, and only takes requests from the
//! queue's uid.

pub mod client;
pub mod deliver;
pub mod dns;
pub mod dotstuff;
pub mod reply;
pub mod server;
pub mod settings;
pub mod tls;

pub use server::Daemon;
