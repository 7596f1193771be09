//! Opening the store: URL parsing, the connection pool, SQLite pragmas, schema migrations,
//! and the write-transaction helper every mutating operation uses.
//!
//! We use sqlx's `Any` driver so each query is written once with `$1` placeholders (SQLite
//! accepts `$NNN` as numbered parameters). The few places where the dialects differ (how a
//! write transaction takes its lock) switch on [`Backend`].

use std::path::Path;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Transaction};

use crate::error::StoreError;
use crate::password;

/// How long `connect` (and any later wait for a pooled connection) may take before the store
/// is reported unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises writers
/// ("moatvdom" in ASCII); see [`Store::begin_write`].
const PG_WRITE_LOCK: i64 = 0x6d6f_6174_7664_6f6d;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which SQL server is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The user store: a cheap-to-clone handle on a connection pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

/// Hand-written so a debug print can never include connection details (URL, password).
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("closed", &self.pool.is_closed())
            .finish()
    }
}

/// A parsed connection URL: what to hand to sqlx, and what to show humans (no password).
struct Target {
    backend: Backend,
    url: String,
    shown: String,
    in_memory: bool,
    /// The SQLite file, for the migration lock.
    file: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    ///
    /// Accepted URLs: `sqlite:PATH`, `sqlite://PATH` (the file is created if missing; its
    /// directory must exist), `sqlite::memory:` (tests), and `postgres://` /
    /// `postgresql://` URLs as libpq understands them. Anything unreachable within
    /// [`CONNECT_TIMEOUT`] is [`StoreError::Unavailable`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let target = parse_url(url)?;

        let mut options = AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT);
        options = match target.backend {
            Backend::Sqlite if target.in_memory => {
                // Each in-memory connection would be a separate database: keep exactly one,
                // forever.
                options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            }
            Backend::Sqlite => options.max_connections(8).after_connect(|conn, _meta| {
                // sqlx already sets foreign_keys=ON and a 5 s busy timeout on every SQLite
                // connection; WAL lets moat-auth read while the CLI writes. The mode is
                // persistent in the file, so this is a no-op after the first time.
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(10),
        };

        let pool = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect(&target.url)).await {
            Ok(Ok(pool)) => pool,
            Ok(Err(sqlx::Error::Configuration(e))) => {
                return Err(StoreError::InvalidUrl(format!(
                    "bad database URL {}: {e}",
                    target.shown
                )));
            }
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to {}: {}",
                    target.shown,
                    describe(&e)
                )));
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to {}: no answer within {} s",
                    target.shown,
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };

        let migrator = match target.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // sqlx locks PostgreSQL during migrations but not SQLite: two processes opening a new
        // store at once (moat-auth starting while an admin runs `moat`) would both create the
        // tables. Serialise them with flock on the database file itself (SQLite's own locks
        // are fcntl locks, which Linux keeps apart from flock).
        let migration_lock = match &target.file {
            Some(file) => match lock_file(file.clone()).await {
                Ok(lock) => Some(lock),
                Err(e) => {
                    pool.close().await;
                    return Err(StoreError::Unavailable(format!(
                        "cannot lock {} to update its schema: {e}",
                        target.shown
                    )));
                }
            },
            None => None,
        };
        let migrated = migrator.run(&pool).await;
        drop(migration_lock);
        if let Err(e) = migrated {
            pool.close().await;
            return Err(StoreError::Database(format!(
                "cannot bring the schema of {} up to date: {e}",
                target.shown
            )));
        }

        // Make the dummy hash for unknown-user logins now, not on the first such login
        // (which would then be measurably slower than a wrong password).
        let _ = tokio::task::spawn_blocking(password::warm_up).await;

        Ok(Store {
            pool,
            backend: target.backend,
        })
    }

    /// Closes every pooled connection; later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Which SQL server this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that holds the store's single writer lock until commit/rollback.
    ///
    /// Serialising all writers makes every check-then-write sequence in this crate race-free
    /// (e.g. "this address is not an alias" then "insert the user"), which unique constraints
    /// alone cannot express across tables. Admin writes are rare; readers never take it.
    /// SQLite: `BEGIN IMMEDIATE` takes the database write lock up front (so we never fail
    /// upgrading a read lock) and waits up to the busy timeout. PostgreSQL: a
    /// transaction-scoped advisory lock, released at commit or rollback.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                // Wrapped in a FROM so the row has a plain integer column; `Any` cannot
                // carry PostgreSQL's `void`.
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(PG_WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return parse_sqlite(rest.strip_prefix("//").unwrap_or(rest), url);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target {
            backend: Backend::Postgres,
            url: url.to_owned(),
            shown: redact(url),
            in_memory: false,
            file: None,
        });
    }
    Err(StoreError::InvalidUrl(format!(
        "unsupported database URL {:?}: use sqlite:/path/to/users.db or postgres://user@host/dbname",
        redact(url)
    )))
}

fn parse_sqlite(rest: &str, original: &str) -> Result<Target, StoreError> {
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::InvalidUrl(format!(
            "database URL {original:?} names no file: use sqlite:/path/to/users.db"
        )));
    }
    if path == ":memory:" {
        return Ok(Target {
            backend: Backend::Sqlite,
            url: "sqlite::memory:".to_owned(),
            shown: "SQLite in-memory database".to_owned(),
            in_memory: true,
            file: None,
        });
    }
    // SQLite would only say "unable to open database file"; say which directory is missing.
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(StoreError::Unavailable(format!(
            "cannot open SQLite database {path}: directory {} does not exist (create it first)",
            parent.display()
        )));
    }
    // Collapse a leading "//" so the path is not read as a URL authority.
    let mut clean = path;
    while clean.starts_with("//") {
        clean = &clean[1..];
    }
    // sqlx percent-decodes the path; escape what would otherwise be read as URL syntax.
    let mut encoded = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            ' ' => encoded.push_str("%20"),
            c => encoded.push(c),
        }
    }
    // Create the file if missing unless the admin chose a mode.
    let query = match params {
        Some(q) if q.split('&').any(|kv| kv.starts_with("mode=")) => q.to_owned(),
        Some(q) if !q.is_empty() => format!("{q}&mode=rwc"),
        _ => "mode=rwc".to_owned(),
    };
    Ok(Target {
        backend: Backend::Sqlite,
        url: format!("sqlite:{encoded}?{query}"),
        shown: format!("SQLite database {path}"),
        in_memory: false,
        file: Some(Path::new(clean).to_path_buf()),
    })
}

/// Takes an exclusive flock on `file` (released when the returned handle is dropped).
async fn lock_file(file: std::path::PathBuf) -> std::io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&file)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(f)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The URL with any password replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A one-line reason for a connection failure, without sqlx's variant names.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("sqlite:users.db").expect("ok");
        assert_eq!(t.url, "sqlite:users.db?mode=rwc");
        let t = parse_url("sqlite:///tmp/a b#%.db").expect("ok");
        assert_eq!(t.url, "sqlite:/tmp/a%20b%23%25.db?mode=rwc");
        let t = parse_url("sqlite:///tmp/x.db?mode=ro").expect("ok");
        assert_eq!(t.url, "sqlite:/tmp/x.db?mode=ro");
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("sqlite:").is_err());
        assert!(matches!(
            parse_url("sqlite:/nonexistent-dir-moat/x.db"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(
            redact("postgres://u:secret@h:5/db?x=1"),
            "postgres://u:***@h:5/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
