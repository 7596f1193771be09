//! moat-lists' requests (docs/PROTOCOLS.md, "moat-auth", list requests): the list manager reads
//! and changes its lists through moat-auth instead of opening the store itself, so the store's
//! credentials (a PostgreSQL password in `store_url`, or the SQLite file in moat-auth's 0700
//! folder) stay with this one process. Only `peers_lists` (and root, our own uid) may ask.
//!
//! | kind | fields | reply |
//! |---|---|---|
//! | `G` | list | `K` [members_only, moderated, archive, digest (`0`/`1`), subject prefix, max message bytes ("" = none), cookie secret (64 hex digits), reply_to (`list`/`poster`/`none`), footer, owner ("" = none), next post, next digest, digested through, last digest at ("" = never)] |
//! | `M` | list, offset[, kind] | `K` [up to `PAGE` addresses of that roster from `offset`, sorted]; fewer than `PAGE` = the end |
//! | `I` | list, address[, kind] | `K` [`1` on that roster, `0` not] |
//! | `S` | list, address[, kind] | `K` [`added` or `already`] |
//! | `U` | list, address[, kind] | `K` [`removed` or `absent`] |
//! | `N` | list | `K` [the post's number] (never the same twice) |
//! | `W` | list, address[, kind] | `K` [] when absent, else `K` [bounce count, first bounce at ("" = none), probe sent at ("" = none)] |
//! | `B` | list, address, at[, kind] | records a bounce at `at` (Unix seconds): `K` [the entry's new bounce state, as `W`]; `D` ["not a member"] when absent |
//! | `P` | list, address, at or ""[, kind] | records a probe sent at `at` ("" = none outstanding): `K` [bounce state]; `D` ["not a member"] when absent |
//! | `C` | list, address[, kind] | forgets the entry's bounces and probe: `K` [bounce state]; `D` ["not a member"] when absent |
//! | `X` | list, through post, at | records a digest carrying the posts up to `through post`, sent at `at`: `K` [the digest's number] |
//!
//! `kind` is `member` (the default when left out), `digest` or `moderator`.
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
use crate::lists::{Member, MemberKind};

/// The request kinds served to moat-lists.
pub const KINDS: &[u8] = b"GMISUNWBPCX";
/// Member addresses per `M` reply: 150 × 320 bytes stays under a frame (64 KiB).
pub const PAGE: usize = 150;
pub const NO_SUCH_LIST: &str = "no such list";
pub const NOT_A_MEMBER: &str = "not a member";

pub async fn handle(store: &Store, req: &Record) -> Record {
    match answer(store, req).await {
        Ok(fields) => fields
            .into_iter()
            .fold(Status::Ok(String::new()).to_record(), Record::field),
        Err(status) => status.to_record(),
    }
}

async fn answer(store: &Store, req: &Record) -> Result<Vec<String>, Status> {
    // (fewest fields, most fields): the optional last one is the roster kind.
    let (least, most) = match req.kind {
        b'G' | b'N' => (1, 1),
        b'M' | b'I' | b'S' | b'U' | b'W' | b'C' => (2, 3),
        b'B' | b'P' => (3, 4),
        b'X' => (3, 3),
        _ => return Err(Status::Permanent("unknown request".into())),
    };
    let n = req.fields.len();
    if n < least || n > most {
        return Err(malformed(format!(
            "{n} fields instead of {least} to {most}"
        )));
    }
    let text = |i: usize| -> Result<&str, Status> {
        let bytes = &req.fields[i];
        if bytes.len() > MAX_ADDRESS {
            return Err(malformed(format!("field {i} is too long")));
        }
        std::str::from_utf8(bytes).map_err(|_| malformed(format!("field {i} is not UTF-8")))
    };
    let number = |i: usize| -> Result<i64, Status> {
        text(i)?
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| malformed(format!("field {i} is not a number")))
    };
    let list = Address::parse(text(0)?).map_err(|e| malformed(format!("list: {e}")))?;
    let kind = if n == most && least != most {
        text(n - 1)?
            .parse::<MemberKind>()
            .map_err(|e| malformed(format!("kind: {e}")))?
    } else {
        MemberKind::Member
    };
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let state = |m: Member| {
        vec![
            m.bounce_count.to_string(),
            opt(m.first_bounce_at),
            opt(m.probe_sent_at),
        ]
    };
    let member_failed = |e: StoreError| match e {
        StoreError::NotFound(_) => Status::Permanent(NOT_A_MEMBER.into()),
        e => failed(&list, e),
    };
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
                flag(l.archive),
                flag(l.digest),
                l.subject_prefix,
                opt(l.max_message_bytes),
                secret.iter().map(|b| format!("{b:02x}")).collect(),
                l.reply_to.as_str().to_string(),
                l.footer,
                l.owner.unwrap_or_default(),
                l.next_post.to_string(),
                l.next_digest.to_string(),
                l.digested_through.to_string(),
                opt(l.last_digest_at),
            ]
        }
        b'M' => {
            // Keyset paging: field 1 is the last address of the previous page ("" = start).
            let page = store
                .list_members_page(&list, kind, text(1)?, PAGE as u32)
                .await
                .map_err(|e| failed(&list, e))?;
            page.into_iter().map(|m| m.address).collect()
        }
        b'I' => {
            let yes = store
                .is_member(&list, text(1)?, Some(kind))
                .await
                .map_err(|e| failed(&list, e))?;
            vec![if yes { "1" } else { "0" }.into()]
        }
        b'S' => match store.add_member(&list, text(1)?, kind).await {
            Ok(_) => vec!["added".into()],
            Err(StoreError::AlreadyExists(_)) => vec!["already".into()],
            Err(e) => return Err(failed(&list, e)),
        },
        b'U' => match store.remove_member(&list, text(1)?, kind).await {
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
        b'W' => match store.get_member(&list, text(1)?, kind).await {
            Ok(Some(m)) => state(m),
            Ok(None) => vec![],
            Err(e) => return Err(failed(&list, e)),
        },
        b'B' => state(
            store
                .record_bounce(&list, text(1)?, kind, number(2)?)
                .await
                .map_err(member_failed)?,
        ),
        b'P' => {
            let at = match text(2)? {
                "" => None,
                _ => Some(number(2)?),
            };
            state(
                store
                    .set_probe_sent(&list, text(1)?, kind, at)
                    .await
                    .map_err(member_failed)?,
            )
        }
        b'C' => state(
            store
                .clear_bounces(&list, text(1)?, kind)
                .await
                .map_err(member_failed)?,
        ),
        b'X' => vec![
            store
                .record_digest(&list, number(1)?, number(2)?)
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
