//! moat-lists' requests (docs/PROTOCOLS.md, "moat-auth", list requests): the list manager reads
//! and changes its lists through moat-auth instead of opening the store itself, so the store's
//! credentials (a PostgreSQL password in `store_url`, or the SQLite file in moat-auth's 0700
//! folder) stay with this one process. Only `peers_lists` (and root, our own uid) may ask.
//!
//! | kind | fields | reply |
//! |---|---|---|
//! | `G` | list | `K` [members_only, moderated (`0`/`1`), subject prefix, max message bytes ("" = none), cookie secret (64 hex digits)] |
//! | `M` | list, offset | `K` [up to `PAGE` member addresses from `offset`, sorted]; fewer than `PAGE` = the end |
//! | `I` | list, address | `K` [`1` a member, `0` not] |
//! | `S` | list, address | `K` [`added` or `already`] |
//! | `U` | list, address | `K` [`removed` or `absent`] |
//! | `N` | list | `K` [the post's number] (never the same twice) |
//!
//! A list that does not exist is `D` ["no such list"], a malformed field `D` ["malformed
//! request: ..."], a store problem `Z`.
//!
//! SECURITY: the cookie secret leaves moat-auth only towards moat-lists, which needs it to make
//! and check confirmation cookies. Fields are bounded (addresses ≤ 320 bytes) and parsed again.

use moat_common::wire::{Record, Status};
use moat_common::{error, warn};

use super::handlers::{MAX_ADDRESS, UNAVAILABLE};
use crate::Store;
use crate::address::Address;
use crate::error::StoreError;
use crate::lists::MemberKind;

/// The request kinds served to moat-lists.
pub const KINDS: &[u8] = b"GMISUN";
/// Member addresses per `M` reply: 150 × 320 bytes stays under a frame (64 KiB).
pub const PAGE: usize = 150;
pub const NO_SUCH_LIST: &str = "no such list";

pub async fn handle(store: &Store, req: &Record) -> Record {
    match answer(store, req).await {
        Ok(fields) => fields
            .into_iter()
            .fold(Status::Ok(String::new()).to_record(), Record::field),
        Err(status) => status.to_record(),
    }
}

async fn answer(store: &Store, req: &Record) -> Result<Vec<String>, Status> {
    let want = match req.kind {
        b'G' | b'N' => 1,
        _ => 2,
    };
    if req.fields.len() != want {
        return Err(malformed(format!(
            "{} fields instead of {want}",
            req.fields.len()
        )));
    }
    let text = |i: usize| -> Result<&str, Status> {
        let bytes = &req.fields[i];
        if bytes.len() > MAX_ADDRESS {
            return Err(malformed(format!("field {i} is too long")));
        }
        std::str::from_utf8(bytes).map_err(|_| malformed(format!("field {i} is not UTF-8")))
    };
    let list = Address::parse(text(0)?).map_err(|e| malformed(format!("list: {e}")))?;
    let kind = Some(MemberKind::Member);
    let out = match req.kind {
        b'G' => {
            let l = store.get_list(&list).await.map_err(|e| failed(&list, e))?;
            let secret = store
                .list_secret(&list)
                .await
                .map_err(|e| failed(&list, e))?;
            let flag = |b: bool| if b { "1" } else { "0" }.to_string();
            vec![
                flag(l.members_only),
                flag(l.moderated),
                l.subject_prefix,
                l.max_message_bytes
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                secret.iter().map(|b| format!("{b:02x}")).collect(),
            ]
        }
        b'M' => {
            let offset: usize = text(1)?
                .parse()
                .map_err(|_| malformed("offset is not a number".into()))?;
            let all = store
                .list_members(&list, kind)
                .await
                .map_err(|e| failed(&list, e))?;
            all.into_iter()
                .skip(offset)
                .take(PAGE)
                .map(|m| m.address)
                .collect()
        }
        b'I' => {
            let yes = store
                .is_member(&list, text(1)?, kind)
                .await
                .map_err(|e| failed(&list, e))?;
            vec![if yes { "1" } else { "0" }.into()]
        }
        b'S' => match store.add_member(&list, text(1)?, MemberKind::Member).await {
            Ok(_) => vec!["added".into()],
            Err(StoreError::AlreadyExists(_)) => vec!["already".into()],
            Err(e) => return Err(failed(&list, e)),
        },
        b'U' => match store
            .remove_member(&list, text(1)?, MemberKind::Member)
            .await
        {
            Ok(_) => vec!["removed".into()],
            Err(StoreError::NotFound(_)) => vec!["absent".into()],
            Err(e) => return Err(failed(&list, e)),
        },
        b'N' => vec![
            store
                .next_post_number(&list)
                .await
                .map_err(|e| failed(&list, e))?
                .to_string(),
        ],
        _ => return Err(Status::Permanent("unknown request".into())),
    };
    Ok(out)
}

fn malformed(why: String) -> Status {
    warn!("malformed list request: {why}");
    Status::Permanent(format!("malformed request: {why}"))
}

/// A store error as the reply: a missing list or a bad value is permanent, the rest temporary.
fn failed(list: &Address, e: StoreError) -> Status {
    match e {
        StoreError::NotFound(_) => Status::Permanent(NO_SUCH_LIST.into()),
        StoreError::InvalidAddress(e) => Status::Permanent(format!("malformed request: {e}")),
        StoreError::InvalidValue(e) => Status::Permanent(format!("malformed request: {e}")),
        e => {
            error!("mailing list {list}: {e}");
            Status::Temporary(UNAVAILABLE.into())
        }
    }
}
