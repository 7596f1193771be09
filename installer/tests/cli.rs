//! The `moat` admin CLI, run as a real binary against a real SQLite file and the real
//! PostgreSQL server: what an admin types, what they see, and what is (not) left in the store.

mod support;

use support::{Moat, TestDb};

fn flow(db: &TestDb) {
    let m = Moat::new(db);
    m.ok(&["domain", "add", "Example.TEST"]);
    m.ok(&["domain", "add", "bücher.example"]);
    let domains = m.json(&["domain", "list", "--json"]);
    let names: Vec<&str> = domains
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(names.contains(&"example.test"), "{names:?}");
    assert!(names.contains(&"xn--bcher-kva.example"), "{names:?}");

    m.ok_stdin(
        &[
            "user",
            "add",
            "alice@example.test",
            "--password-stdin",
            "--quota",
            "2G",
        ],
        "s3cret pw\n",
    );
    m.ok_stdin(
        &["user", "add", "Bob@EXAMPLE.test", "--password-stdin"],
        "hunter2\n",
    );
    let alice = m.json(&["user", "show", "alice@example.test", "--json"]);
    assert_eq!(alice["quota_bytes"], 2i64 << 30);
    assert_eq!(alice["enabled"], true);
    let users = m.json(&["user", "list", "example.test", "--json"]);
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");
    assert!(
        users.to_string().contains("bob@example.test"),
        "addresses are lower-cased"
    );
    assert!(
        !users.to_string().contains("argon2"),
        "hashes never printed"
    );
    let table = m.ok(&["user", "list", "example.test"]);
    assert!(table.starts_with("USER"), "{table}");
    assert!(table.contains("2G"), "{table}");

    m.ok(&["user", "quota", "alice@example.test", "500M"]);
    assert_eq!(
        m.json(&["user", "show", "alice@example.test", "--json"])["quota_bytes"],
        500i64 << 20
    );
    m.ok(&["user", "quota", "alice@example.test", "none"]);
    assert!(m.json(&["user", "show", "alice@example.test", "--json"])["quota_bytes"].is_null());
    m.ok(&["user", "disable", "alice@example.test"]);
    assert_eq!(
        m.json(&["user", "show", "alice@example.test", "--json"])["enabled"],
        false
    );
    m.ok(&["user", "enable", "alice@example.test"]);
    m.ok_stdin(
        &["user", "passwd", "alice@example.test", "--password-stdin"],
        "new one\r\n",
    );

    m.ok(&[
        "alias",
        "add",
        "team@example.test",
        "alice@example.test",
        "bob@example.test",
        "carol@remote.example",
    ]);
    let aliases = m.json(&["alias", "list", "example.test", "--json"]);
    let team = &aliases[0];
    assert_eq!(team["source"], "team@example.test");
    assert_eq!(
        team["targets"].as_array().map(Vec::len),
        Some(3),
        "{aliases}"
    );
    m.ok(&[
        "alias",
        "remove",
        "team@example.test",
        "carol@remote.example",
    ]);
    assert_eq!(
        m.json(&["alias", "list", "--json"])[0]["targets"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    m.ok(&["catchall", "set", "example.test", "alice@example.test"]);
    assert_eq!(
        m.json(&["domain", "show", "example.test", "--json"])["catchall"],
        "alice@example.test"
    );
    m.ok(&["catchall", "clear", "example.test"]);
    m.ok(&["domain", "alias", "example.net", "example.test"]);
    assert!(
        m.ok(&["domain", "show", "example.test"])
            .contains("example.net")
    );

    // A domain with users is only removed with --force.
    let err = m.fails(&["domain", "remove", "example.test"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        m.json(&["user", "list", "example.test", "--json"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    m.ok(&["user", "remove", "bob@example.test"]);
    m.ok(&["domain", "remove", "example.test", "--force"]);
    let err = m.fails(&["user", "show", "alice@example.test"]);
    assert!(err.contains("example.test"), "{err}");
}

#[test]
fn admin_flow_sqlite() {
    flow(&TestDb::sqlite());
}

#[test]
fn admin_flow_postgres() {
    flow(&TestDb::postgres());
}

fn bad_input(db: &TestDb) {
    let m = Moat::new(db);
    m.ok(&["domain", "add", "example.test"]);
    m.ok_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "pw\n",
    );

    // Each refusal is one line on stderr, a non-zero exit, and nothing left behind.
    let err = m.fails_stdin(
        &["user", "add", "x@missing.test", "--password-stdin"],
        "pw\n",
    );
    assert!(err.contains("missing.test"), "{err}");
    let err = m.fails(&["user", "list", "missing.test"]);
    assert!(err.contains("missing.test"), "{err}");

    let err = m.fails_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "pw\n",
    );
    assert!(err.contains("alice@example.test"), "{err}");
    let err = m.fails(&["domain", "add", "example.test"]);
    assert!(err.contains("example.test"), "{err}");

    for bad in [
        "../x@example.test",
        "a/b@example.test",
        ".a@example.test",
        "a..b@example.test",
        "noat",
        "a@b@example.test",
        "x@exa mple.test",
        "x@-bad-.test",
    ] {
        m.fails_stdin(&["user", "add", bad, "--password-stdin"], "pw\n");
    }
    let long = format!("{}@example.test", "a".repeat(65));
    m.fails_stdin(&["user", "add", &long, "--password-stdin"], "pw\n");
    m.fails(&["domain", "add", "bad_domain!.test"]);

    let err = m.fails_stdin(
        &["user", "add", "bob@example.test", "--password-stdin"],
        "\n",
    );
    assert!(err.contains("empty"), "{err}");
    let err = m.fails_stdin(&["user", "add", "bob@example.test", "--password-stdin"], "");
    assert!(err.contains("empty"), "{err}");
    let err = m.fails(&["user", "quota", "alice@example.test", "lots"]);
    assert!(err.contains("lots"), "{err}");
    m.fails(&["alias", "add", "team@example.test", "not an address"]);
    m.fails(&["alias", "add", "alice@example.test", "bob@example.test"]);
    m.fails(&["catchall", "set", "missing.test", "alice@example.test"]);

    let users = m.json(&["user", "list", "example.test", "--json"]);
    assert_eq!(
        users.as_array().map(Vec::len),
        Some(1),
        "no partial rows: {users}"
    );
    assert_eq!(
        m.json(&["alias", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        m.json(&["domain", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn bad_input_sqlite() {
    bad_input(&TestDb::sqlite());
}

#[test]
fn bad_input_postgres() {
    bad_input(&TestDb::postgres());
}

#[test]
fn passwords_are_asked_twice_on_a_terminal() {
    if !support::have_script() {
        panic!("util-linux `script` is needed to give the CLI a terminal");
    }
    let db = TestDb::sqlite();
    let m = Moat::new(&db);
    m.ok(&["domain", "add", "example.test"]);
    let (ok, out) = m.on_terminal(
        &["user", "add", "carol@example.test"],
        "Alpha-9137\nBravo-2264\n",
    );
    assert!(!ok, "mismatched passwords must fail: {out}");
    assert!(out.contains("differ"), "{out}");
    assert!(
        !out.contains("Alpha-9137") && !out.contains("Bravo-2264"),
        "no echo: {out}"
    );
    let (ok, out) = m.on_terminal(&["user", "add", "carol@example.test"], "same pw\nsame pw\n");
    assert!(ok, "{out}");
    assert_eq!(
        m.json(&["user", "list", "example.test", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn unreachable_store_is_a_temporary_error() {
    let m = Moat::with_url("postgres://postgres@127.0.0.1:1/nothing");
    let (code, err) = m.status(&["domain", "list"], "");
    assert_eq!(code, Some(75), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");

    let m = Moat::with_url("sqlite:/nonexistent-moat-dir/users.db");
    let (code, err) = m.status(&["domain", "list"], "");
    assert_ne!(code, Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nonexistent-moat-dir"), "{err}");
}

#[test]
fn no_configuration_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["domain", "list"])
        .current_dir(dir.path())
        .env_remove("MOAT_CONFIG")
        .output()
        .expect("run moat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    if std::path::Path::new("/etc/moat/moat.toml").exists() {
        return; // an installed system answers from its own configuration
    }
    assert!(err.contains("--db"), "{err}");
}

#[test]
fn purge_mail_deletes_only_with_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("moat.toml");
    std::fs::write(
        &config,
        "[store]\nurl = \"sqlite:users.db\"\n[paths]\nmail = \"mail\"\n",
    )
    .expect("write config");
    let m = Moat::with_config(&config);
    m.ok(&["domain", "add", "example.test"]);
    for u in ["a", "b"] {
        m.ok_stdin(
            &[
                "user",
                "add",
                &format!("{u}@example.test"),
                "--password-stdin",
            ],
            "pw\n",
        );
        let md = dir
            .path()
            .join("mail/example.test")
            .join(u)
            .join("Maildir/new");
        std::fs::create_dir_all(&md).expect("mkdir");
        std::fs::write(md.join("1.msg"), "Subject: hi\r\n\r\nhello\r\n").expect("write");
    }
    m.ok(&["user", "remove", "a@example.test"]);
    assert!(
        dir.path()
            .join("mail/example.test/a/Maildir/new/1.msg")
            .exists(),
        "kept without --purge-mail"
    );
    m.ok(&[
        "domain",
        "remove",
        "example.test",
        "--force",
        "--purge-mail",
    ]);
    assert!(
        !dir.path().join("mail/example.test").exists(),
        "purged with --purge-mail"
    );
    assert!(
        dir.path().join("mail").exists(),
        "the mail root itself stays"
    );

    // --db alone does not know where mail lives: refused before anything is removed.
    let m2 = Moat::with_url(&format!("sqlite:{}", dir.path().join("users.db").display()));
    m2.ok(&["domain", "add", "other.test"]);
    m2.ok_stdin(&["user", "add", "c@other.test", "--password-stdin"], "pw\n");
    let err = m2.fails(&["user", "remove", "c@other.test", "--purge-mail"]);
    assert!(err.contains("--config"), "{err}");
    m2.ok(&["user", "show", "c@other.test"]);
}
