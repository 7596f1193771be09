//! SEARCH and UID SEARCH (RFC 3501 §6.4.4), with ESEARCH's RETURN (RFC 4731) and the MODSEQ
//! key (RFC 7162), evaluated by `crate::search` over this session's view on the blocking pool.
//! No EXPUNGE is sent during it (RFC 3501 §7.4.1); a message file is read only when the
//! index and the cached blob cannot answer.

use std::collections::BTreeSet;
use std::io::Read;

use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::search::SearchKey;

use super::fetch::blob_of;
use super::with_index;
use crate::search::{self, Hit, MessageFacts, ReturnOptions};
use crate::session::{Flow, Session, response};

/// Files larger than this are not read for SEARCH text keys.
const MAX_RAW: u64 = 1 << 30;

impl Session {
    pub(in crate::session) async fn search(
        &mut self,
        tag: &str,
        charset: Option<Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
        returns: Option<ReturnOptions>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let query = match search::compile(criteria.as_ref(), charset.as_ref()) {
            Ok(q) => q,
            Err(e) => {
                response::no(out, tag, e.text());
                return Flow::Continue;
            }
        };
        if query.uses_modseq() {
            self.condstore = true;
        }
        let Some(sel) = &self.selected else {
            return Flow::Continue;
        };
        let uids = sel.uids.clone();
        let recent: BTreeSet<u32> = sel.recent.clone();
        let hits = with_index(&sel.index, move |ix| {
            let max_seq = u32::try_from(uids.len()).unwrap_or(u32::MAX);
            let max_uid = uids.last().copied().unwrap_or(0);
            let mut hits = Vec::new();
            for (i, &u) in uids.iter().enumerate() {
                let Some(msg) = ix.message(u).cloned() else {
                    continue;
                };
                let blob = if query.needs_blob() {
                    ix.blob(u, &blob_of)?
                } else {
                    None
                };
                let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let mut facts = MessageFacts {
                    seq,
                    msg: &msg,
                    recent: recent.contains(&u),
                    keywords: ix.keywords(),
                    max_seq,
                    max_uid,
                    blob: blob.as_deref(),
                    raw: None,
                };
                let hit = match search::decide(&query, &facts) {
                    Some(answer) => answer,
                    None => {
                        let mut data = Vec::new();
                        if let Some((file, _)) = ix.open_message(u)? {
                            file.take(MAX_RAW).read_to_end(&mut data)?;
                        }
                        facts.raw = Some(&data);
                        search::matches(&query, &facts)
                    }
                };
                if hit {
                    hits.push(Hit {
                        id: if uid { u } else { seq },
                        modseq: msg.modseq,
                    });
                }
            }
            Ok((hits, query.uses_modseq()))
        })
        .await;
        let (hits, modseq) = match hits {
            Ok(h) => h,
            Err(e) => return self.index_error(out, tag, e),
        };
        match returns {
            Some(opts) => search::render_esearch(out, tag, uid, &hits, &opts, modseq),
            None => search::render_search(out, &hits, modseq),
        }
        match self.report_changes(false, out).await {
            Flow::Continue => {}
            other => return other,
        }
        response::ok(out, tag, "SEARCH completed.");
        Flow::Continue
    }
}
