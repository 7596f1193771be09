//! Small SQL helpers shared by the operation modules: the clock, and the lookups that
//! turn names into row ids inside a transaction.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::address::Address;
use crate::error::StoreError;
use crate::model::User;

/// Unix seconds now. Computed here rather than in SQL so both dialects store the same thing.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// 0/1 as stored in the `enabled` column.
pub(crate) fn flag(b: bool) -> i16 {
    i16::from(b)
}

/// The id of the real domain `name`, or `None`.
pub(crate) async fn domain_id(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT id FROM domains WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

/// The real domain a domain alias points at, or `None` if `name` is not a domain alias.
pub(crate) async fn domain_alias_target(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT d.name FROM domain_aliases a JOIN domains d ON d.id = a.domain_id WHERE a.name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
}

/// The id of the real domain `name`. A missing domain is [`StoreError::DomainNotFound`]; a
/// domain alias is a [`StoreError::Conflict`] naming the real domain, because users and
/// aliases are managed in the real domain only.
pub(crate) async fn require_domain(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<i64, StoreError> {
    if let Some(id) = domain_id(conn, name).await? {
        return Ok(id);
    }
    match domain_alias_target(conn, name).await? {
        Some(real) => Err(StoreError::Conflict(format!(
            "domain {name:?} is an alias of {real:?}; manage its addresses in {real:?}"
        ))),
        None => Err(StoreError::DomainNotFound(name.to_owned())),
    }
}

/// True when `local` is a mailbox user in domain `domain_id`.
pub(crate) async fn user_exists(
    conn: &mut AnyConnection,
    domain_id: i64,
    local: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM users WHERE domain_id = $1 AND local_part = $2")
        .bind(domain_id)
        .bind(local)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// True when `local` is an alias source in domain `domain_id`.
pub(crate) async fn alias_exists(
    conn: &mut AnyConnection,
    domain_id: i64,
    local: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM aliases WHERE domain_id = $1 AND local_part = $2 LIMIT 1")
        .bind(domain_id)
        .bind(local)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// The column list [`user_from_row`] expects, for `users u JOIN domains d`. A macro so it
/// can be spliced into `concat!` and the SQL stays a `&'static str`.
macro_rules! user_columns {
    () => {
        "u.local_part, d.name, u.quota_bytes, u.enabled, u.created"
    };
}
pub(crate) use user_columns;

/// Builds a [`User`] from a row selected with [`user_columns!`].
pub(crate) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let local: String = row.try_get(0)?;
    let domain: String = row.try_get(1)?;
    let enabled: i64 = row.try_get(3)?;
    Ok(User {
        address: format!("{local}@{domain}"),
        local,
        domain,
        quota_bytes: row.try_get(2)?,
        enabled: enabled != 0,
        created: row.try_get(4)?,
    })
}

/// Re-validates an [`Address`] that crossed the API boundary: its fields are public, so a
/// caller could have built one without [`Address::parse`].
pub(crate) fn renormalize(addr: &Address) -> Result<Address, StoreError> {
    Ok(Address::new(&addr.local, &addr.domain)?)
}

/// A user-facing quoted address for messages.
pub(crate) fn quoted(kind: &str, addr: &impl std::fmt::Display) -> String {
    format!("{kind} \"{addr}\"")
}
