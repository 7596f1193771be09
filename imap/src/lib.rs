//! moat-imapd: the IMAP server over the shared Maildir. The design, the module map and the
//! limits are in docs/IMAP.md.

pub mod wire;
