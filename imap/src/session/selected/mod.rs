//! The selected state (RFC 3501 §6.3.1–6.4.8): one mailbox's index and this session's view of
//! it. One file per command group:
//!
//! | file | job |
//! |---|---|
//! | `view.rs` | sequence numbers ↔ UIDs, sequence sets, \Recent, and reporting the index's changes at the points RFC 3501 §5.2/§7.4.1 allows |
//! | `select.rs` | SELECT, EXAMINE, CLOSE, UNSELECT, CHECK, NOOP, EXPUNGE, UID EXPUNGE |
//! | `store.rs` | STORE / UID STORE (CONDSTORE's UNCHANGEDSINCE) |
//! | `fetch.rs` | FETCH / UID FETCH, streamed in batches (`Flow::More`) |
//! | `search.rs` | SEARCH / UID SEARCH (ESEARCH's RETURN) |
//! | `append.rs` | APPEND streamed into the Maildir (APPENDLIMIT, quota, APPENDUID, literal8) |
//! | `copy.rs` | COPY / MOVE and their UID forms (COPYUID) |
//! | `idle.rs` | IDLE: inotify on new/ and cur/ of the selected folder |
//!
//! The index (`crate::index`) blocks: every call runs on the blocking pool with the index behind
//! a mutex only this session uses (the lock is never contended; it lets the handle move into
//! `spawn_blocking` and back).
//!
//! SECURITY: sequence sets are resolved against the view without expanding them (a UID range
//! `1:4294967295` costs what the view holds); UIDs come from the view, never from the client
//! alone; a read-only mailbox refuses every change.

mod append;
mod copy;
mod fetch;
pub mod idle;
mod search;
mod select;
mod store;
mod view;

use std::sync::{Arc, Mutex};

use imap_codec::imap_types::command::CommandBody;

use super::{Flow, Session, response};
use crate::index::Index;
use crate::mailbox::store::StoreError;

pub use append::Upload;
pub use fetch::FetchJob;
pub use view::Selected;

/// Runs `work` on the selected mailbox's index on the blocking pool.
pub(super) async fn with_index<T: Send + 'static>(
    index: &Arc<Mutex<Index>>,
    work: impl FnOnce(&mut Index) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let index = Arc::clone(index);
    super::blocking(move || {
        let mut ix = index
            .lock()
            .map_err(|_| StoreError::Io("index mutex poisoned".into()))?;
        work(&mut ix)
    })
    .await
}

/// True for the commands this module answers: SELECT, EXAMINE and APPEND once logged in, the
/// selected-state commands once a mailbox is selected.
pub(super) fn handles(body: &CommandBody<'_>, selected: bool) -> bool {
    match body {
        CommandBody::Select { .. } | CommandBody::Examine { .. } | CommandBody::Append { .. } => {
            true
        }
        CommandBody::Noop
        | CommandBody::Check
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Expunge
        | CommandBody::ExpungeUid { .. }
        | CommandBody::Fetch { .. }
        | CommandBody::Store { .. }
        | CommandBody::Search { .. }
        | CommandBody::Copy { .. }
        | CommandBody::Move { .. }
        | CommandBody::Idle => selected,
        _ => false,
    }
}

impl Session {
    /// A command `handles` accepted.
    pub(super) async fn selected_command(
        &mut self,
        tag: String,
        body: CommandBody<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        match body {
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(&tag, mailbox, &parameters, false, out).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(&tag, mailbox, &parameters, true, out).await,
            // `input.rs` streams every APPEND it can decode (`Session::append_begin`).
            CommandBody::Append { .. } => self.bad(out, &tag, "Invalid APPEND arguments."),
            CommandBody::Noop => self.noop(&tag, "NOOP", out).await,
            CommandBody::Check => self.noop(&tag, "CHECK", out).await,
            CommandBody::Close => self.close(&tag, true, out).await,
            CommandBody::Unselect => self.close(&tag, false, out).await,
            CommandBody::Expunge => self.expunge(&tag, None, out).await,
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(&tag, Some(sequence_set), out).await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store(
                    &tag,
                    store::StoreArgs {
                        set: sequence_set,
                        kind,
                        silent: response == imap_codec::imap_types::flag::StoreResponse::Silent,
                        flags,
                        uid,
                        modifiers,
                    },
                    out,
                )
                .await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(&tag, sequence_set, macro_or_item_names, uid, modifiers, out)
                    .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => self.search(&tag, charset, criteria, uid, None, out).await,
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, sequence_set, mailbox, uid, false, out)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&tag, sequence_set, mailbox, uid, true, out).await,
            CommandBody::Idle => self.idle(&tag, out).await,
            _ => self.bad(out, &tag, "Unexpected command."),
        }
    }

    /// Before a command of the authenticated state run while a mailbox is selected (LIST,
    /// STATUS, CREATE, ...): any update may be sent during it (RFC 3501 §7).
    pub(super) async fn updates_before(&mut self, out: &mut Vec<u8>) -> Option<Flow> {
        self.selected.as_ref()?;
        match self.report_changes(true, out).await {
            Flow::Continue => None,
            other => Some(other),
        }
    }

    /// The index error the client hears (logged by `store_error`).
    pub(super) fn index_error(&self, out: &mut Vec<u8>, tag: &str, e: StoreError) -> Flow {
        self.store_error(out, tag, e);
        Flow::Continue
    }

    /// A tagged line for a command that needs write access in a read-only mailbox.
    pub(super) fn read_only(&self, out: &mut Vec<u8>, tag: &str) -> Flow {
        response::no(
            out,
            tag,
            "[READ-ONLY] The mailbox is selected read-only (EXAMINE).",
        );
        Flow::Continue
    }
}
