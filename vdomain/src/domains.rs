//! Domains, domain aliases and catch-alls: the per-domain part of the store.

use sqlx::Row;

use crate::address::{Address, normalize_domain};
use crate::connect::Store;
use crate::db::{self, user_columns};
use crate::error::{StoreError, is_unique_violation};
use crate::model::{Domain, User};

impl Store {
    /// Adds a hosted domain. The name is normalised (IDNA, lower case).
    pub async fn add_domain(&self, name: &str) -> Result<Domain, StoreError> {
        let name = normalize_domain(name)?;
        let mut tx = self.begin_write().await?;
        if let Some(real) = db::domain_alias_target(&mut tx, &name).await? {
            return Err(StoreError::Conflict(format!(
                "{name:?} is already an alias of domain {real:?}; remove the domain alias first"
            )));
        }
        let created = db::now();
        let inserted = sqlx::query("INSERT INTO domains (name, created) VALUES ($1, $2)")
            .bind(&name)
            .bind(created)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("domain {name:?}")));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Domain {
            name,
            created,
            users: 0,
            aliases: 0,
            catchall: None,
            alias_domains: Vec::new(),
        })
    }

    /// All hosted domains, sorted by name, with their counts, catch-all and alias domains.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        self.domains_where(None).await
    }

    /// One hosted domain. A domain alias is not a domain: asking for one is a
    /// [`StoreError::Conflict`] that names the real domain.
    pub async fn get_domain(&self, name: &str) -> Result<Domain, StoreError> {
        let name = normalize_domain(name)?;
        let mut found = self.domains_where(Some(&name)).await?;
        if let Some(d) = found.pop() {
            return Ok(d);
        }
        let mut conn = self.pool.acquire().await?;
        db::require_domain(&mut conn, &name).await?;
        // require_domain only returns Ok for an existing domain, which we did not find.
        Err(StoreError::DomainNotFound(name))
    }

    async fn domains_where(&self, only: Option<&str>) -> Result<Vec<Domain>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // `$1 IS NULL` selects all domains; the bound value is a typed NULL either way.
        let rows = sqlx::query(
            "SELECT d.id, d.name, d.created,
                (SELECT COUNT(*) FROM users u WHERE u.domain_id = d.id),
                (SELECT COUNT(DISTINCT a.local_part) FROM aliases a WHERE a.domain_id = d.id),
                (SELECT c.target FROM catchalls c WHERE c.domain_id = d.id)
             FROM domains d WHERE d.name = $1 OR $2 = 1 ORDER BY d.name",
        )
        .bind(only.unwrap_or(""))
        .bind(i64::from(only.is_none()))
        .fetch_all(&mut *conn)
        .await?;
        let aliases = sqlx::query("SELECT domain_id, name FROM domain_aliases ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let mut alias_domains = Vec::new();
            for a in &aliases {
                if a.try_get::<i64, _>(0)? == id {
                    alias_domains.push(a.try_get::<String, _>(1)?);
                }
            }
            out.push(Domain {
                name: row.try_get(1)?,
                created: row.try_get(2)?,
                users: row.try_get(3)?,
                aliases: row.try_get(4)?,
                catchall: row.try_get(5)?,
                alias_domains,
            });
        }
        Ok(out)
    }

    /// Removes a domain with its aliases, catch-all and domain aliases. If it still has users
    /// this is [`StoreError::HasUsers`] unless `force`, in which case they are removed too.
    /// Returns the removed users so the caller can purge their Maildirs if asked.
    pub async fn remove_domain(&self, name: &str, force: bool) -> Result<Vec<User>, StoreError> {
        let name = normalize_domain(name)?;
        let mut tx = self.begin_write().await?;
        let id = db::require_domain(&mut tx, &name).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u JOIN domains d ON d.id = u.domain_id
              WHERE u.domain_id = $1 ORDER BY u.local_part"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let users = rows
            .iter()
            .map(db::user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if !users.is_empty() && !force {
            return Err(StoreError::HasUsers {
                domain: name,
                users: i64::try_from(users.len()).unwrap_or(i64::MAX),
            });
        }
        // ON DELETE CASCADE removes users, aliases, the catch-all and domain aliases in this
        // same statement.
        sqlx::query("DELETE FROM domains WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Makes `alias` deliver like `target` (`x@alias` is resolved as `x@target`).
    /// `target` must be a real domain, and `alias` must not be one.
    pub async fn add_domain_alias(&self, alias: &str, target: &str) -> Result<(), StoreError> {
        let alias = normalize_domain(alias)?;
        let target = normalize_domain(target)?;
        if alias == target {
            return Err(StoreError::Conflict(format!(
                "domain {alias:?} cannot be an alias of itself"
            )));
        }
        let mut tx = self.begin_write().await?;
        let target_id = match db::domain_id(&mut tx, &target).await? {
            Some(id) => id,
            None => {
                return Err(match db::domain_alias_target(&mut tx, &target).await? {
                    Some(real) => StoreError::Conflict(format!(
                        "{target:?} is itself an alias of {real:?}; point the alias at {real:?}"
                    )),
                    None => StoreError::DomainNotFound(target),
                });
            }
        };
        if db::domain_id(&mut tx, &alias).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{alias:?} is a hosted domain; remove it before making it an alias"
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO domain_aliases (name, domain_id, created) VALUES ($1, $2, $3)",
        )
        .bind(&alias)
        .bind(target_id)
        .bind(db::now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("domain alias {alias:?}")));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a domain alias; [`StoreError::NotFound`] if there is none by that name.
    pub async fn remove_domain_alias(&self, alias: &str) -> Result<(), StoreError> {
        let alias = normalize_domain(alias)?;
        let done = sqlx::query("DELETE FROM domain_aliases WHERE name = $1")
            .bind(&alias)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain alias {alias:?}")));
        }
        Ok(())
    }

    /// Sets (or replaces) the catch-all of `domain`: mail for addresses in the domain that
    /// match nothing else goes to `target`, which may be local or remote.
    ///
    /// A target in the same domain must already be a user or alias: otherwise it would itself
    /// fall through to the catch-all, a loop.
    pub async fn set_catchall(&self, domain: &str, target: &str) -> Result<(), StoreError> {
        let domain = normalize_domain(domain)?;
        let target = Address::parse(target)?;
        let mut tx = self.begin_write().await?;
        let id = db::require_domain(&mut tx, &domain).await?;
        let target_domain = match db::domain_alias_target(&mut tx, &target.domain).await? {
            Some(real) => real,
            None => target.domain.clone(),
        };
        if target_domain == domain
            && !db::user_exists(&mut tx, id, &target.local).await?
            && !db::alias_exists(&mut tx, id, &target.local).await?
        {
            return Err(StoreError::Conflict(format!(
                "catch-all target \"{target}\" is not a user or alias of {domain:?}, so it would \
                 loop back to the catch-all; add it first"
            )));
        }
        sqlx::query(
            "INSERT INTO catchalls (domain_id, target) VALUES ($1, $2)
             ON CONFLICT (domain_id) DO UPDATE SET target = excluded.target",
        )
        .bind(id)
        .bind(target.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the catch-all of `domain`; [`StoreError::NotFound`] if it has none.
    pub async fn clear_catchall(&self, domain: &str) -> Result<(), StoreError> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.begin_write().await?;
        let id = db::require_domain(&mut tx, &domain).await?;
        let done = sqlx::query("DELETE FROM catchalls WHERE domain_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "a catch-all for domain {domain:?}"
            )));
        }
        tx.commit().await?;
        Ok(())
    }
}
