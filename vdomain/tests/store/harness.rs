//! Per-test databases. SQLite: a file in a fresh temp directory. PostgreSQL: a fresh
//! database `moat_test_<random>` on the server named by `MOAT_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards even if the case panics.
//! An unreachable server fails the test; only `MOAT_TEST_PG=skip` skips it.

use std::future::Future;
use std::time::Duration;

use moat_vdomain::Store;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Connection, PgConnection};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What a case gets: the store, and its URL for opening raw connections or reconnecting.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub url: String,
}

impl Ctx {
    /// A raw pool on the same database, for checking rows behind the API's back.
    pub async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("raw connection to the test database")
    }

    /// `SELECT COUNT(*) FROM <table>`.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.raw().await;
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    }
}

pub async fn with_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("users.db").display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    case(Ctx {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

pub async fn with_postgres<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = std::env::var("MOAT_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.to_owned());
    if base == "skip" {
        eprintln!("MOAT_TEST_PG=skip: PostgreSQL variant skipped on request");
        return;
    }
    let mut admin = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&base))
        .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "PostgreSQL test server at {base} is unreachable: {e}. Start it, point MOAT_TEST_PG \
             at another server, or set MOAT_TEST_PG=skip to skip the PostgreSQL variants."
        ),
        Err(_) => panic!(
            "PostgreSQL test server at {base} did not answer within 5 s. Start it, point \
             MOAT_TEST_PG at another server, or set MOAT_TEST_PG=skip."
        ),
    };
    let name = format!("moat_test_{:016x}", rand::random::<u64>());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&base, &name);

    // Run the case as its own task so a panic is caught here and the database still dropped.
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&url).await.expect("open PostgreSQL store");
        case(Ctx {
            store: store.clone(),
            url,
        })
        .await;
        store.close().await;
    })
    .await;

    // FORCE (PostgreSQL 13+) ends connections a panicked case left open.
    let dropped = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
    dropped.expect("drop test database");
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (scheme, rest) = base.split_once("://").expect("MOAT_TEST_PG must be a URL");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}
