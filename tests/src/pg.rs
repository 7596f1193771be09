//! A PostgreSQL database of its own for a test (`moat_test_<random>` on the server the store
//! tests use), created and dropped with `psql`, and made unreachable and reachable again for
//! the store-down fault test.

use std::process::Command;

/// The PostgreSQL server the store tests use (MOAT_TEST_PG, as `scripts/test` sets it).
pub fn admin_url() -> String {
    std::env::var("MOAT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A database that disappears with the test, even one still refusing connections after a
/// failed assertion (DROP needs no connection to it; FORCE ends moat-auth's).
pub struct Database {
    admin: String,
    pub name: String,
}

impl Database {
    pub fn create(admin: &str) -> Database {
        let name = format!("moat_test_{:016x}", rand::random::<u64>());
        psql(admin, &format!("CREATE DATABASE {name}"));
        Database {
            admin: admin.to_string(),
            name,
        }
    }

    /// Refuses new connections and ends the open ones: to moat-auth, the store is down.
    pub fn take_down(&self) {
        psql(
            &self.admin,
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", self.name),
        );
        psql(
            &self.admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ),
        );
    }

    pub fn bring_back(&self) {
        psql(
            &self.admin,
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name),
        );
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // The name is our own hex: nothing to inject.
        let _ = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("run psql (PostgreSQL's client)");
    assert!(
        out.status.success(),
        "psql {sql:?} on {url} failed (PostgreSQL is needed, see MOAT_TEST_PG): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
