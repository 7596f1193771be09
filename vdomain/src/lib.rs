//! Moat's SQL user store: virtual domains, mailbox users (argon2id passwords, quota,
//! enabled flag), aliases, domain aliases, catch-alls, mailing lists and their rosters
//! ([`lists`], docs/LISTS.md), and the one function that resolves a recipient address to
//! delivery targets.
//!
//! Backends: SQLite (a file, the default) and PostgreSQL (for several front-end machines),
//! both through sqlx's `Any` driver with runtime-checked queries, so building needs no
//! database. The schema lives in `migrations/{sqlite,postgres}` and is applied by
//! [`Store::connect`].
//!
//! The `moat-auth` daemon, the only process that opens the store at run time, is built from
//! this crate too (`src/bin/moat-auth.rs`, logic in [`daemon`]), because only this crate links
//! sqlx.
//!
//! # Resolution rules
//!
//! [`Store::resolve`] looks at one address in this order:
//!
//! 1. **Domain.** The domain is normalised (IDNA, lower case). A domain alias is rewritten
//!    to its real domain. A domain we do not host is [`Resolution::NotLocal`] at the top
//!    level, and a [`Target::Forward`] when it is reached as an alias target.
//! 2. **Exact user** → a [`Target::Mailbox`]. Disabled users still receive mail (as in
//!    vpopmail and typical Postfix/Dovecot setups): "disabled" means "cannot log in"; to
//!    refuse mail, remove the user.
//! 3. **Exact alias** → every target is resolved again by these same rules, one level
//!    deeper. Results are deduplicated (one copy per mailbox, one per remote address).
//! 4. **Mailing list** → a [`Target::List`]: the list's own address (a post) or one of its
//!    ezmlm command addresses `list-subscribe`, `list-sc.COOKIE-user=host`,
//!    `list-return-...` and the rest ([`ListCommand`], docs/LISTS.md). When two lists could
//!    own a command address the longer list name wins. Users, aliases and lists never share
//!    an address (checked when any of them is created), so the order among steps 2–4 only
//!    matters for data written behind the store's back.
//! 5. **Sub-address** (when a delimiter is configured, `+` by default): `base+tag` with
//!    `base` a user gives that mailbox with `detail = Some("tag")`; with `base` an alias,
//!    the alias is expanded and the tag is carried to the mailboxes it reaches (remote
//!    targets are not rewritten). The split is at the first delimiter. An exact user or
//!    alias named `a+b` wins over sub-addressing. A list is not a sub-address base:
//!    `list+tag` goes on to the catch-all.
//! 6. **Catch-all** of the domain → its target resolved again, one level deeper.
//! 7. Otherwise [`Resolution::Unknown`].
//!
//! An alias target that is in a hosted domain but resolves to nothing (its user was
//! removed) is dropped; if no target of the address delivers anywhere the result is
//! `Unknown`, so the sender gets a bounce at RCPT time rather than mail vanishing.
//! An address met again while it is being expanded (`a → b → a`, or a catch-all that comes
//! back to its own domain's catch-all) and any chain deeper than
//! [`ResolveOptions::max_depth`] hops is [`StoreError::AliasLoop`]. An alias can never
//! target itself directly: [`Store::add_alias`] refuses it, because an address cannot also
//! be a mailbox here and a self-target could never deliver.

pub mod address;
mod aliases;
mod connect;
pub mod daemon;
mod db;
mod domains;
mod error;
pub mod lists;
mod model;
pub mod password;
mod resolve;
mod users;

pub use address::{Address, AddressError};
pub use connect::{Backend, CONNECT_TIMEOUT, Store};
pub use error::StoreError;
pub use lists::{
    List, ListChanges, ListCommand, ListFlags, Member, MemberKind, ReplyTo, normalize_member,
};
pub use model::{Alias, Domain, User};
pub use resolve::{Resolution, ResolveOptions, Target};
