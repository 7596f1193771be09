//! Landlock: each child may touch only its own paths on disk.
//!
//! The supervisor names, per program, the folders and files it may read and those it may also
//! change (`landlock_read`, `landlock_write` settings, one path a line); `Setup::receive` calls
//! `apply` right after the privilege drop, before any thread or input. Every file-system access
//! right the kernel knows is handled (best effort down from the newest ABI the `landlock` crate
//! knows), so whatever is not granted here is refused with EACCES: other folders, `moat.toml`,
//! exec of any program.
//!
//! System calls are limited separately, right after this, by `seccomp`; the self-tests here run
//! in between, so a refused exec shows Landlock's EACCES rather than seccomp's EPERM.
//!
//! SECURITY: descriptors opened before the ruleset (listeners, key files, the setup channel)
//! keep working; only new opens are checked. Connecting to the `run/*.sock` sockets by path is
//! checked only on kernels with `LANDLOCK_ACCESS_FS_RESOLVE_UNIX` (granted on `run_dir`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest ABI this code was written against; older kernels get the subset they know.
const ABI_TARGET: ABI = ABI::V10;

/// What a path is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Read files, list folders.
    Read,
    /// Also write, create, remove and rename files and folders beneath (no devices, fifos,
    /// sockets or symbolic links).
    ReadWrite,
}

/// How much of the ruleset the kernel enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforced {
    Fully,
    /// An older kernel: the rights of Landlock ABIs newer than its own (`abi`) are not
    /// restricted (e.g. connecting to Unix sockets by path before ABI 9).
    Partially {
        abi: String,
    },
    /// No Landlock in this kernel (or disabled): nothing beyond Unix permissions.
    Not,
}

impl std::fmt::Display for Enforced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Enforced::Fully => f.write_str("enforced (every right)"),
            Enforced::Partially { abi } => write!(
                f,
                "enforced (the kernel's Landlock ABI {abi}; rights of newer ABIs unrestricted)"
            ),
            Enforced::Not => f.write_str("not enforced (no Landlock in this kernel)"),
        }
    }
}

fn rights(access: Grant) -> BitFlags<AccessFs> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    match access {
        Grant::Read => read,
        Grant::ReadWrite => {
            read | AccessFs::WriteFile
                | AccessFs::RemoveDir
                | AccessFs::RemoveFile
                | AccessFs::MakeDir
                | AccessFs::MakeReg
                | AccessFs::Refer
                | AccessFs::Truncate
        }
    }
}

/// Restricts this process (all its future threads and children) to `rules`. Paths that do not
/// exist are skipped (nothing is granted there). `unix_sockets` is the folder of the sockets
/// the process connects to.
pub fn apply(rules: &[(PathBuf, Grant)], unix_sockets: Option<&Path>) -> std::io::Result<Enforced> {
    let to_io = |e: landlock::RulesetError| std::io::Error::other(e.to_string());
    let wanted = rules
        .iter()
        .map(|(path, grant)| (path.as_path(), rights(*grant)))
        .chain(unix_sockets.map(|dir| (dir, BitFlags::from(AccessFs::ResolveUnix))));
    let mut beneath = Vec::new();
    for (path, want) in wanted {
        let Ok(fd) = PathFd::new(path) else {
            continue;
        };
        let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
        let want = if is_dir {
            want
        } else {
            want & AccessFs::from_file(ABI_TARGET)
        };
        beneath.push(Ok::<_, landlock::RulesetError>(PathBeneath::new(fd, want)));
    }
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_TARGET))
        .map_err(to_io)?
        // No connecting to abstract Unix sockets (they have no path to refuse) and no signals
        // to processes outside this sandbox (Landlock ABI 6; ignored by older kernels).
        .scope(Scope::from_all(ABI_TARGET))
        .map_err(to_io)?
        .create()
        .map_err(to_io)?
        .add_rules(beneath)
        .map_err(to_io)?
        .restrict_self()
        .map_err(to_io)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Enforced::Fully,
        RulesetStatus::PartiallyEnforced => Enforced::Partially {
            abi: match status.landlock {
                LandlockStatus::Available { effective_abi, .. } => format!("{effective_abi:?}")
                    .trim_start_matches('V')
                    .to_string(),
                _ => "?".to_string(),
            },
        },
        RulesetStatus::NotEnforced => Enforced::Not,
    })
}

/// The program the exec self-test tries to start: present on every Linux system, harmless.
pub const EXEC_PROBE: &str = "/bin/true";

/// Tries to start [`EXEC_PROBE`] and says what happened (the `confinement_self_test`
/// setting): a confined program must not be able to spawn anything (qmail's smtpd could not
/// either), so an attacker who owns it cannot run a shell.
pub fn exec_self_test() -> String {
    let result = std::process::Command::new(EXEC_PROBE)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let verdict = match result {
        Ok(status) => format!("allowed ({status})"),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => format!("denied ({e})"),
        Err(e) => format!("failed ({e})"),
    };
    format!("confinement self-test exec {EXEC_PROBE}: {verdict}")
}

/// Tries to read and to write `path` (a folder: list it, create and remove a file in it) and
/// says what happened, for the `confinement_self_test` setting the tests use.
pub fn self_test(path: &Path) -> String {
    let outcome = |r: std::io::Result<()>| match r {
        Ok(()) => "allowed".to_string(),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => format!("denied ({e})"),
        Err(e) => format!("failed ({e})"),
    };
    let is_dir = std::fs::metadata(path).map(|m| m.is_dir());
    let (read, write) = match is_dir {
        Ok(true) => {
            let read = std::fs::read_dir(path).map(|_| ());
            let probe = path.join(format!(".moat-self-test-{}", std::process::id()));
            let write = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
                .and_then(|_| std::fs::remove_file(&probe));
            (read, write)
        }
        Ok(false) => (
            std::fs::File::open(path).map(|_| ()),
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(|_| ()),
        ),
        Err(e) => (Err(std::io::Error::new(e.kind(), e.to_string())), Err(e)),
    };
    format!(
        "confinement self-test {}: read {}, write {}",
        path.display(),
        outcome(read),
        outcome(write)
    )
}
