//! Landlock, checked from inside each running program (as root, as CI runs): with
//! `[security] self_test`, every child tries, once confined, to read and to write each listed
//! path and logs what happened. moat-smtpd must reach neither a Maildir, nor the store, nor the
//! queue; moat-remote not the queue; moat-imapd must not write the queue; moat-lists must not
//! read a Maildir; and no program may read `moat.toml` or touch a world-writable file and folder
//! that only Landlock keeps it from. The paths each one needs stay open (the allowed side).
//! Every child of the supervisor also runs as its own user with no capability, no_new_privs and
//! a seccomp filter (`Seccomp: 2` in /proc), and a system call outside its allow-list fails.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use moat_common::privilege;
use moat_tests::{Mode, Stack, USERS};

const PROGRAMS: [&str; 8] = [
    "moat-smtpd",
    "moat-queue",
    "moat-local",
    "moat-auth",
    "moat-remote",
    "moat-lists",
    "moat-pop3d",
    "moat-imapd",
];

/// The first regular file beneath `dir`.
fn first_file(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let path = e.path();
        if path.is_dir() {
            first_file(&path)
        } else {
            Some(path)
        }
    })
}

/// What `program` (its current pid) logged about `path`: "read …, write …".
fn outcome(s: &Stack, program: &str, path: &Path) -> String {
    let pid = s
        .pid_of(program)
        .unwrap_or_else(|| panic!("{program} is not running"));
    let prefix = format!(
        "{program}[{pid}]: confinement self-test {}: ",
        path.display()
    );
    s.logged(&prefix)
}

fn assert_denied(s: &Stack, program: &str, path: &Path, what: &str) {
    let got = outcome(s, program, path);
    let part = got
        .split(", ")
        .find(|p| p.starts_with(what))
        .unwrap_or_default()
        .to_string();
    assert!(
        part.starts_with(&format!("{what} denied")) && part.contains("os error 13"),
        "{program} must not {what} {}: {got}",
        path.display()
    );
}

fn assert_allowed(s: &Stack, program: &str, path: &Path, what: &str) {
    let got = outcome(s, program, path);
    assert!(
        got.split(", ").any(|p| p == format!("{what} allowed")),
        "{program} must {what} {}: {got}",
        path.display()
    );
}

#[test]
fn each_program_reaches_only_its_own_paths() {
    if !privilege::is_root() {
        println!("not root: the confinement checks need root (CI runs as root)");
        return;
    }
    let mut s = Stack::start_with(Mode::Serve);
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    // One message in alice's Maildir, one stuck in the queue (nothing answers DNS).
    s.python_ok(
        r#"
import os, smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30) as c:
    c.sendmail("bob@elsewhere.test", ["alice@example.test"], b"Subject: in\r\n\r\nhi\r\n")
with smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=30) as c:
    c.starttls(context=ctx)
    c.login("alice@example.test", "alice-secret")
    c.sendmail("alice@example.test", ["bob@elsewhere.test"], b"Subject: out\r\n\r\nhi\r\n")
print("sent")
"#,
    );
    s.wait_messages("alice@example.test", 1);
    let maildir = s.maildir("alice@example.test");
    let mail_file = first_file(&maildir).expect("a Maildir file");
    let queue = s.data.join("queue");
    let queue_file = first_file(&queue.join("env")).expect("a queued message");
    let store = s.data.join("db/users.db");
    let lists = s.data.join("lists");
    // Open to everyone by mode: only Landlock can refuse them.
    let config = s.config.clone();
    let probe_file = s.data.join("probe-file");
    std::fs::write(&probe_file, "probe\n").expect("probe");
    std::fs::set_permissions(&probe_file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let probe_dir = s.data.join("probe-dir");
    std::fs::create_dir(&probe_dir).expect("probe dir");
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let paths = [
        &maildir,
        &mail_file,
        &queue,
        &queue_file,
        &store,
        &lists,
        &config,
        &probe_file,
        &probe_dir,
    ];
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut toml = std::fs::read_to_string(&s.config).expect("config");
    toml.push_str(&format!("[security]\nself_test = [{list}]\n"));
    std::fs::write(&s.config, toml).expect("config");
    s.restart();

    for program in PROGRAMS {
        let pid = s.pid_of(program).expect("running");
        s.wait_log(&format!("{program}[{pid}]: landlock enforced"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        assert!(status.contains("NoNewPrivs:\t1"), "{program}: {status}");
        // No program may start another (Landlock's exec right is not granted anywhere).
        let exec = format!("{program}[{pid}]: confinement self-test exec /bin/true: ");
        let verdict = s.logged(&exec);
        assert!(
            verdict.starts_with("denied") && verdict.contains("os error 13"),
            "{program} could start /bin/true: {verdict}"
        );
        // Not dumpable: the kernel gives its /proc files to root, so a process of the same
        // user can neither read its memory nor ptrace it.
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(format!("/proc/{pid}/environ")).expect("environ"),
        );
        assert_eq!(owner, 0, "{program}: /proc/{pid}/environ is not root's");
        assert!(
            status.contains("CapEff:\t0000000000000000"),
            "{program}: {status}"
        );
        assert_denied(&s, program, &config, "read");
        assert_denied(&s, program, &probe_file, "read");
        assert_denied(&s, program, &probe_file, "write");
        assert_denied(&s, program, &probe_dir, "read");
        assert_denied(&s, program, &probe_dir, "write");
    }
    for path in [&mail_file, &store, &queue, &queue_file] {
        assert_denied(&s, "moat-smtpd", path, "read");
    }
    assert_denied(&s, "moat-remote", &queue, "read");
    assert_denied(&s, "moat-remote", &queue_file, "read");
    assert_denied(&s, "moat-imapd", &queue, "write");
    assert_denied(&s, "moat-imapd", &store, "read");
    assert_denied(&s, "moat-lists", &mail_file, "read");
    assert_denied(&s, "moat-auth", &mail_file, "read");
    // The login processes parse everything a client sends before its password is checked:
    // they reach no mail, no store and no queue.
    for program in ["moat-imap-login", "moat-pop3-login"] {
        for path in [&maildir, &mail_file, &store, &queue, &queue_file, &lists] {
            assert_denied(&s, program, path, "read");
        }
        assert_denied(&s, program, &maildir, "write");
    }

    // What each one needs is still there.
    assert_allowed(&s, "moat-local", &mail_file, "read");
    assert_allowed(&s, "moat-imapd", &mail_file, "read");
    assert_allowed(&s, "moat-pop3d", &maildir, "write");
    assert_allowed(&s, "moat-queue", &queue_file, "read");
    assert_allowed(&s, "moat-queue", &queue, "write");
    assert_allowed(&s, "moat-auth", &store, "write");
    assert_allowed(&s, "moat-lists", &lists, "write");
    // And mail still flows after the restart, through every confined program.
    s.python_ok(
        r#"
import os, smtplib
with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30) as c:
    c.sendmail("bob@elsewhere.test", ["alice@example.test"], b"Subject: again\r\n\r\nhi\r\n")
print("sent")
"#,
    );
    s.wait_messages("alice@example.test", 2);
}

/// The live children of `parent`: pid and program name.
fn children(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let ppid = field(&status, "PPid")?.parse::<u32>().ok()?;
            let zombie = field(&status, "State")?.starts_with('Z');
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let name = exe.file_name()?.to_str()?.to_string();
            (ppid == parent && !zombie).then_some((pid, name))
        })
        .collect()
}

/// One `Name:\tvalue` line of /proc/PID/status.
fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

#[test]
fn every_child_runs_as_its_user_without_capabilities_under_seccomp() {
    if !privilege::is_root() {
        println!("not root: the per-program users need root (CI runs as root)");
        return;
    }
    // A self-test path makes every child also try a system call no allow-list has.
    let s = Stack::start_configured(Mode::Serve, "[security]\nself_test = [\"/etc/passwd\"]\n");
    let wanted: Vec<&str> = USERS.iter().map(|(program, _)| *program).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let running = loop {
        let running = children(s.moat_pid());
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|p| !running.iter().any(|(_, name)| name == **p))
            .collect();
        if missing.is_empty() {
            break running;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not running: {missing:?}\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    for (pid, program) in &running {
        let user = USERS
            .iter()
            .find(|(p, _)| p == program)
            .map(|(_, user)| *user)
            .unwrap_or_else(|| panic!("the supervisor runs an unknown program {program}"));
        let uid = privilege::lookup(user).expect("the program's user").uid;
        assert_ne!(uid, 0, "{program} runs as root");
        s.wait_log(&format!(
            "{program}[{pid}]: seccomp: allow-list {program} ("
        ));
        // Every thread, not only the first: the filter is inherited by the runtime's workers
        // (started just after the log line above).
        let task_dir = format!("/proc/{pid}/task");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_dir(&task_dir).map_or(0, |d| d.count()) < 2
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let tasks = std::fs::read_dir(&task_dir).expect("tasks");
        let mut threads = 0;
        for task in tasks.flatten() {
            let path = task.path().join("status");
            let Ok(status) = std::fs::read_to_string(&path) else {
                continue;
            };
            threads += 1;
            let uids = field(&status, "Uid").unwrap_or_default();
            assert!(
                uids.split_whitespace().all(|u| u == uid.to_string()),
                "{program} ({}): Uid {uids}, expected {uid} ({user})",
                path.display()
            );
            for (name, value) in [
                ("CapEff", "0000000000000000"),
                ("CapPrm", "0000000000000000"),
                ("NoNewPrivs", "1"),
                ("Seccomp", "2"),
            ] {
                assert_eq!(
                    field(&status, name),
                    Some(value),
                    "{program} ({}): {name}",
                    path.display()
                );
            }
        }
        assert!(threads > 1, "{program}: {threads} thread(s)");
        let probe = format!("{program}[{pid}]: confinement self-test syscall socket(AF_NETLINK): ");
        let verdict = s.logged(&probe);
        assert_eq!(verdict, "denied (EPERM)", "{program}");
    }
}
