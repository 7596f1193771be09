//! COPY / UID COPY (RFC 3501 §6.4.7) with `[COPYUID]` (RFC 4315) and MOVE / UID MOVE (RFC
//! 6851: the COPYUID goes in an untagged OK, then the EXPUNGEs, then the tagged OK). Each
//! message is streamed from its file into the target through moat_maildir's delivery (bounded
//! memory), keeping its flags (keywords re-mapped to the target's letters) and INTERNALDATE.
//! A copy that fails midway removes what it had copied, so the target is unchanged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use moat_maildir::{DeliverOptions, Flags, Quota};

use super::append::Refusal;
use super::store::compact;
use crate::index::Index;
use crate::mailbox::name::MailboxName;
use crate::mailbox::store::{Store, StoreError};
use crate::session::parse::mailbox_bytes;
use crate::session::{Flow, Session, blocking, response};

/// `(source set, target set)` for COPYUID: compact when the target UIDs rise with the source
/// ones (the usual case), else both spelled out in pair order.
fn uid_sets(pairs: &[(u32, u32)]) -> (String, String) {
    let rising = pairs.windows(2).all(|w| match w {
        [a, b] => a.1 < b.1,
        _ => true,
    });
    let (src, dst): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
    if rising {
        return (compact(src), compact(dst));
    }
    let join = |v: Vec<u32>| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    (join(src), join(dst))
}

impl Session {
    pub(in crate::session) async fn copy(
        &mut self,
        tag: &str,
        set: SequenceSet,
        mailbox: Mailbox<'static>,
        uid: bool,
        moving: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(target) = self.checked(tag, mailbox_bytes(&mailbox), out) else {
            return Flow::Continue;
        };
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        if moving && sel.read_only {
            return self.read_only(out, tag);
        }
        if !uid && sel.out_of_range(&set) {
            return self.bad(out, tag, "Invalid message sequence number.");
        }
        let uids: Vec<u32> = sel
            .resolve(&set, uid)
            .into_iter()
            .filter_map(|i| sel.uids.get(i).copied())
            .collect();
        let source = Arc::clone(&sel.index);
        let result =
            blocking(move || Ok(copy_messages(&store, &target, &source, &uids, moving))).await;
        let (validity, pairs) = match result {
            Ok(Ok(x)) => x,
            Ok(Err(r)) => return self.refusal(out, tag, r),
            Err(e) => return self.index_error(out, tag, e),
        };
        let code = if pairs.is_empty() {
            String::new()
        } else {
            let (src, dst) = uid_sets(&pairs);
            format!("[COPYUID {validity} {src} {dst}] ")
        };
        if moving {
            response::ok(out, "*", &format!("{code}Moved."));
            if let Some(sel) = &mut self.selected {
                sel.pending_expunge.extend(pairs.iter().map(|p| p.0));
                sel.flush_expunges(out);
            }
        }
        match self.report_changes(true, out).await {
            Flow::Continue => {}
            other => return other,
        }
        if moving {
            response::ok(out, tag, "MOVE completed.");
        } else {
            response::ok(out, tag, &format!("{code}COPY completed."));
        }
        Flow::Continue
    }
}

/// Copies (and for MOVE expunges) the messages; the target's UIDVALIDITY and the
/// `(source UID, target UID)` pairs.
fn copy_messages(
    store: &Store,
    target: &MailboxName,
    source: &Arc<Mutex<Index>>,
    uids: &[u32],
    moving: bool,
) -> Result<(u32, Vec<(u32, u32)>), Refusal> {
    if !store.exists(target) {
        return Err(Refusal::TryCreate);
    }
    let md = store.maildir(target)?;
    let mut dst = Index::open(&md)?;
    let quota = Quota::from_maildirsize(store.root())?;
    let mut src = source
        .lock()
        .map_err(|_| StoreError::Io("index mutex poisoned".into()))?;
    let mut copied: Vec<(u32, String)> = Vec::new();
    let outcome = (|| -> Result<(), Refusal> {
        for &uid in uids {
            let Some((file, entry)) = src.open_message(uid)? else {
                continue;
            };
            let date = src.message(uid).map_or(0, |m| m.internal_date);
            let flags = target_flags(&src, &mut dst, entry.flags)?;
            let mut opts = DeliverOptions::new().flags(flags).mtime(
                SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date).unwrap_or(0)),
            );
            if let Some(q) = &quota {
                opts = opts.quota(q);
            }
            let base = md.deliver_from(file, &opts)?;
            copied.push((uid, base));
        }
        Ok(())
    })();
    dst.sync()?;
    let pairs: Vec<(u32, u32)> = copied
        .iter()
        .filter_map(|(uid, base)| Some((*uid, dst.find_base(base)?.uid)))
        .collect();
    if let Err(e) = outcome {
        let undo: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let _ = dst.expunge(&undo, false);
        return Err(e);
    }
    if moving {
        let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        src.expunge(&moved, false)?;
    }
    Ok((dst.uid_validity(), pairs))
}

/// A message's letters for the target folder: system flags as they are, keywords by name.
fn target_flags(src: &Index, dst: &mut Index, flags: Flags) -> Result<Flags, Refusal> {
    let mut out = Flags::empty();
    let mut names = Vec::new();
    for c in flags.letters() {
        if c.is_ascii_uppercase() {
            // Not a keyword: the letter means the same in every folder.
            let _ = out.insert(c);
        } else if let Some(n) = src.keywords().name(c) {
            names.push(n.to_string());
        }
    }
    if !names.is_empty() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        // A keyword the target has no room for is dropped rather than failing the copy.
        out = out.union(dst.flags_from_imap(&refs)?.flags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyuid_sets() {
        assert_eq!(
            uid_sets(&[(1, 10), (2, 11), (5, 12)]),
            ("1:2,5".into(), "10:12".into())
        );
        assert_eq!(
            uid_sets(&[(1, 11), (2, 10)]),
            ("1,2".into(), "11,10".into())
        );
    }
}
