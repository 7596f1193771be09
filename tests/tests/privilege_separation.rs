//! Least privilege, checked on the running processes (as root, as CI runs): `moat serve` runs
//! every program under its own uid and gid with no supplementary groups, and moat-smtpd — the
//! process that parses network input — can open neither the queue, nor the Maildirs, nor the
//! SQL store, and holds no descriptor to any of them; moat-remote — the process that talks to
//! other servers — can open neither the DKIM keys nor a route's password file (the supervisor
//! hands it both as descriptors) and keeps no descriptor to the password file once read.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use moat_common::privilege;
use moat_tests::{Mode, Stack, USERS};

fn ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_program_runs_as_its_own_user_and_smtpd_reaches_nothing() {
    if !privilege::is_root() {
        println!("not root: the privilege checks need root (CI runs as root)");
        return;
    }
    // A route with credentials, its password file root's and 0600 in a folder anyone may enter,
    // so the file's own mode is what keeps moat-remote out.
    let secrets = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(secrets.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let secret = secrets.path().join("relay.secret");
    std::fs::write(&secret, "relay-password\n").expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let stack = Stack::start_configured(
        Mode::Serve,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\n[remote.routes]\n\"*\" = {{ host = \
             \"127.0.0.1\", port = 9, tls = \"encrypt\", auth = {{ user = \"relay\", \
             password_file = \"{}\" }} }}\n",
            secret.display()
        ),
    );
    let mut uids = Vec::new();
    for (program, user) in USERS {
        let pid = stack
            .pid_of(program)
            .unwrap_or_else(|| panic!("{program} is not running"));
        let account = privilege::lookup(user).expect("system user");
        assert_eq!(
            ids(pid, "Uid"),
            vec![account.uid; 4],
            "{program} real/effective/saved/fs uid"
        );
        assert_eq!(ids(pid, "Gid"), vec![account.gid; 4], "{program} gids");
        let groups = ids(pid, "Groups");
        assert!(
            groups.iter().all(|g| *g == account.gid),
            "{program} has extra groups {groups:?}"
        );
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        assert!(
            status.contains("NoNewPrivs:\t1"),
            "{program} must set no_new_privs"
        );
        assert!(
            status.contains("CapEff:\t0000000000000000"),
            "{program} keeps capabilities"
        );
        uids.push(account.uid);
    }
    uids.sort();
    uids.dedup();
    let mut users: Vec<&str> = USERS.iter().map(|(_, user)| *user).collect();
    users.sort();
    users.dedup();
    assert_eq!(uids.len(), users.len(), "one uid per user: {users:?}");

    // moat-lists holds no store credentials: it can open neither the store nor the queue nor
    // the Maildirs (list data comes through moat-auth, mail goes through the queue's socket).
    let lists = privilege::lookup("moat-lists").expect("moat-lists");
    for target in ["queue", "mail", "db/users.db", "tls/key.pem"] {
        let path = stack.data.join(target);
        let out = Command::new("cat")
            .arg(&path)
            .uid(lists.uid)
            .gid(lists.gid)
            .output()
            .expect("run cat as moat-lists");
        assert!(
            !out.status.success(),
            "moat-lists can read {}",
            path.display()
        );
    }

    // What moat-smtpd's user can reach on disk: nothing of the queue, the mail or the store.
    let smtpd = privilege::lookup("moat-smtpd").expect("moat-smtpd");
    for target in ["queue", "mail", "db", "db/users.db", "tls/key.pem"] {
        let path = stack.data.join(target);
        let out = Command::new("cat")
            .arg(&path)
            .uid(smtpd.uid)
            .gid(smtpd.gid)
            .output()
            .expect("run cat as moat-smtpd");
        assert!(
            !out.status.success(),
            "moat-smtpd can read {}",
            path.display()
        );
        let out = Command::new("ls")
            .arg(&path)
            .uid(smtpd.uid)
            .gid(smtpd.gid)
            .output()
            .expect("run ls as moat-smtpd");
        if path.is_dir() {
            assert!(
                !out.status.success(),
                "moat-smtpd can list {}",
                path.display()
            );
        }
    }
    // And the running moat-smtpd holds no descriptor into them.
    let pid = stack.pid_of("moat-smtpd").expect("smtpd");
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        for forbidden in ["queue", "mail", "db", "tls"] {
            assert!(
                !target.starts_with(stack.data.join(forbidden)),
                "moat-smtpd holds {}",
                target.display()
            );
        }
    }

    // What moat-remote's user can reach: neither the DKIM keys nor the route's password.
    stack.add_domain("example.test");
    stack.admin(&["dkim", "generate", "example.test"], "");
    let remote = privilege::lookup("moat-remote").expect("moat-remote");
    let dkim = stack.data.join("dkim");
    let mut forbidden = vec![dkim.clone(), dkim.join("example.test"), secret.clone()];
    forbidden.extend(
        std::fs::read_dir(dkim.join("example.test"))
            .expect("key folder")
            .flatten()
            .map(|e| e.path()),
    );
    assert!(forbidden.len() >= 5, "two keys were made: {forbidden:?}");
    for path in &forbidden {
        let tool = if path.is_dir() { "ls" } else { "cat" };
        let out = Command::new(tool)
            .arg(path)
            .uid(remote.uid)
            .gid(remote.gid)
            .output()
            .expect("run as moat-remote");
        assert!(
            !out.status.success(),
            "moat-remote can read {}",
            path.display()
        );
    }
    // The password came as a descriptor; moat-remote read it at start and closed it.
    let pid = stack.pid_of("moat-remote").expect("moat-remote");
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(
            target != secret && !target.starts_with(&dkim),
            "moat-remote holds {}",
            target.display()
        );
    }
}
