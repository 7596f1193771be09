//! getmail6 (a Debian package), a POP3 client nobody here wrote, run the way its users do: an
//! rc file, a state folder, and a local Maildir it delivers into.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Makes the Maildir `dir/Maildir` for getmail to deliver into; returns it and the line its
/// rc file's `[destination]` needs. getmail refuses to deliver as root: as root it delivers as
/// nobody, into a Maildir nobody owns (and `dir` is opened to everyone to reach it).
pub fn maildir(dir: &Path) -> (PathBuf, &'static str) {
    let local = dir.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(local.join(sub)).expect("mkdir");
    }
    if !rustix::process::geteuid().is_root() {
        return (local, "");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for d in ["", "cur", "new", "tmp"] {
        std::os::unix::fs::chown(local.join(d), Some(65534), Some(65534)).expect("chown");
    }
    (local, "user = nobody\n")
}

/// Runs getmail with the rc file `rc`, `dir` as its home and state folder.
pub fn run(dir: &Path, rc: &Path) -> Output {
    Command::new("getmail")
        .arg("--getmaildir")
        .arg(dir)
        .arg("--rcfile")
        .arg(rc)
        .env("HOME", dir)
        .output()
        .expect("getmail not installed; .ci/run installs it")
}

/// The messages in the Maildir `local` (new/ and cur/).
pub fn fetched(local: &Path) -> Vec<String> {
    ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(local.join(d)).expect("dir").flatten())
        .map(|e| std::fs::read_to_string(e.path()).expect("read"))
        .collect()
}
