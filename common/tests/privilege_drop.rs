//! `drop_to` for real: as root, a child process drops to `nobody` and must then be unable to
//! read a root-only file or to become root again. A plain `main` (harness = false) because the
//! drop needs a single-threaded process, and libtest runs each test on a thread of its own.

use std::process::Command;

use moat_common::privilege::{self, Account};

const CHILD: &str = "MOAT_PRIVILEGE_CHILD";

fn main() {
    if let Ok(secret) = std::env::var(CHILD) {
        child(&secret);
        return;
    }
    if !privilege::is_root() {
        println!("privilege_drop: not root, nothing to test (CI runs as root)");
        println!("0 passed, 0 failed, 1 skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.key");
    std::fs::write(&secret, "private").expect("write");
    // World-traversable dir, root-only file: only the mode bits keep nobody out.
    set_mode(dir.path(), 0o755);
    set_mode(&secret, 0o600);
    let out = Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, &secret)
        .output()
        .expect("spawn child");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !text.contains("child ok") {
        println!("privilege_drop: FAILED\n{text}\n{err}");
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
    println!("{text}1 passed, 0 failed");
}

fn child(secret: &str) {
    let nobody = privilege::lookup("nobody").unwrap_or(Account {
        name: "nobody".into(),
        uid: 65534,
        gid: 65534,
    });
    privilege::drop_to(&nobody).expect("drop to nobody");
    privilege::assert_not_root().expect("not root");
    assert_eq!(rustix::process::getuid().as_raw(), nobody.uid);
    let read = std::fs::read(secret);
    assert!(read.is_err(), "nobody could read a root-only file");
    assert!(
        rustix::thread::set_thread_res_uid(
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT
        )
        .is_err(),
        "could become root again"
    );
    // A second thread cannot be running: drop_to refuses then.
    let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
    assert!(matches!(
        privilege::drop_to(&nobody),
        Err(privilege::PrivilegeError::Threaded(_))
    ));
    let _ = t.join();
    println!("child ok: uid {}", nobody.uid);
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
