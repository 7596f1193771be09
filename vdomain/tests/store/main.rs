//! The store test suite. Every case in `cases/` runs twice: against a fresh SQLite file and
//! against a fresh database on the real PostgreSQL test server (see `harness.rs`).

mod cases;
mod harness;

/// Declares one `sqlite::<case>` and one `postgres::<case>` test per case function.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::harness::with_sqlite(crate::cases::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::harness::with_postgres(crate::cases::$case).await;
                }
            )*
        }
    };
}

both_backends!(
    domains_crud,
    domain_idna,
    domain_aliases,
    catchall_admin,
    remove_domain_with_users,
    users_crud,
    invalid_addresses,
    passwords,
    quota,
    aliases_one_to_many,
    alias_user_conflicts,
    no_partial_rows,
    resolve_order,
    resolve_subaddress,
    resolve_dangling_targets,
    alias_loops,
    alias_depth,
    catchall_loop,
    concurrent_writers,
    reconnect_keeps_data,
    lists_crud,
    list_members,
    list_address_conflicts,
    resolve_lists,
    resolve_long_list_commands,
);

mod sqlite_only {
    use moat_vdomain::Store;
    use sqlx::Row;

    /// The file is created (with its schema) on first connect, in WAL mode, through either
    /// URL spelling.
    #[tokio::test]
    async fn creates_file_in_wal_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("create");
        store.add_domain("wal.test").await.expect("write");
        assert!(path.is_file());
        store.close().await;

        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("raw");
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&raw)
            .await
            .expect("pragma")
            .try_get(0)
            .expect("text");
        assert_eq!(mode, "wal");
        raw.close().await;

        let again = Store::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("reopen");
        assert_eq!(again.list_domains().await.expect("list").len(), 1);
        again.close().await;
    }
}

mod unavailable {
    use moat_vdomain::{Store, StoreError};

    #[tokio::test]
    async fn postgres_unreachable_port() {
        let started = std::time::Instant::now();
        let err = Store::connect("postgres://postgres@127.0.0.1:1/test")
            .await
            .expect_err("port 1 has no server");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("127.0.0.1:1"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(started.elapsed() < std::time::Duration::from_secs(8));
    }

    #[tokio::test]
    async fn sqlite_missing_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("users.db");
        let err = Store::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect_err("directory is missing");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(
            !path.parent().expect("parent").exists(),
            "must not create it"
        );
    }

    #[tokio::test]
    async fn unsupported_url() {
        let err = Store::connect("mysql://root@localhost/x")
            .await
            .expect_err("mysql is not supported");
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
    }

    #[tokio::test]
    async fn postgres_password_is_redacted() {
        let err = Store::connect("postgres://u:hunter2@127.0.0.1:1/x")
            .await
            .expect_err("nothing there");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
