//! moat-remote: delivery to other mail servers (docs/PROTOCOLS.md "moat-remote"), qmail-remote's
//! job. The queue hands it one message descriptor and the recipients of one domain; it answers
//! one status per recipient.
//!
//! One concern per file: `settings`; `server` the socket and the request checks; `deliver` the
//! order of hosts and addresses; `dns` routes, MX and address lookups; `attempt` one address
//! (a pooled connection or a new one); `client` one SMTP session and its transactions; `pool`
//! idle connections kept for reuse; `limit` transactions at once per destination; `mime` what
//! the message needs (8BITMIME, SMTPUTF8); `reply` bounded reply parsing; `dotstuff` the DATA
//! encoding; `tls` the rustls client configurations; `dkim` the DKIM-Signature lines sent in
//! front of our own mail, and the key files' names and format; `auth` SMTP AUTH for routes with
//! credentials (the password file, the SASL exchange).
//!
//! SECURITY: moat-remote runs as its own user with no file-system access it needs (the message
//! arrives as a read-only descriptor; the CA file, the DKIM keys and the routes' password files
//! as descriptors opened by the supervisor), talks to untrusted servers with hard bounds on every
//! reply and a timeout on every wait, and only takes requests from the queue's uid.

pub mod attempt;
pub mod auth;
pub mod client;
pub mod deliver;
pub mod dkim;
pub mod dns;
pub mod dotstuff;
pub mod limit;
pub mod mime;
pub mod pool;
pub mod reply;
pub mod server;
pub mod settings;
pub mod tls;

pub use server::Daemon;
