//! The rosters of a list (members, digest members, moderators) and the bounce bookkeeping
//! the list manager keeps per address.
//!
//! Member addresses are usually remote, so the local part is the other site's to interpret:
//! it is kept as given (checked for dot-atom characters like ours) while the domain is
//! normalised to a lower-case A-label. Lookups ignore the local part's case (as Mailman's
//! do): `Bob@x` and `bob@x` are one member.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::model::{Member, MemberKind};
use super::require_list;
use crate::address::{Address, normalize_domain, normalize_local_part};
use crate::connect::Store;
use crate::db;
use crate::error::{StoreError, is_unique_violation};

/// Normalises an address for a roster (or a list's owner): `local@domain`, the local part
/// checked by the same rules as ours but its case kept, the domain IDNA-mapped to a
/// lower-case A-label.
pub fn normalize_member(input: &str) -> Result<String, StoreError> {
    let trimmed = input.trim();
    let parsed_shape = Address::parse(trimmed)?;
    // Address::parse split at the last '@' and checked both halves; keep the local part's
    // original case.
    let local = trimmed
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(&parsed_shape.local);
    normalize_local_part(local)?;
    Ok(format!(
        "{local}@{}",
        normalize_domain(&parsed_shape.domain)?
    ))
}

const MEMBER_COLUMNS: &str =
    "address, kind, added_at, bounce_count, first_bounce_at, probe_sent_at";

fn member_from_row(list: &Address, row: &AnyRow) -> Result<Member, StoreError> {
    let kind: String = row.try_get(1)?;
    Ok(Member {
        list: list.to_string(),
        address: row.try_get(0)?,
        kind: kind
            .parse()
            .map_err(|e: String| StoreError::Database(format!("stored member: {e}")))?,
        added_at: row.try_get(2)?,
        bounce_count: row.try_get(3)?,
        first_bounce_at: row.try_get(4)?,
        probe_sent_at: row.try_get(5)?,
    })
}

/// The quoted name of a roster entry for messages.
fn entry(list: &Address, address: &str, kind: MemberKind) -> String {
    format!("{kind} \"{address}\" of mailing list \"{list}\"")
}

impl Store {
    /// The addresses on the list's rosters (one kind, or all), sorted by kind then address.
    pub async fn list_members(
        &self,
        list: &Address,
        kind: Option<MemberKind>,
    ) -> Result<Vec<Member>, StoreError> {
        let list = db::renormalize(list)?;
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &list).await?;
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM list_members
             WHERE list_id = $1 AND (kind = $2 OR $2 = '')
             ORDER BY CASE kind WHEN 'member' THEN 0 WHEN 'digest' THEN 1 ELSE 2 END,
                      lower(address)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(kind.map_or("", MemberKind::as_str))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(|r| member_from_row(&list, r)).collect()
    }

    /// Up to `limit` addresses of one roster that sort after `after` (by lower-cased
    /// address; `""` starts at the beginning), in the order of [`Store::list_members`]: one
    /// page of a roster read in pages. Keyset paging: the next page starts after the last
    /// address of this one, so a subscription or removal between pages neither skips nor
    /// repeats anyone else, and each page is one range scan of the unique index on
    /// `(list_id, kind, lower(address))` however deep into the roster it is.
    pub async fn list_members_page(
        &self,
        list: &Address,
        kind: MemberKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let list = db::renormalize(list)?;
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &list).await?;
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM list_members
             WHERE list_id = $1 AND kind = $2 AND lower(address) > lower($3)
             ORDER BY lower(address)
             LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(kind.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(|r| member_from_row(&list, r)).collect()
    }

    /// Puts `address` on the `kind` roster of the list. [`StoreError::AlreadyExists`] if it
    /// is there already (in any letter case).
    pub async fn add_member(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
    ) -> Result<Member, StoreError> {
        let list = db::renormalize(list)?;
        let address = normalize_member(address)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &list).await?;
        let inserted = sqlx::query(
            "INSERT INTO list_members (list_id, address, kind, added_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&address)
        .bind(kind.as_str())
        .bind(db::now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(entry(&list, &address, kind)));
            }
            Err(e) => return Err(e.into()),
        }
        let member = fetch_member(&mut tx, &list, id, &address, kind).await?;
        tx.commit().await?;
        member.ok_or_else(|| StoreError::Database("member vanished after insert".into()))
    }

    /// Takes `address` off the `kind` roster and returns the entry it was.
    /// [`StoreError::NotFound`] if it was not there.
    pub async fn remove_member(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
    ) -> Result<Member, StoreError> {
        let list = db::renormalize(list)?;
        let address = normalize_member(address)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &list).await?;
        let Some(member) = fetch_member(&mut tx, &list, id, &address, kind).await? else {
            return Err(StoreError::NotFound(entry(&list, &address, kind)));
        };
        sqlx::query(
            "DELETE FROM list_members WHERE list_id = $1 AND kind = $2 AND lower(address) = lower($3)",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(&address)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(member)
    }

    /// The roster entry of `address`, if it is on the `kind` roster.
    pub async fn get_member(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
    ) -> Result<Option<Member>, StoreError> {
        let list = db::renormalize(list)?;
        let address = normalize_member(address)?;
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &list).await?;
        fetch_member(&mut conn, &list, id, &address, kind).await
    }

    /// Whether `address` is on the `kind` roster (`None`: on any roster). An address that
    /// could never be on one (malformed: a sender of junk) is simply not a member.
    pub async fn is_member(
        &self,
        list: &Address,
        address: &str,
        kind: Option<MemberKind>,
    ) -> Result<bool, StoreError> {
        let list = db::renormalize(list)?;
        let Ok(address) = normalize_member(address) else {
            return Ok(false);
        };
        let mut conn = self.pool.acquire().await?;
        let id = require_list(&mut conn, &list).await?;
        let row = sqlx::query(
            "SELECT 1 FROM list_members
             WHERE list_id = $1 AND lower(address) = lower($2) AND (kind = $3 OR $3 = '') LIMIT 1",
        )
        .bind(id)
        .bind(&address)
        .bind(kind.map_or("", MemberKind::as_str))
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.is_some())
    }

    /// Counts one bounce for the entry at `at` (Unix seconds): the count goes up by one and
    /// the first bounce time is set if there was none. Returns the entry as it now is.
    pub async fn record_bounce(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
        at: i64,
    ) -> Result<Member, StoreError> {
        self.update_member(
            list,
            address,
            kind,
            "bounce_count = bounce_count + 1, first_bounce_at = COALESCE(first_bounce_at, $4)",
            Some(at),
        )
        .await
    }

    /// Records that a probe (warning message) was sent at `at`, or (`None`) that none is
    /// outstanding. Returns the entry as it now is.
    pub async fn set_probe_sent(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
        at: Option<i64>,
    ) -> Result<Member, StoreError> {
        self.update_member(list, address, kind, "probe_sent_at = $4", at)
            .await
    }

    /// Forgets the entry's bounces and probe (mail got through again, or the admin says so).
    pub async fn clear_bounces(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
    ) -> Result<Member, StoreError> {
        self.update_member(
            list,
            address,
            kind,
            "bounce_count = 0, first_bounce_at = NULL, probe_sent_at = NULL",
            None,
        )
        .await
    }

    /// `UPDATE list_members SET <set>` for one entry; `$4` in `set` is `value`.
    async fn update_member(
        &self,
        list: &Address,
        address: &str,
        kind: MemberKind,
        set: &'static str,
        value: Option<i64>,
    ) -> Result<Member, StoreError> {
        let list = db::renormalize(list)?;
        let address = normalize_member(address)?;
        let mut tx = self.begin_write().await?;
        let id = require_list(&mut tx, &list).await?;
        // `set` is one of the constant strings above, never input.
        let sql = format!(
            "UPDATE list_members SET {set}
             WHERE list_id = $1 AND kind = $2 AND lower(address) = lower($3)"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(kind.as_str())
            .bind(&address);
        if set.contains("$4") {
            query = query.bind(value);
        }
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(entry(&list, &address, kind)));
        }
        let member = fetch_member(&mut tx, &list, id, &address, kind).await?;
        tx.commit().await?;
        member.ok_or_else(|| StoreError::Database("member vanished after update".into()))
    }
}

async fn fetch_member(
    conn: &mut AnyConnection,
    list: &Address,
    list_id: i64,
    address: &str,
    kind: MemberKind,
) -> Result<Option<Member>, StoreError> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM list_members
         WHERE list_id = $1 AND kind = $2 AND lower(address) = lower($3)"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(list_id)
        .bind(kind.as_str())
        .bind(address)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| member_from_row(list, &r)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses() {
        assert_eq!(
            normalize_member(" Bob.Smith@Bücher.Example ").expect("valid"),
            "Bob.Smith@xn--bcher-kva.example"
        );
        for bad in ["", "bob", "a/b@x.example", "a@b@c", "x@-bad.example"] {
            assert!(normalize_member(bad).is_err(), "{bad:?}");
        }
    }
}
