//! APPEND (RFC 3501 §6.3.11) with UIDPLUS's `[APPENDUID]` (RFC 4315), APPENDLIMIT (RFC 7889),
//! BINARY's literal8 (RFC 3516) and the Maildir++ quota (`[OVERQUOTA]`, RFC 9208), streamed:
//! the message literal never sits in memory.
//!
//! `input.rs` announces the APPEND's message literal (`Event::Append`) before any of it is
//! requested. `append_begin` decides then: the mailbox (`[TRYCREATE]`), the flags, the size
//! against APPENDLIMIT (`[TOOBIG]`) and the quota (`[OVERQUOTA]`, with the announced size) are
//! checked and the Maildir's tmp/ file is created; only then is `+` sent (a synchronising
//! literal) or the literal taken. A refusal of a synchronising literal is answered at once;
//! a non-synchronising literal is read and dropped first (`input.rs` bounds that). The bytes
//! are written to the tmp/ file `CHUNK` at a time on the blocking pool (`append_data`);
//! `append_done` commits (fsync, quota again with the real size, rename into cur/ with the
//! flags, mtime = INTERNALDATE) and indexes the message. A connection that ends mid-literal
//! drops the upload, whose tmp/ file goes with it (`moat_maildir::Delivery`).

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use imap_codec::imap_types::datetime::DateTime;
use moat_maildir::{DeliverOptions, Delivery, Error as MaildirError, Flags, Quota};

use super::store::flag_name;
use crate::index::Index;
use crate::mailbox::name::{self, MailboxName};
use crate::mailbox::store::{Store, StoreError};
use crate::session::input::{Input, Refuse};
use crate::session::parse::{AppendHead, mailbox_bytes};
use crate::session::{Flow, Session, State, blocking, response};

/// Literal bytes written to the file at a time: the memory one APPEND holds.
const CHUNK: usize = 64 * 1024;
/// Messages up to this size are read back once to store their blob (one parse per delivery,
/// docs/IMAP.md); larger ones are parsed at their first FETCH of ENVELOPE or BODYSTRUCTURE.
const BLOB_NOW_MAX: u64 = 1024 * 1024;

/// Why a copy or append was refused, as the client hears it.
pub enum Refusal {
    TryCreate,
    OverQuota,
    TooBig,
    Flags(Vec<String>),
    /// A `NO` with this text.
    No(String),
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

/// An APPEND whose literal is arriving: being written, or refused and being dropped.
pub enum Upload {
    Writing(Box<Writing>),
    Refused { tag: String, refusal: Refusal },
}

/// An accepted APPEND: the tmp/ file and what its commit needs.
pub struct Writing {
    tag: String,
    /// `None` while a write runs on the blocking pool, or after a failure (the file is gone).
    delivery: Option<Delivery>,
    buf: Vec<u8>,
    store: Store,
    index: Index,
    flags: Flags,
    mtime: Option<SystemTime>,
    /// A write failed: the rest of the literal is dropped and this is the answer.
    failed: Option<Refusal>,
}

impl Writing {
    /// Writes the buffered bytes into the tmp/ file on the blocking pool.
    async fn flush(&mut self) {
        if self.failed.is_some() || self.buf.is_empty() {
            self.buf.clear();
            return;
        }
        let Some(mut delivery) = self.delivery.take() else {
            return;
        };
        let buf = std::mem::take(&mut self.buf);
        let written = blocking(move || {
            let result = delivery.write(&buf);
            Ok((delivery, buf, result))
        })
        .await;
        match written {
            Ok((delivery, mut buf, Ok(()))) => {
                buf.clear();
                self.buf = buf;
                self.delivery = Some(delivery);
            }
            // The delivery is dropped here: its tmp/ file is removed.
            Ok((_, _, Err(e))) => self.failed = Some(e.into()),
            Err(e) => self.failed = Some(Refusal::Store(e)),
        }
    }
}

/// INTERNALDATE: the client's, else now (RFC 3501 §6.3.11).
fn mtime(date: Option<&DateTime>) -> Option<SystemTime> {
    date.map(|d| match u64::try_from(d.as_ref().timestamp()) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    })
}

impl Session {
    /// Answers a refusal; `Store` errors go through `store_error` (logged).
    pub(super) fn refusal(&self, out: &mut Vec<u8>, tag: &str, r: Refusal) -> Flow {
        match r {
            Refusal::TryCreate => response::no(out, tag, "[TRYCREATE] No such mailbox."),
            Refusal::OverQuota => response::no(out, tag, "[OVERQUOTA] Quota exceeded."),
            Refusal::TooBig => response::no(
                out,
                tag,
                &format!(
                    "[TOOBIG] The message is larger than APPENDLIMIT={}.",
                    self.config.append_limit
                ),
            ),
            Refusal::Flags(f) => response::no(
                out,
                tag,
                &format!("[CANNOT] These flags cannot be stored: {}.", f.join(" ")),
            ),
            Refusal::No(text) => response::no(out, tag, &text),
            Refusal::Store(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }

    /// An APPEND announced its message literal (`input::Event::Append`): accept it (the
    /// continuation request goes into `out` for a synchronising literal) or refuse it.
    pub async fn append_begin(
        &mut self,
        head: AppendHead,
        input: &mut Input,
        out: &mut Vec<u8>,
    ) -> Flow {
        let tag = head.tag.clone();
        match self.prepare(head).await {
            Ok(writing) => {
                if input.accept_append() {
                    out.extend_from_slice(b"+ Ready for literal data\r\n");
                }
                self.upload = Some(Upload::Writing(Box::new(writing)));
                Flow::Continue
            }
            Err(refusal) => match input.refuse_append() {
                Refuse::Now => self.refusal(out, &tag, refusal),
                Refuse::Discard => {
                    self.upload = Some(Upload::Refused { tag, refusal });
                    Flow::Continue
                }
                Refuse::Close => {
                    self.refusal(out, &tag, refusal);
                    response::bye(out, "The refused message is too large to skip.");
                    self.state = State::Logout;
                    Flow::Close
                }
            },
        }
    }

    /// Literal bytes arrived (`input::Event::LiteralData`): into the file, `CHUNK` at a time.
    /// True when a chunk was written (the upload is making progress).
    pub async fn append_data(&mut self, input: &mut Input) -> bool {
        let Some(Upload::Writing(w)) = &mut self.upload else {
            return false;
        };
        input.take_literal(&mut w.buf, CHUNK);
        if w.buf.len() < CHUNK {
            return false;
        }
        w.flush().await;
        true
    }

    /// The literal and its line are complete (`input::Event::AppendDone`): the answer.
    pub async fn append_done(&mut self, out: &mut Vec<u8>) -> Flow {
        match self.upload.take() {
            None => Flow::Continue,
            Some(Upload::Refused { tag, refusal }) => self.refusal(out, &tag, refusal),
            Some(Upload::Writing(w)) => self.append_commit(*w, out).await,
        }
    }

    /// Everything decided before the literal is requested.
    async fn prepare(&mut self, head: AppendHead) -> Result<Writing, Refusal> {
        let Some(store) = self.user_store() else {
            return Err(Refusal::No("Log in first.".into()));
        };
        let name = name::parse(mailbox_bytes(&head.mailbox))
            .map_err(|e| Refusal::No(format!("[CANNOT] {}.", e.text())))?;
        if head.length == 0 {
            return Err(Refusal::No(
                "[CANNOT] An empty message cannot be stored.".into(),
            ));
        }
        if u64::from(head.length) > self.config.append_limit {
            return Err(Refusal::TooBig);
        }
        let names: Vec<String> = head
            .flags
            .iter()
            .map(flag_name)
            .filter(|n| !n.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let length = head.length;
        let (store, index, flags, delivery) = blocking(move || {
            Ok(open_target(&store, &name, &names, length)
                .map(|(index, flags, delivery)| (store, index, flags, delivery)))
        })
        .await??;
        Ok(Writing {
            tag: head.tag,
            delivery: Some(delivery),
            buf: Vec::with_capacity(CHUNK),
            store,
            index,
            flags,
            mtime: mtime(head.date.as_ref()),
            failed: None,
        })
    }

    /// Commits the upload and answers with `[APPENDUID]`.
    async fn append_commit(&mut self, mut w: Writing, out: &mut Vec<u8>) -> Flow {
        w.flush().await;
        let tag = w.tag.clone();
        if let Some(refusal) = w.failed.take() {
            return self.refusal(out, &tag, refusal);
        }
        let result = blocking(move || Ok(commit(w))).await;
        let (uid_validity, uid) = match result {
            Ok(Ok(x)) => x,
            Ok(Err(r)) => return self.refusal(out, &tag, r),
            Err(e) => return self.index_error(out, &tag, e),
        };
        match self.report_changes(true, out).await {
            Flow::Continue => {}
            other => return other,
        }
        let code = match uid {
            Some(uid) => format!("[APPENDUID {uid_validity} {uid}] "),
            None => String::new(),
        };
        response::ok(out, &tag, &format!("{code}APPEND completed."));
        Flow::Continue
    }
}

/// The target mailbox's index, the flags as letters, and the new tmp/ file; the quota is
/// checked with the announced size.
fn open_target(
    store: &Store,
    name: &MailboxName,
    names: &[String],
    length: u32,
) -> Result<(Index, Flags, Delivery), Refusal> {
    if !store.exists(name) {
        return Err(Refusal::TryCreate);
    }
    let md = store.maildir(name)?;
    let mut index = Index::open(&md)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let imap = index.flags_from_imap(&refs)?;
    if !imap.refused.is_empty() {
        return Err(Refusal::Flags(imap.refused));
    }
    if let Some(quota) = Quota::from_maildirsize(store.root())? {
        quota.ensure_fits(u64::from(length), 1)?;
    }
    Ok((index, imap.flags, md.start_delivery()?))
}

/// Commits the file (the quota checked again, with its size now and the usage now) and
/// indexes it: the UIDVALIDITY and UID (when the index found it).
fn commit(mut w: Writing) -> Result<(u32, Option<u32>), Refusal> {
    let Some(delivery) = w.delivery.take() else {
        return Err(Refusal::Store(StoreError::Io("append: no file".into())));
    };
    let size = delivery.size();
    let quota = Quota::from_maildirsize(w.store.root())?;
    let mut opts = DeliverOptions::new().flags(w.flags);
    if let Some(q) = &quota {
        opts = opts.quota(q);
    }
    if let Some(t) = w.mtime {
        opts = opts.mtime(t);
    }
    let base = delivery.commit(&opts)?;
    let ix = &mut w.index;
    ix.sync()?;
    let uid = ix.find_base(&base).map(|m| m.uid);
    if let Some(uid) = uid
        && size <= BLOB_NOW_MAX
    {
        // One parse now saves one at the first FETCH; a failure only costs that parse.
        let _ = store_blob(ix, uid, size);
    }
    Ok((ix.uid_validity(), uid))
}

/// Reads the small message back and stores its blob.
fn store_blob(ix: &mut Index, uid: u32, size: u64) -> Result<(), StoreError> {
    let Some((file, _)) = ix.open_message(uid)? else {
        return Ok(());
    };
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(BLOB_NOW_MAX).read_to_end(&mut data)?;
    let blob = super::fetch::blob_of(&data);
    if !blob.is_empty() {
        ix.set_blob(uid, &blob)?;
    }
    Ok(())
}
