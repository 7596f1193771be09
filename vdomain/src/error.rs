//! The store's error type. Display strings are shown to admins as-is by the `moat` CLI and
//! logged by moat-auth, so each is one line that says what was wrong and, where there is an
//! obvious next step, what to do.

use crate::address::AddressError;

/// Everything a store operation can fail with.
///
/// Callers that must choose between a temporary and a permanent failure (SMTP 4xx vs 5xx)
/// should treat [`StoreError::Unavailable`] and [`StoreError::Database`] as temporary and
/// [`StoreError::AliasLoop`] as a configuration error (temporary too, so mail waits for the
/// admin instead of bouncing); see [`StoreError::is_temporary`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or opened (network down, wrong path, database
    /// locked for longer than the busy timeout, server shutting down).
    #[error("user store unavailable: {0}")]
    Unavailable(String),
    /// The connection URL is not one the store understands.
    #[error("{0}")]
    InvalidUrl(String),
    /// The named thing (already formatted, e.g. `user "a@b.test"`) does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The named thing (already formatted) already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("domain {0:?} does not exist (add it with: moat domain add {0})")]
    DomainNotFound(String),
    #[error(
        "domain {domain:?} still has {users} user(s); remove them first, or use --force to delete the domain with its users"
    )]
    HasUsers { domain: String, users: i64 },
    #[error(
        "mailing list {list:?} still has {members} address(es) on its rosters; remove them first, or use --force to delete the list with them"
    )]
    HasMembers { list: String, members: i64 },
    #[error("{0}")]
    InvalidAddress(#[from] AddressError),
    /// A setting's value is refused (full sentence in the payload: what and why).
    #[error("{0}")]
    InvalidValue(String),
    #[error("password must not be empty")]
    EmptyPassword,
    #[error("quota must be a positive number of bytes (got {0}); leave it unset for unlimited")]
    InvalidQuota(i64),
    /// A change would break an invariant (full sentence in the payload).
    #[error("{0}")]
    Conflict(String),
    /// Alias expansion revisited an address or went deeper than the configured limit.
    #[error("alias loop: {0}")]
    AliasLoop(String),
    /// Anything else the database reported.
    #[error("user store error: {0}")]
    Database(String),
    /// Password hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl StoreError {
    /// True when retrying later may succeed without anyone changing the data.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Database(_) | StoreError::AliasLoop(_)
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match e {
            E::Io(io) => StoreError::Unavailable(io.to_string()),
            E::Tls(t) => StoreError::Unavailable(format!("TLS: {t}")),
            E::PoolTimedOut => {
                StoreError::Unavailable("timed out waiting for a database connection".into())
            }
            E::PoolClosed => StoreError::Unavailable("the store has been closed".into()),
            E::WorkerCrashed => StoreError::Unavailable("the SQLite worker thread died".into()),
            E::Configuration(c) => StoreError::InvalidUrl(format!("bad database URL: {c}")),
            E::Database(db) => {
                if is_unavailable_code(db.code().as_deref()) {
                    StoreError::Unavailable(db.message().to_owned())
                } else {
                    StoreError::Database(db.message().to_owned())
                }
            }
            E::Migrate(m) => StoreError::Database(format!("schema migration failed: {m}")),
            other => StoreError::Database(other.to_string()),
        }
    }
}

/// Database error codes that mean "cannot reach/use the database right now" rather than
/// "this statement was wrong". SQLite reports its primary result code as a number, PostgreSQL
/// a SQLSTATE.
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    // SQLite: 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN, 8 READONLY, 26 NOTADB
    // (extended codes carry the primary one in the low byte).
    if let Ok(n) = code.parse::<i64>() {
        return matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14 | 26);
    }
    // PostgreSQL classes: 08 connection exception, 28 invalid authorization, 3D invalid
    // catalog (database missing), 53 insufficient resources, 57 operator intervention.
    ["08", "28", "3D", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
}

/// True when `e` is a unique-constraint violation: a concurrent writer (or a check we could
/// not make race-free) got there first.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}
