//! `moat list ...` run as the real binary against SQLite and the real PostgreSQL server:
//! the admin's view of mailing lists, their rosters, and the address collisions with users
//! and aliases.

// Each test binary uses only part of the shared helpers.
#[allow(dead_code)]
mod support;

use support::{Moat, TestDb};

fn lists(db: &TestDb) {
    let m = Moat::new(db);
    m.ok(&["domain", "add", "example.test"]);
    let out = m.ok(&[
        "list",
        "create",
        "Dev@Example.TEST",
        "--archive",
        "--moderated",
    ]);
    assert!(out.contains("dev@example.test"), "{out}");
    m.ok(&["list", "create", "announce@example.test", "--digest"]);

    let all = m.json(&["list", "--json"]);
    let names: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|l| l["address"].as_str())
        .collect();
    assert_eq!(names, ["announce@example.test", "dev@example.test"]);
    assert!(
        !all.to_string().contains("secret"),
        "the cookie secret is never printed"
    );
    let table = m.ok(&["list"]);
    assert!(table.starts_with("LIST"), "{table}");
    assert!(
        table.contains("archive,") || table.contains("moderated,archive"),
        "{table}"
    );
    assert_eq!(
        m.json(&["list", "--domain", "example.test", "--json"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let dev = m.json(&["list", "show", "dev@example.test", "--json"]);
    assert_eq!(dev["moderated"], true);
    assert_eq!(dev["archive"], true);
    assert_eq!(dev["reply_to"], "none");

    // Settings.
    let dir = tempfile::tempdir().expect("tempdir");
    let footer = dir.path().join("footer.txt");
    std::fs::write(&footer, "-- \nunsubscribe: dev-unsubscribe@example.test\n").expect("footer");
    m.ok(&[
        "list",
        "set",
        "dev@example.test",
        "--subject-prefix",
        "[dev]",
        "--max-size",
        "1M",
        "--reply-to",
        "poster",
        "--footer-file",
        &footer.display().to_string(),
        "--moderated",
        "false",
        "--owner",
        "Boss@Other.EXAMPLE",
    ]);
    let dev = m.json(&["list", "show", "dev@example.test", "--json"]);
    assert_eq!(dev["subject_prefix"], "[dev]");
    assert_eq!(dev["max_message_bytes"], 1i64 << 20);
    assert_eq!(dev["reply_to"], "poster");
    assert_eq!(dev["moderated"], false);
    assert_eq!(dev["archive"], true, "untouched");
    assert_eq!(dev["owner"], "Boss@other.example");
    assert!(
        dev["footer"]
            .as_str()
            .is_some_and(|f| f.contains("unsubscribe")),
        "{dev}"
    );
    let shown = m.ok(&["list", "show", "dev@example.test"]);
    assert!(shown.contains("[dev]") && shown.contains("1M"), "{shown}");
    m.ok(&[
        "list",
        "set",
        "dev@example.test",
        "--max-size",
        "none",
        "--no-footer",
        "--owner",
        "none",
    ]);
    let dev = m.json(&["list", "show", "dev@example.test", "--json"]);
    assert!(dev["max_message_bytes"].is_null() && dev["owner"].is_null());
    assert_eq!(dev["footer"], "");

    // Rosters.
    m.ok(&["list", "add", "dev@example.test", "Bob@Other.EXAMPLE"]);
    m.ok(&[
        "list",
        "add",
        "dev@example.test",
        "carol@other.example",
        "--digest",
    ]);
    m.ok(&[
        "list",
        "add",
        "dev@example.test",
        "ann@example.test",
        "--moderator",
    ]);
    let err = m.fails(&["list", "add", "dev@example.test", "bob@other.example"]);
    assert!(err.contains("already exists"), "{err}");
    let members = m.json(&["list", "members", "dev@example.test", "--json"]);
    let rows: Vec<(String, String)> = members
        .as_array()
        .expect("array")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or("").to_owned(),
                m["address"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("member".to_owned(), "Bob@other.example".to_owned()),
            ("digest".to_owned(), "carol@other.example".to_owned()),
            ("moderator".to_owned(), "ann@example.test".to_owned()),
        ]
    );
    let mods = m.json(&[
        "list",
        "members",
        "dev@example.test",
        "--kind",
        "moderator",
        "--json",
    ]);
    assert_eq!(mods.as_array().map(Vec::len), Some(1));
    let table = m.ok(&["list", "members", "dev@example.test"]);
    assert!(table.starts_with("ADDRESS"), "{table}");
    m.ok(&[
        "list",
        "remove",
        "dev@example.test",
        "carol@other.example",
        "--digest",
    ]);
    let err = m.fails(&["list", "remove", "dev@example.test", "carol@other.example"]);
    assert!(err.contains("does not exist"), "{err}");

    // Deleting a list with addresses on it needs --force.
    let err = m.fails(&["list", "delete", "dev@example.test"]);
    assert!(err.contains("--force"), "{err}");
    m.ok(&["list", "delete", "dev@example.test", "--force"]);
    m.ok(&["list", "delete", "announce@example.test"]);
    assert_eq!(
        m.json(&["list", "--json"]).as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn lists_sqlite() {
    lists(&TestDb::sqlite());
}

#[test]
fn lists_postgres() {
    lists(&TestDb::postgres());
}

fn refusals(db: &TestDb) {
    let m = Moat::new(db);
    m.ok(&["domain", "add", "example.test"]);
    m.ok(&["list", "create", "dev@example.test"]);

    // A user or alias cannot take the list's address or one of its command addresses.
    let err = m.fails_stdin(
        &["user", "add", "dev@example.test", "--password-stdin"],
        "pw\n",
    );
    assert!(err.contains("mailing list dev@example.test"), "{err}");
    let err = m.fails_stdin(
        &[
            "user",
            "add",
            "dev-subscribe@example.test",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert!(err.contains("command address"), "{err}");
    let err = m.fails(&["alias", "add", "dev-owner@example.test", "x@remote.example"]);
    assert!(err.contains("command address"), "{err}");
    // And the other way round.
    m.ok_stdin(
        &["user", "add", "ops-help@example.test", "--password-stdin"],
        "pw\n",
    );
    let err = m.fails(&["list", "create", "ops@example.test"]);
    assert!(err.contains("ops-help@example.test"), "{err}");
    let err = m.fails(&["list", "create", "ops-help@example.test"]);
    assert!(err.contains("mailbox user"), "{err}");

    // Bad input: one line, non-zero exit, nothing written.
    let err = m.fails(&["list", "create", "x@missing.test"]);
    assert!(err.contains("moat domain add"), "{err}");
    m.fails(&["list", "create", "a/b@example.test"]);
    let err = m.fails(&["list", "create", "dev@example.test"]);
    assert!(err.contains("already exists"), "{err}");
    let err = m.fails(&["list", "show", "nope@example.test"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = m.fails(&["list", "set", "dev@example.test"]);
    assert!(err.contains("nothing to change"), "{err}");
    let err = m.fails(&["list", "set", "dev@example.test", "--reply-to", "all"]);
    assert!(err.contains("list, poster, none"), "{err}");
    let err = m.fails(&["list", "set", "dev@example.test", "--max-size", "lots"]);
    assert!(err.contains("lots"), "{err}");
    let err = m.fails(&[
        "list",
        "set",
        "dev@example.test",
        "--footer-file",
        "/nonexistent/footer",
    ]);
    assert!(err.contains("/nonexistent/footer"), "{err}");
    let err = m.fails(&["list", "members", "dev@example.test", "--kind", "owner"]);
    assert!(err.contains("member, digest, moderator"), "{err}");
    m.fails(&["list", "add", "dev@example.test", "not an address"]);
    m.fails(&["list", "add", "nope@example.test", "a@b.example"]);
    assert_eq!(
        m.json(&["list", "members", "dev@example.test", "--json"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        m.json(&["list", "--json"]).as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn refusals_sqlite() {
    refusals(&TestDb::sqlite());
}

#[test]
fn refusals_postgres() {
    refusals(&TestDb::postgres());
}
