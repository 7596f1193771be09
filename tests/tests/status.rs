//! `moat status` against a real supervisor (`moat serve`): every program it runs is listed with
//! its pid, NoNewPrivs 1, CapEff 0 and the Landlock summary the program reported once confined;
//! as root, each runs as its own user. With the supervisor stopped, `moat status` says so and
//! fails.

use std::time::{Duration, Instant};

use moat_common::privilege;
use moat_tests::{Mode, PROGRAMS, Stack};
use serde_json::Value;

/// `moat status --json`, once every program has reported (30 s at most).
fn reported(s: &Stack) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = s.moat(&["status", "--json"], "");
        assert!(
            out.status.success(),
            "moat status --json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let processes = status["processes"].as_array().cloned().unwrap_or_default();
        let all_reported = PROGRAMS.iter().all(|program| {
            processes
                .iter()
                .any(|p| p["program"] == *program && p["landlock"].is_string())
        });
        if all_reported {
            return processes;
        }
        assert!(
            Instant::now() < deadline,
            "not every program reported its confinement after 30 s: {status:#}\nlog:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_shows_every_program_confined() {
    let mut s = Stack::start_with(Mode::Serve);
    let processes = reported(&s);
    assert_eq!(
        processes.len(),
        PROGRAMS.len(),
        "one entry per program: {processes:#?}"
    );
    for program in PROGRAMS {
        let p = processes
            .iter()
            .find(|p| p["program"] == program)
            .unwrap_or_else(|| panic!("{program} is missing: {processes:#?}"));
        let pid = s.pid_of(program).expect("running");
        assert_eq!(p["pid"], pid, "{program}: {p}");
        assert_eq!(p["running"], true, "{program}: {p}");
        assert_eq!(p["no_new_privs"], "1", "{program}: {p}");
        let cap_eff = p["cap_eff"].as_str().unwrap_or_default();
        assert!(
            !cap_eff.is_empty() && cap_eff.chars().all(|c| c == '0'),
            "{program}: CapEff must be 0: {p}"
        );
        let landlock = p["landlock"].as_str().unwrap_or_default();
        assert!(!landlock.is_empty(), "{program}: no Landlock summary: {p}");
        if privilege::is_root() {
            // Its own system user: the configured name, and the kernel agrees on the uid.
            let user = p["user"].as_str().unwrap_or_default();
            let account = privilege::lookup(user).expect("system user");
            assert_ne!(account.uid, 0, "{program} runs as root");
            assert_eq!(p["proc_uid"], account.uid.to_string(), "{program}: {p}");
            assert_eq!(p["uid"], account.uid, "{program}: {p}");
        }
    }
    if privilege::is_root() {
        let user = |program: &str| {
            processes
                .iter()
                .find(|p| p["program"] == program)
                .map(|p| p["user"].clone())
        };
        // The login processes are nobody else: not the mail user, not each other.
        for login in ["moat-imap-login", "moat-pop3-login"] {
            assert_eq!(user(login), Some(Value::from(login)));
        }
    }

    // The table people read: a header and one row per program with its pid.
    let out = s.moat(&["status"], "");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("PROGRAM") && table.contains("NONEWPRIVS") && table.contains("LANDLOCK"),
        "{table}"
    );
    for program in PROGRAMS {
        let pid = s.pid_of(program).expect("running").to_string();
        assert!(
            table.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.first() == Some(&program) && cells.get(1) == Some(&pid.as_str())
            }),
            "no row for {program} (pid {pid}):\n{table}"
        );
    }

    // Stopped: no supervisor, a non-zero exit and a hint.
    s.stop();
    let out = s.moat(&["status"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "moat status succeeded without a supervisor"
    );
    assert!(
        err.contains("no supervisor is running") && err.contains("moat serve"),
        "{err}"
    );
}
