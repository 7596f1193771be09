//! Mailbox users: create, list, change, remove, and password authentication.

use sqlx::Row;

use crate::address::{Address, normalize_domain};
use crate::connect::Store;
use crate::db::{self, user_columns};
use crate::error::{StoreError, is_unique_violation};
use crate::model::User;
use crate::password;

/// Refuses quotas that would mean something surprising: `Some(0)` is "unlimited" in some
/// tools and "nothing fits" in others, so only positive sizes are stored and `None` is
/// unlimited.
fn check_quota(quota_bytes: Option<i64>) -> Result<(), StoreError> {
    match quota_bytes {
        Some(q) if q <= 0 => Err(StoreError::InvalidQuota(q)),
        _ => Ok(()),
    }
}

/// Runs the (CPU-heavy) argon2 hash off the async threads.
async fn hash_blocking(password: &str) -> Result<String, StoreError> {
    if password.is_empty() {
        return Err(StoreError::EmptyPassword);
    }
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || password::hash_password(&pw))
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?
}

impl Store {
    /// Creates a mailbox user. Fails with [`StoreError::DomainNotFound`],
    /// [`StoreError::AlreadyExists`], [`StoreError::EmptyPassword`], or
    /// [`StoreError::Conflict`] if the address is already an alias source.
    pub async fn add_user(
        &self,
        addr: &Address,
        password: &str,
        quota_bytes: Option<i64>,
    ) -> Result<User, StoreError> {
        let addr = db::renormalize(addr)?;
        check_quota(quota_bytes)?;
        // Hash before taking the write lock so other writers don't wait on argon2.
        let hash = hash_blocking(password).await?;
        let mut tx = self.begin_write().await?;
        let domain_id = db::require_domain(&mut tx, &addr.domain).await?;
        if db::alias_exists(&mut tx, domain_id, &addr.local).await? {
            return Err(StoreError::Conflict(format!(
                "\"{addr}\" is an alias; an address cannot be both a user and an alias \
                 (remove the alias first)"
            )));
        }
        crate::lists::claims::refuse_list_address(&mut tx, domain_id, &addr, "a mailbox user")
            .await?;
        let created = db::now();
        let inserted = sqlx::query(
            "INSERT INTO users (domain_id, local_part, password_hash, quota_bytes, enabled, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(domain_id)
        .bind(&addr.local)
        .bind(&hash)
        .bind(quota_bytes)
        .bind(db::flag(true))
        .bind(created)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(db::quoted("user", &addr)));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(User {
            address: addr.to_string(),
            local: addr.local,
            domain: addr.domain,
            quota_bytes,
            enabled: true,
            created,
        })
    }

    /// The users of `domain`, sorted by local part.
    pub async fn list_users(&self, domain: &str) -> Result<Vec<User>, StoreError> {
        let domain = normalize_domain(domain)?;
        let mut conn = self.pool.acquire().await?;
        let id = db::require_domain(&mut conn, &domain).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u JOIN domains d ON d.id = u.domain_id
              WHERE u.domain_id = $1 ORDER BY u.local_part"
        ))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(db::user_from_row).collect()
    }

    /// One user; [`StoreError::NotFound`] or [`StoreError::DomainNotFound`].
    pub async fn get_user(&self, addr: &Address) -> Result<User, StoreError> {
        let addr = db::renormalize(addr)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u JOIN domains d ON d.id = u.domain_id
              WHERE d.name = $1 AND u.local_part = $2"
        ))
        .bind(&addr.domain)
        .bind(&addr.local)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => db::user_from_row(&row),
            None => Err(self.user_missing(&addr).await),
        }
    }

    /// Replaces a user's password (hashed with the current argon2id parameters).
    pub async fn set_password(&self, addr: &Address, password: &str) -> Result<(), StoreError> {
        let addr = db::renormalize(addr)?;
        let hash = hash_blocking(password).await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1
             WHERE domain_id = (SELECT id FROM domains WHERE name = $2) AND local_part = $3",
        )
        .bind(&hash)
        .bind(&addr.domain)
        .bind(&addr.local)
        .execute(&self.pool)
        .await?;
        self.expect_one_user(done.rows_affected(), &addr).await
    }

    /// Sets (`Some(bytes)`, positive) or clears (`None` = unlimited) a user's quota.
    pub async fn set_quota(
        &self,
        addr: &Address,
        quota_bytes: Option<i64>,
    ) -> Result<(), StoreError> {
        let addr = db::renormalize(addr)?;
        check_quota(quota_bytes)?;
        let done = sqlx::query(
            "UPDATE users SET quota_bytes = $1
             WHERE domain_id = (SELECT id FROM domains WHERE name = $2) AND local_part = $3",
        )
        .bind(quota_bytes)
        .bind(&addr.domain)
        .bind(&addr.local)
        .execute(&self.pool)
        .await?;
        self.expect_one_user(done.rows_affected(), &addr).await
    }

    /// Enables or disables a user. Disabled users cannot log in but still receive mail.
    pub async fn set_enabled(&self, addr: &Address, enabled: bool) -> Result<(), StoreError> {
        let addr = db::renormalize(addr)?;
        let done = sqlx::query(
            "UPDATE users SET enabled = $1
             WHERE domain_id = (SELECT id FROM domains WHERE name = $2) AND local_part = $3",
        )
        .bind(db::flag(enabled))
        .bind(&addr.domain)
        .bind(&addr.local)
        .execute(&self.pool)
        .await?;
        self.expect_one_user(done.rows_affected(), &addr).await
    }

    /// Removes a user and returns what it was (the caller may purge the Maildir). Aliases
    /// that pointed at it are left alone: see the resolution rules for dangling targets.
    pub async fn remove_user(&self, addr: &Address) -> Result<User, StoreError> {
        let addr = db::renormalize(addr)?;
        let mut tx = self.begin_write().await?;
        let domain_id = db::require_domain(&mut tx, &addr.domain).await?;
        let row = sqlx::query(
            "DELETE FROM users WHERE domain_id = $1 AND local_part = $2
             RETURNING quota_bytes, enabled, created",
        )
        .bind(domain_id)
        .bind(&addr.local)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(db::quoted("user", &addr)));
        };
        let enabled: i64 = row.try_get(1)?;
        let user = User {
            address: addr.to_string(),
            quota_bytes: row.try_get(0)?,
            enabled: enabled != 0,
            created: row.try_get(2)?,
            local: addr.local,
            domain: addr.domain,
        };
        tx.commit().await?;
        Ok(user)
    }

    /// Checks a login (`local@domain`; a domain alias works too) and password.
    ///
    /// `Ok(None)` for a malformed login, an unknown user, a disabled user or a wrong
    /// password, indistinguishably: each of them costs one argon2 verification (against a
    /// dummy hash when there is no real one), so response time does not reveal which.
    /// `Err` only when the store itself fails.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let addr = Address::parse(login).ok();
        let found = match &addr {
            Some(addr) => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", u.password_hash FROM users u JOIN domains d ON d.id = u.domain_id
                     WHERE u.local_part = $2 AND u.domain_id = COALESCE(
                        (SELECT id FROM domains WHERE name = $1),
                        (SELECT domain_id FROM domain_aliases WHERE name = $1))"
                ))
                .bind(&addr.domain)
                .bind(&addr.local)
                .fetch_optional(&self.pool)
                .await?
            }
            None => None,
        };
        let candidate = match found {
            Some(row) => {
                let user = db::user_from_row(&row)?;
                let hash: String = row.try_get(5)?;
                Some((user, hash))
            }
            None => None,
        };
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || match candidate {
            Some((user, hash)) => {
                // Verify even for disabled users so "disabled" is not faster than "wrong".
                let ok = password::verify_password(&hash, &pw);
                (ok && user.enabled).then_some(user)
            }
            None => {
                password::verify_dummy(&pw);
                None
            }
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))
    }

    /// The right error for "no such user": the domain's absence if that is the cause.
    async fn user_missing(&self, addr: &Address) -> StoreError {
        let mut conn = match self.pool.acquire().await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        match db::require_domain(&mut conn, &addr.domain).await {
            Ok(_) => StoreError::NotFound(db::quoted("user", addr)),
            Err(e) => e,
        }
    }

    async fn expect_one_user(&self, rows: u64, addr: &Address) -> Result<(), StoreError> {
        if rows == 0 {
            return Err(self.user_missing(addr).await);
        }
        Ok(())
    }
}
