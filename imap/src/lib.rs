//! moat-imapd: the IMAP server over the shared Maildir. The design, the module map and the
//! limits are in docs/IMAP.md.

pub mod fetch;
pub mod index;
pub mod mime;
pub mod search;
pub mod wire;

pub mod connection;
pub mod listener;
pub mod mailbox;
pub mod session;
pub mod settings;

pub use listener::run;
