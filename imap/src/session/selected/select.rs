//! SELECT, EXAMINE (RFC 3501 §6.3.1–2, CONDSTORE's `(CONDSTORE)` parameter and HIGHESTMODSEQ),
//! CLOSE, UNSELECT (RFC 3691), CHECK, NOOP, EXPUNGE and UID EXPUNGE (RFC 4315).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use moat_maildir::Flags;

use super::{Selected, with_index};
use crate::index::Index;
use crate::mailbox::store::StoreError;
use crate::session::parse::mailbox_bytes;
use crate::session::{Flow, Session, blocking, response};

impl Session {
    pub(in crate::session) async fn select(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        parameters: &[SelectParameter],
        examine: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        // Selecting ends the previous selection, whether or not the new one succeeds (RFC 3501
        // §6.3.1); `[CLOSED]` tells the client where the old one's responses stop (RFC 7162).
        if self.selected.take().is_some() {
            response::ok(out, "*", "[CLOSED] Previous mailbox closed.");
        }
        let Some(name) = self.checked(tag, mailbox_bytes(&mailbox), out) else {
            return Flow::Continue;
        };
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        if parameters
            .iter()
            .any(|p| matches!(p, SelectParameter::QResync { .. }))
        {
            return self.bad(out, tag, "QRESYNC is not supported.");
        }
        if parameters.contains(&SelectParameter::CondStore) {
            self.condstore = true;
        }
        let folder = name;
        let opened = blocking(move || {
            if !store.exists(&folder) {
                return Err(StoreError::NonExistent);
            }
            let md = store.maildir(&folder)?;
            let mut ix = Index::open(&md)?;
            let recent = if examine {
                Vec::new()
            } else {
                ix.move_new_to_cur()?
            };
            let view = ix.view();
            let keywords = ix.keywords().clone();
            Ok((md, ix, view, recent, keywords))
        })
        .await;
        let (maildir, index, view, recent, keywords) = match opened {
            Ok(x) => x,
            Err(e) => return self.index_error(out, tag, e),
        };
        let sel = Selected {
            maildir,
            index: Arc::new(Mutex::new(index)),
            read_only: examine,
            uids: view.messages.iter().map(|m| m.uid).collect(),
            recent: recent.into_iter().collect(),
            pending_expunge: BTreeSet::new(),
            keywords,
            watcher: None,
        };
        sel.write_flags(out);
        response::untagged(out, format!("{} EXISTS", sel.uids.len()).as_bytes());
        response::untagged(out, format!("{} RECENT", sel.recent.len()).as_bytes());
        if let Some(pos) = view
            .messages
            .iter()
            .position(|m| !m.flags.contains(Flags::SEEN))
        {
            response::ok(out, "*", &format!("[UNSEEN {}] First unseen.", pos + 1));
        }
        response::ok(
            out,
            "*",
            &format!("[UIDVALIDITY {}] UIDs valid.", view.uid_validity),
        );
        response::ok(
            out,
            "*",
            &format!("[UIDNEXT {}] Predicted next UID.", view.uid_next),
        );
        response::ok(
            out,
            "*",
            &format!("[HIGHESTMODSEQ {}] Highest.", view.highest_modseq),
        );
        let (code, what) = if examine {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        self.selected = Some(sel);
        response::ok(out, tag, &format!("[{code}] {what} completed."));
        Flow::Continue
    }

    /// NOOP and CHECK: a chance for every update (RFC 3501 §6.1.2, §6.4.1).
    pub(in crate::session) async fn noop(
        &mut self,
        tag: &str,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Flow {
        match self.report_changes(true, out).await {
            Flow::Continue => {
                response::ok(out, tag, &format!("{what} completed."));
                Flow::Continue
            }
            other => other,
        }
    }

    /// CLOSE (`expunge`: removes \Deleted messages silently when read-write) and UNSELECT.
    pub(in crate::session) async fn close(
        &mut self,
        tag: &str,
        expunge: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(sel) = self.selected.take() else {
            return Flow::Continue;
        };
        if expunge && !sel.read_only {
            let uids = sel.uids.clone();
            if let Err(e) = with_index(&sel.index, move |ix| Ok(ix.expunge(&uids, true)?)).await {
                return self.index_error(out, tag, e);
            }
        }
        let what = if expunge { "CLOSE" } else { "UNSELECT" };
        response::ok(out, tag, &format!("{what} completed."));
        Flow::Continue
    }

    /// EXPUNGE, or UID EXPUNGE of `set` (RFC 4315 §2.1): only messages with \Deleted go.
    pub(in crate::session) async fn expunge(
        &mut self,
        tag: &str,
        set: Option<SequenceSet>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        if sel.read_only {
            return self.read_only(out, tag);
        }
        let uids: Vec<u32> = match &set {
            None => sel.uids.clone(),
            Some(set) => sel
                .resolve(set, true)
                .into_iter()
                .filter_map(|i| sel.uids.get(i).copied())
                .collect(),
        };
        let gone = match with_index(&sel.index, move |ix| Ok(ix.expunge(&uids, true)?)).await {
            Ok(g) => g,
            Err(e) => return self.index_error(out, tag, e),
        };
        if let Some(sel) = &mut self.selected {
            sel.pending_expunge.extend(gone);
            sel.flush_expunges(out);
        }
        match self.report_changes(true, out).await {
            Flow::Continue => {
                response::ok(out, tag, "EXPUNGE completed.");
                Flow::Continue
            }
            other => other,
        }
    }
}
