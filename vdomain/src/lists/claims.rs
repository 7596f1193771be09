//! Which local parts a list owns: its own (posts) and `list-<command>` for every command
//! [`ListCommand::parse`] knows. Resolution and the collision checks of users, aliases and
//! lists all ask here, so "is this address a list's?" has one answer.

use std::collections::HashSet;

use sqlx::{AnyConnection, Row};

use super::command::{ListCommand, splits};
use crate::address::Address;
use crate::error::StoreError;

/// The list of domain `domain_id` that owns `local`: `(list local part, command)`, with
/// [`ListCommand::Post`] for the list's own address. When two lists could own it (`a` and
/// `a-b` for `a-b-help`) the longer list name wins.
pub(crate) async fn list_claiming(
    conn: &mut AnyConnection,
    domain_id: i64,
    local: &str,
) -> Result<Option<(String, ListCommand)>, StoreError> {
    // One query for every candidate base: the list named `local`, or any list whose name
    // plus '-' starts `local`.
    let rows = sqlx::query(
        "SELECT local_part FROM lists WHERE domain_id = $1
         AND (local_part = $2 OR local_part || '-' = substr($2, 1, length(local_part) + 1))",
    )
    .bind(domain_id)
    .bind(local)
    .fetch_all(&mut *conn)
    .await?;
    let names: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    if names.contains(local) {
        return Ok(Some((local.to_owned(), ListCommand::Post)));
    }
    for (base, ext) in splits(local) {
        if names.contains(base)
            && let Some(cmd) = ListCommand::parse(ext)
        {
            return Ok(Some((base.to_owned(), cmd)));
        }
    }
    Ok(None)
}

/// Refuses to make `addr` a user or alias when a list of its domain owns it; `what` names
/// the refused thing with its article ("a mailbox user").
pub(crate) async fn refuse_list_address(
    conn: &mut AnyConnection,
    domain_id: i64,
    addr: &Address,
    what: &str,
) -> Result<(), StoreError> {
    let Some((list, cmd)) = list_claiming(conn, domain_id, &addr.local).await? else {
        return Ok(());
    };
    let list = format!("{list}@{}", addr.domain);
    Err(StoreError::Conflict(match cmd {
        ListCommand::Post => format!(
            "\"{addr}\" is the mailing list {list}; {what} cannot have its address \
             (pick another name, or delete the list first: moat list delete {list})"
        ),
        cmd => format!(
            "\"{addr}\" is a command address ({cmd}) of mailing list {list}; {what} \
             cannot have it (pick another name)"
        ),
    }))
}

/// The users, aliases and lists of the domain that a new list `local` would take over:
/// local parts `local-<command>`. Sorted, for a stable message.
pub(crate) async fn taken_by_new_list(
    conn: &mut AnyConnection,
    domain_id: i64,
    local: &str,
) -> Result<Vec<(String, &'static str)>, StoreError> {
    let prefix = format!("{local}-");
    let rows = sqlx::query(
        "SELECT local_part, 'user' FROM users WHERE domain_id = $1 AND substr(local_part, 1, length($2)) = $2
         UNION
         SELECT local_part, 'alias' FROM aliases WHERE domain_id = $1 AND substr(local_part, 1, length($2)) = $2
         UNION
         SELECT local_part, 'list' FROM lists WHERE domain_id = $1 AND substr(local_part, 1, length($2)) = $2
         ORDER BY 1",
    )
    .bind(domain_id)
    .bind(&prefix)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let kind = match kind.as_str() {
            "user" => "user",
            "alias" => "alias",
            _ => "list",
        };
        let ext = name.get(prefix.len()..).unwrap_or("");
        if ListCommand::parse(ext).is_some_and(|c| c != ListCommand::Post) {
            out.push((name, kind));
        }
    }
    Ok(out)
}
