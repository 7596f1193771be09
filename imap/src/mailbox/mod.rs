//! Mailboxes: names (IMAP ↔ Maildir++), LIST patterns, special-use folders, subscriptions and
//! the operations on a user's folders (docs/IMAP.md "Mailbox names").
//!
//! | file | job |
//! |---|---|
//! | `utf7.rs` | modified UTF-7 encode/decode, strict |
//! | `name.rs` | checked IMAP names ↔ Maildir++ folder names |
//! | `pattern.rs` | LIST wildcards `*` and `%`, linear time |
//! | `special.rs` | Drafts, Sent, Trash, Junk, Archive and their attributes |
//! | `subscriptions.rs` | Dovecot's `subscriptions` file |
//! | `store.rs` | the user's folders: open (create at first login), list, CREATE/DELETE/RENAME |
//! | `status.rs` | STATUS counts and the Maildir++ quota |

pub mod name;
pub mod pattern;
pub mod special;
pub mod status;
pub mod store;
pub mod subscriptions;
pub mod utf7;
