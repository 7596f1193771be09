//! Mailing lists (issue 7): the lists and their settings. Rosters and bounce bookkeeping are
//! in `lists/members.rs`, the ezmlm address scheme in `lists/command.rs`, and which local
//! parts a list owns in `lists/claims.rs`. docs/LISTS.md describes all of it for the list
//! manager's builder.
//!
//! A list lives in a real domain (not a domain alias, as for users and aliases) and owns its
//! address and every `list-<command>` address: creating a user, alias or list that would
//! share one is refused, in both directions, inside the store's write lock.

pub(crate) mod claims;
pub mod command;
mod members;
mod model;

use rand::RngCore;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

pub use command::{ListCommand, verp_decode, verp_encode};
pub use members::normalize_member;
pub use model::{List, ListChanges, ListFlags, Member, MemberKind, ReplyTo};

use crate::address::{Address, normalize_domain};
use crate::connect::Store;
use crate::db;
use crate::error::{StoreError, is_unique_violation};

/// Longest subject prefix accepted, in characters.
pub const MAX_SUBJECT_PREFIX: usize = 64;
/// Longest footer accepted, in bytes.
pub const MAX_FOOTER: usize = 16 * 1024;

/// The columns [`list_from_row`] expects, for `lists l JOIN domains d`.
macro_rules! list_columns {
    () => {
        "l.local_part, d.name, l.moderated, l.members_only, l.archive, l.digest,
         l.subject_prefix, l.max_message_bytes, l.reply_to, l.footer, l.owner, l.created,
         l.next_post, l.next_digest, l.digested_through, l.last_digest_at,
         (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id AND m.kind = 'member'),
         (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id AND m.kind = 'digest'),
         (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id AND m.kind = 'moderator')"
    };
}

fn list_from_row(row: &AnyRow) -> Result<List, StoreError> {
    let local: String = row.try_get(0)?;
    let domain: String = row.try_get(1)?;
    let flag = |i: usize| row.try_get::<i64, _>(i).map(|v| v != 0);
    let reply_to: String = row.try_get(8)?;
    Ok(List {
        address: format!("{local}@{domain}"),
        local,
        domain,
        moderated: flag(2)?,
        members_only: flag(3)?,
        archive: flag(4)?,
        digest: flag(5)?,
        subject_prefix: row.try_get(6)?,
        max_message_bytes: row.try_get(7)?,
        reply_to: reply_to
            .parse()
            .map_err(|e: String| StoreError::Database(format!("stored list setting: {e}")))?,
        footer: row.try_get(9)?,
        owner: row.try_get(10)?,
        created: row.try_get(11)?,
        next_post: row.try_get(12)?,
        next_digest: row.try_get(13)?,
        digested_through: row.try_get(14)?,
        last_digest_at: row.try_get(15)?,
        members: row.try_get(16)?,
        digest_members: row.try_get(17)?,
        moderators: row.try_get(18)?,
    })
}

/// The id of list `addr` (already normalised); [`StoreError::DomainNotFound`] or
/// [`StoreError::NotFound`].
pub(crate) async fn require_list(
    conn: &mut AnyConnection,
    addr: &Address,
) -> Result<i64, StoreError> {
    let domain_id = db::require_domain(conn, &addr.domain).await?;
    let row = sqlx::query("SELECT id FROM lists WHERE domain_id = $1 AND local_part = $2")
        .bind(domain_id)
        .bind(&addr.local)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(StoreError::NotFound(db::quoted("mailing list", addr))),
    }
}

async fn fetch_list(conn: &mut AnyConnection, id: i64) -> Result<List, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        list_columns!(),
        " FROM lists l JOIN domains d ON d.id = l.domain_id WHERE l.id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    list_from_row(&row)
}

/// 32 bytes from the thread CSPRNG (ChaCha, seeded by the OS) as lower-case hex.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks every value of `changes` before anything is written.
fn check_changes(changes: &ListChanges) -> Result<ListChanges, StoreError> {
    let mut out = changes.clone();
    if let Some(prefix) = &changes.subject_prefix {
        // It goes into a Subject: header: a line break would inject headers.
        if prefix.chars().count() > MAX_SUBJECT_PREFIX || prefix.chars().any(char::is_control) {
            return Err(StoreError::InvalidValue(format!(
                "subject prefix {prefix:?} must be one line of at most {MAX_SUBJECT_PREFIX} characters"
            )));
        }
    }
    if let Some(Some(size)) = changes.max_message_bytes
        && size <= 0
    {
        return Err(StoreError::InvalidValue(format!(
            "maximum message size must be a positive number of bytes (got {size}); leave it unset for no limit"
        )));
    }
    if let Some(footer) = &changes.footer {
        let footer = footer.replace("\r\n", "\n");
        if footer.len() > MAX_FOOTER {
            return Err(StoreError::InvalidValue(format!(
                "footer is {} bytes; at most {MAX_FOOTER} are allowed",
                footer.len()
            )));
        }
        if let Some(c) = footer
            .chars()
            .find(|&c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(StoreError::InvalidValue(format!(
                "footer contains the control character {c:?}; only text, tabs and line breaks are allowed"
            )));
        }
        out.footer = Some(footer);
    }
    if let Some(Some(owner)) = &changes.owner {
        out.owner = Some(Some(normalize_member(owner)?));
    }
    Ok(out)
}

impl Store {
    /// Creates list `addr` with `flags` and a fresh cookie secret. The domain must be a real
    /// domain of ours; the address, and every `addr-<command>` address, must not be a user,
    /// alias or list (or list command address) of the domain: [`StoreError::Conflict`]
    /// naming the clash, [`StoreError::AlreadyExists`] for the list itself.
    pub async fn create_list(&self, addr: &Address, flags: ListFlags) -> Result<List, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut tx = self.begin_write().await?;
        let domain_id = db::require_domain(&mut tx, &addr.domain).await?;
        if db::user_exists(&mut tx, domain_id, &addr.local).await? {
            return Err(StoreError::Conflict(format!(
                "\"{addr}\" is a mailbox user; a list cannot have its address"
            )));
        }
        if db::alias_exists(&mut tx, domain_id, &addr.local).await? {
            return Err(StoreError::Conflict(format!(
                "\"{addr}\" is an alias; a list cannot have its address (remove the alias first)"
            )));
        }
        match claims::list_claiming(&mut tx, domain_id, &addr.local).await? {
            Some((_, ListCommand::Post)) => {
                return Err(StoreError::AlreadyExists(db::quoted("mailing list", &addr)));
            }
            Some((list, cmd)) => {
                return Err(StoreError::Conflict(format!(
                    "\"{addr}\" is a command address ({cmd}) of mailing list {list}@{}; pick another name",
                    addr.domain
                )));
            }
            None => {}
        }
        let taken = claims::taken_by_new_list(&mut tx, domain_id, &addr.local).await?;
        if let Some((name, kind)) = taken.first() {
            return Err(StoreError::Conflict(format!(
                "list \"{addr}\" would own the command address {name}@{} which is already a {kind}; \
                 remove the {kind} or pick another list name",
                addr.domain
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO lists (domain_id, local_part, moderated, members_only, archive, digest,
                                cookie_secret, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(domain_id)
        .bind(&addr.local)
        .bind(db::flag(flags.moderated))
        .bind(db::flag(flags.members_only))
        .bind(db::flag(flags.archive))
        .bind(db::flag(flags.digest))
        .bind(new_secret())
        .bind(db::now())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(db::quoted("mailing list", &addr)));
            }
            Err(e) => return Err(e.into()),
        };
        let list = fetch_list(&mut tx, id).await?;
        tx.commit().await?;
        Ok(list)
    }

    /// One list with its settings and roster sizes.
    pub async fn get_list(&self, addr: &Address) -> Result<List, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &addr).await?;
        fetch_list(&mut conn, id).await
    }

    /// The lists of one domain, or of every domain, sorted by address.
    pub async fn list_lists(&self, domain: Option<&str>) -> Result<Vec<List>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let only = match domain {
            Some(d) => {
                let d = normalize_domain(d)?;
                Some(db::require_domain(&mut conn, &d).await?)
            }
            None => None,
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            list_columns!(),
            " FROM lists l JOIN domains d ON d.id = l.domain_id
              WHERE l.domain_id = $1 OR $2 = 1 ORDER BY d.name, l.local_part"
        ))
        .bind(only.unwrap_or(0))
        .bind(i64::from(only.is_none()))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(list_from_row).collect()
    }

    /// Applies `changes` (all checked first; nothing is written if one is refused) and
    /// returns the list as it now is.
    pub async fn update_list(
        &self,
        addr: &Address,
        changes: &ListChanges,
    ) -> Result<List, StoreError> {
        let addr = db::renormalize(addr)?;
        let c = check_changes(changes)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &addr).await?;
        let cur = fetch_list(&mut tx, id).await?;
        sqlx::query(
            "UPDATE lists SET moderated = $1, members_only = $2, archive = $3, digest = $4,
                subject_prefix = $5, max_message_bytes = $6, reply_to = $7, footer = $8,
                owner = $9
             WHERE id = $10",
        )
        .bind(db::flag(c.moderated.unwrap_or(cur.moderated)))
        .bind(db::flag(c.members_only.unwrap_or(cur.members_only)))
        .bind(db::flag(c.archive.unwrap_or(cur.archive)))
        .bind(db::flag(c.digest.unwrap_or(cur.digest)))
        .bind(c.subject_prefix.unwrap_or(cur.subject_prefix))
        .bind(c.max_message_bytes.unwrap_or(cur.max_message_bytes))
        .bind(c.reply_to.unwrap_or(cur.reply_to).as_str())
        .bind(c.footer.unwrap_or(cur.footer))
        .bind(c.owner.unwrap_or(cur.owner))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let list = fetch_list(&mut tx, id).await?;
        tx.commit().await?;
        Ok(list)
    }

    /// Deletes a list and returns what it was. A list with addresses on any roster is
    /// [`StoreError::HasMembers`] unless `force`, in which case they go too. The list
    /// manager's files (archive, held posts) are its own to remove.
    pub async fn delete_list(&self, addr: &Address, force: bool) -> Result<List, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &addr).await?;
        let list = fetch_list(&mut tx, id).await?;
        let members = list.members + list.digest_members + list.moderators;
        if members > 0 && !force {
            return Err(StoreError::HasMembers {
                list: list.address,
                members,
            });
        }
        // Members go by ON DELETE CASCADE.
        sqlx::query("DELETE FROM lists WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(list)
    }

    /// The list's 32-byte cookie secret (made at creation, never shown by the CLI): the key
    /// the list manager signs confirmation cookies with.
    pub async fn list_secret(&self, addr: &Address) -> Result<[u8; 32], StoreError> {
        let addr = db::renormalize(addr)?;
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &addr).await?;
        let hex: String = sqlx::query("SELECT cookie_secret FROM lists WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        decode_secret(&hex).ok_or_else(|| {
            StoreError::Database(format!(
                "stored cookie secret of {addr} is not 64 hex digits"
            ))
        })
    }

    /// Takes the next post number of the list (1, 2, ...) and returns it: each call gets a
    /// different number, even from concurrent processes, and a number is never given twice
    /// (a post that then fails leaves a gap).
    pub async fn next_post_number(&self, addr: &Address) -> Result<i64, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &addr).await?;
        let n: i64 = sqlx::query(
            "UPDATE lists SET next_post = next_post + 1 WHERE id = $1 RETURNING next_post - 1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(n)
    }

    /// Records that a digest carrying the posts up to `through_post` was sent at `at` (Unix
    /// seconds) and returns that digest's number.
    pub async fn record_digest(
        &self,
        addr: &Address,
        through_post: i64,
        at: i64,
    ) -> Result<i64, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &addr).await?;
        let cur = fetch_list(&mut tx, id).await?;
        if through_post < cur.digested_through || through_post >= cur.next_post {
            return Err(StoreError::InvalidValue(format!(
                "digest of {addr} through post {through_post}: posts {} to {} are the ones not yet digested",
                cur.digested_through + 1,
                cur.next_post - 1
            )));
        }
        sqlx::query(
            "UPDATE lists SET next_digest = next_digest + 1, digested_through = $1,
                last_digest_at = $2 WHERE id = $3",
        )
        .bind(through_post)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(cur.next_digest)
    }
}

fn decode_secret(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hex_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(decode_secret(&a).is_some());
        assert_eq!(decode_secret("zz"), None);
        assert_eq!(decode_secret(&"g".repeat(64)), None);
    }

    #[test]
    fn changes_are_checked() {
        let bad = [
            ListChanges {
                subject_prefix: Some("[a]\r\nBcc: x".into()),
                ..Default::default()
            },
            ListChanges {
                max_message_bytes: Some(Some(0)),
                ..Default::default()
            },
            ListChanges {
                footer: Some("a\0b".into()),
                ..Default::default()
            },
            ListChanges {
                footer: Some("x".repeat(MAX_FOOTER + 1)),
                ..Default::default()
            },
            ListChanges {
                owner: Some(Some("not an address".into())),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(check_changes(&c).is_err(), "{c:?}");
        }
        let ok = check_changes(&ListChanges {
            footer: Some("--\r\nbye\r\n".into()),
            owner: Some(Some("Boss@Example.ORG".into())),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(ok.footer.as_deref(), Some("--\nbye\n"));
        assert_eq!(ok.owner, Some(Some("Boss@example.org".into())));
    }
}
