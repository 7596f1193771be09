//! APPEND (RFC 3501 §6.3.11) with UIDPLUS's `[APPENDUID]` (RFC 4315), APPENDLIMIT (RFC 7889,
//! enforced by `input.rs` before the literal is requested) and the Maildir++ quota
//! (`[OVERQUOTA]`, RFC 9208). The message goes through moat_maildir's delivery (tmp/, fsync,
//! rename into cur/ with its flags, mtime = INTERNALDATE), then the target's index gives it its
//! UID and keeps the blob the append computed anyway.

use std::time::{Duration, SystemTime};

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use moat_maildir::{DeliverOptions, Error as MaildirError, Quota};

use super::store::flag_name;
use crate::index::Index;
use crate::mailbox::store::StoreError;
use crate::session::parse::mailbox_bytes;
use crate::session::{Flow, Session, blocking, response};
use crate::settings::APPEND_LIMIT;

/// Why a copy or append was refused, as the client hears it.
pub enum Refusal {
    TryCreate,
    OverQuota,
    Flags(Vec<String>),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

impl From<MaildirError> for Refusal {
    fn from(e: MaildirError) -> Self {
        match e {
            MaildirError::OverQuota { .. } => Refusal::OverQuota,
            other => Refusal::Store(other.into()),
        }
    }
}

impl Session {
    /// Answers a refusal; `Store` errors go through `store_error` (logged).
    pub(super) fn refusal(&self, out: &mut Vec<u8>, tag: &str, r: Refusal) -> Flow {
        match r {
            Refusal::TryCreate => response::no(out, tag, "[TRYCREATE] No such mailbox."),
            Refusal::OverQuota => response::no(out, tag, "[OVERQUOTA] Quota exceeded."),
            Refusal::Flags(f) => response::no(
                out,
                tag,
                &format!("[CANNOT] These flags cannot be stored: {}.", f.join(" ")),
            ),
            Refusal::Store(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }

    pub(in crate::session) async fn append(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(name) = self.checked(tag, mailbox_bytes(&mailbox), out) else {
            return Flow::Continue;
        };
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        let data = match message {
            LiteralOrLiteral8::Literal(l) => l.into_inner(),
            LiteralOrLiteral8::Literal8(l) => l.data,
        };
        if data.len() > APPEND_LIMIT {
            response::no(out, tag, "[TOOBIG] Message too large.");
            return Flow::Continue;
        }
        if data.is_empty() {
            response::no(out, tag, "[CANNOT] An empty message cannot be stored.");
            return Flow::Continue;
        }
        let names: Vec<String> = flags
            .iter()
            .map(flag_name)
            .filter(|n| !n.eq_ignore_ascii_case("\\Recent"))
            .collect();
        // INTERNALDATE: the client's, else now (RFC 3501 §6.3.11).
        let mtime = date.map(|d| {
            let secs = d.as_ref().timestamp();
            match u64::try_from(secs) {
                Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
                Err(_) => SystemTime::UNIX_EPOCH,
            }
        });
        let blob = super::fetch::blob_of(&data);
        let result =
            blocking(move || Ok(deliver(&store, &name, &data, &names, mtime, &blob))).await;
        let (uid_validity, uid) = match result {
            Ok(Ok(x)) => x,
            Ok(Err(r)) => return self.refusal(out, tag, r),
            Err(e) => return self.index_error(out, tag, e),
        };
        match self.report_changes(true, out).await {
            Flow::Continue => {}
            other => return other,
        }
        let code = match uid {
            Some(uid) => format!("[APPENDUID {uid_validity} {uid}] "),
            None => String::new(),
        };
        response::ok(out, tag, &format!("{code}APPEND completed."));
        Flow::Continue
    }
}

/// Delivers the message into the mailbox; its UIDVALIDITY and UID (when the index found it).
fn deliver(
    store: &crate::mailbox::store::Store,
    name: &crate::mailbox::name::MailboxName,
    data: &[u8],
    names: &[String],
    mtime: Option<SystemTime>,
    blob: &[u8],
) -> Result<(u32, Option<u32>), Refusal> {
    if !store.exists(name) {
        return Err(Refusal::TryCreate);
    }
    let md = store.maildir(name)?;
    let mut ix = Index::open(&md)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let imap = ix.flags_from_imap(&refs)?;
    if !imap.refused.is_empty() {
        return Err(Refusal::Flags(imap.refused));
    }
    let quota = Quota::from_maildirsize(store.root())?;
    let mut opts = DeliverOptions::new().flags(imap.flags);
    if let Some(q) = &quota {
        opts = opts.quota(q);
    }
    if let Some(t) = mtime {
        opts = opts.mtime(t);
    }
    let base = md.deliver_with(data, &opts)?;
    ix.sync()?;
    let uid = ix.find_base(&base).map(|m| m.uid);
    if let Some(uid) = uid
        && !blob.is_empty()
    {
        // The parse was done anyway; a failure here only costs a parse at the first FETCH.
        let _ = ix.set_blob(uid, blob);
    }
    Ok((ix.uid_validity(), uid))
}
