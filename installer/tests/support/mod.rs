//! Helpers for the CLI tests: a throw-away store (SQLite file or PostgreSQL database) and a
//! runner for the real `moat` binary that checks the shape of its answers.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sqlx::Connection;

/// A store that disappears with the test: a temp SQLite file or a fresh PostgreSQL database.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin url, database name) to drop at the end
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        TestDb {
            url: format!("sqlite:{}", dir.path().join("users.db").display()),
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new database on the PostgreSQL server named by MOAT_TEST_PG. Never skips silently:
    /// an unreachable server fails the test unless MOAT_TEST_PG=skip was set on purpose.
    pub fn postgres() -> TestDb {
        let admin = std::env::var("MOAT_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        if admin == "skip" {
            eprintln!("MOAT_TEST_PG=skip: using SQLite instead of PostgreSQL");
            return TestDb::sqlite();
        }
        let name = format!("moat_test_{:016x}", rand::random::<u64>());
        runtime().block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is needed (set MOAT_TEST_PG): {e}")
                });
            // The name is our own hex: nothing to inject.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
        });
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            pg: Some((admin, name)),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            runtime().block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the real `moat` binary with a fixed store selection.
pub struct Moat {
    store_args: Vec<String>,
}

impl Moat {
    pub fn new(db: &TestDb) -> Moat {
        Moat::with_url(&db.url)
    }

    pub fn with_url(url: &str) -> Moat {
        Moat {
            store_args: vec!["--db".into(), url.into()],
        }
    }

    pub fn with_config(path: &Path) -> Moat {
        Moat {
            store_args: vec!["--config".into(), path.display().to_string()],
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
        cmd.args(&self.store_args)
            .args(args)
            .env_remove("MOAT_CONFIG");
        cmd
    }

    /// Exit code and stderr.
    pub fn status(&self, args: &[&str], stdin: &str) -> (Option<i32>, String) {
        let (code, _, err) = self.run(args, stdin);
        (code, err)
    }

    fn run(&self, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moat");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("wait moat");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, "")
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let (code, out, err) = self.run(args, stdin);
        assert_eq!(code, Some(0), "moat {args:?} failed: {err}");
        out
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("moat {args:?}: bad JSON {e}: {out}"))
    }

    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_stdin(args, "")
    }

    /// Asserts a refusal: exit 1, one `moat: ...` line on stderr; returns that line.
    pub fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let (code, _, err) = self.run(args, stdin);
        assert_eq!(code, Some(1), "moat {args:?} should be refused: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "moat {args:?}: one line expected: {err}"
        );
        assert!(err.starts_with("moat: "), "{err}");
        err
    }

    /// Runs moat with a pseudo-terminal (util-linux `script`) that types `typed`.
    pub fn on_terminal(&self, args: &[&str], typed: &str) -> (bool, String) {
        let mut line = vec![env!("CARGO_BIN_EXE_moat").to_string()];
        line.extend(self.store_args.iter().cloned());
        line.extend(args.iter().map(|a| a.to_string()));
        let quoted: Vec<String> = line.iter().map(|a| format!("'{a}'")).collect();
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn script");
        if let Some(mut input) = child.stdin.take() {
            // Type each line after a pause, as a person would, so the prompt is there first.
            for l in typed.split_inclusive('\n') {
                std::thread::sleep(std::time::Duration::from_millis(300));
                let _ = input.write_all(l.as_bytes());
                let _ = input.flush();
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let out = child.wait_with_output().expect("wait script");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

pub fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
