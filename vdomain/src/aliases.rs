//! Address aliases: one source address forwarding to one or more targets, local or remote.

use sqlx::Row;

use crate::address::{Address, normalize_domain};
use crate::connect::Store;
use crate::db;
use crate::error::{StoreError, is_unique_violation};
use crate::model::Alias;

impl Store {
    /// Adds `targets` to alias `source` (creating it if new). Every target is parsed and
    /// normalised as an address; local targets need not exist yet. The source's domain must
    /// exist and the source must not be a mailbox user. Adding a target the alias already
    /// has is [`StoreError::AlreadyExists`], and then none of the targets are added.
    pub async fn add_alias(&self, source: &Address, targets: &[String]) -> Result<(), StoreError> {
        let source = db::renormalize(source)?;
        if targets.is_empty() {
            return Err(StoreError::Conflict(format!(
                "alias \"{source}\" needs at least one target address"
            )));
        }
        let mut normalized: Vec<String> = Vec::with_capacity(targets.len());
        for t in targets {
            let t = Address::parse(t)?;
            if t == source {
                return Err(StoreError::Conflict(format!(
                    "alias \"{source}\" cannot point at itself"
                )));
            }
            let t = t.to_string();
            // Repeats in one call are harmless; keep the first.
            if !normalized.contains(&t) {
                normalized.push(t);
            }
        }

        let mut tx = self.begin_write().await?;
        let domain_id = db::require_domain(&mut tx, &source.domain).await?;
        if db::user_exists(&mut tx, domain_id, &source.local).await? {
            return Err(StoreError::Conflict(format!(
                "\"{source}\" is a mailbox user; an address cannot be both a user and an alias"
            )));
        }
        crate::lists::claims::refuse_list_address(&mut tx, domain_id, &source, "an alias").await?;
        let created = db::now();
        for target in &normalized {
            let inserted = sqlx::query(
                "INSERT INTO aliases (domain_id, local_part, target, created) VALUES ($1, $2, $3, $4)",
            )
            .bind(domain_id)
            .bind(&source.local)
            .bind(target)
            .bind(created)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // Dropping `tx` rolls back the targets inserted before this one.
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists(format!(
                        "alias \"{source}\" -> \"{target}\""
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// All aliases (of one domain, or of every domain), sorted by source address, each with
    /// its targets in the order they were added.
    pub async fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let only = match domain {
            Some(d) => {
                let d = normalize_domain(d)?;
                Some(db::require_domain(&mut conn, &d).await?)
            }
            None => None,
        };
        let rows = sqlx::query(
            "SELECT a.local_part, d.name, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id
             WHERE a.domain_id = $1 OR $2 = 1
             ORDER BY d.name, a.local_part, a.id",
        )
        .bind(only.unwrap_or(0))
        .bind(i64::from(only.is_none()))
        .fetch_all(&mut *conn)
        .await?;
        let mut out: Vec<Alias> = Vec::new();
        for row in &rows {
            let local: String = row.try_get(0)?;
            let domain: String = row.try_get(1)?;
            let target: String = row.try_get(2)?;
            let source = format!("{local}@{domain}");
            match out.last_mut() {
                Some(last) if last.source == source => last.targets.push(target),
                _ => out.push(Alias {
                    source,
                    targets: vec![target],
                }),
            }
        }
        Ok(out)
    }

    /// Removes one target of alias `source`, or (with `None`) the whole alias.
    /// [`StoreError::NotFound`] if there was nothing to remove.
    pub async fn remove_alias(
        &self,
        source: &Address,
        target: Option<&str>,
    ) -> Result<(), StoreError> {
        let source = db::renormalize(source)?;
        let target = target
            .map(Address::parse)
            .transpose()?
            .map(|t| t.to_string());
        let mut tx = self.begin_write().await?;
        let domain_id = db::require_domain(&mut tx, &source.domain).await?;
        let done =
            match &target {
                Some(t) => sqlx::query(
                    "DELETE FROM aliases WHERE domain_id = $1 AND local_part = $2 AND target = $3",
                )
                .bind(domain_id)
                .bind(&source.local)
                .bind(t)
                .execute(&mut *tx)
                .await?,
                None => {
                    sqlx::query("DELETE FROM aliases WHERE domain_id = $1 AND local_part = $2")
                        .bind(domain_id)
                        .bind(&source.local)
                        .execute(&mut *tx)
                        .await?
                }
            };
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(match target {
                Some(t) => format!("alias \"{source}\" -> \"{t}\""),
                None => format!("alias \"{source}\""),
            }));
        }
        tx.commit().await?;
        Ok(())
    }
}
