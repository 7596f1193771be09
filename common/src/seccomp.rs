//! seccomp: each child may make only the system calls its job needs.
//!
//! Landlock (`confine`) limits which paths a process reaches; this limits what it can ask the
//! kernel at all. `Setup::confine` applies the allow-list of the `program` setting right after
//! Landlock, while the process still has one thread (the filter is inherited by every thread
//! and child created afterwards; it is also synchronised to any thread that already exists).
//! A list is a common base (std, tokio's multi-thread runtime, rustls, the log, the Unix-socket
//! protocols and descriptor passing) plus the extras of the program: Internet sockets for the
//! ones that talk TCP or DNS themselves, file changes (rename, link, fsync, ...) for the ones
//! that write Maildirs, the queue, the lists or the store. The lists were found with `strace -f`
//! on the stacks of every end-to-end suite (tests/tests, and moat-auth on PostgreSQL named by an
//! IP address and by a host name, from /etc/hosts and from DNS): add a call here when a program
//! logs "Operation not permitted" for something it must do.
//!
//! Anything not listed fails with EPERM rather than killing the process: a call this list
//! missed (a new libc, a code path the tests never ran) becomes an error the program logs and
//! survives, not a mail server that dies mid-delivery; the call is refused either way, so the
//! attacker gains nothing from the softer default.
//!
//! SECURITY: never allowed anywhere: execve/execveat, ptrace, process_vm_readv/writev,
//! mount and friends, kexec, bpf, perf_event_open, keyctl/add_key/request_key, personality,
//! unshare/setns, module loading, io_uring, userfaultfd, and socket families other than
//! AF_UNIX (plus AF_INET/AF_INET6 for the programs that need them). `clone` is allowed only
//! without namespace flags, and `clone3` (whose flags the filter cannot see) answers ENOSYS so
//! libc falls back to `clone`. `ioctl` is limited to FIONBIO/FIOCLEX, `prctl` to thread names,
//! and signals and resource limits apply to this process only.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// A system call: its name (as `libc` spells its number) and number.
type Call = (&'static str, libc::c_long);

macro_rules! calls {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), libc::$name)),*]
    };
}

/// What std, tokio (multi-thread runtime, timers, signals, blocking pool), rustls, the log and
/// the internal protocols over Unix sockets need, in every program. `clone`, `ioctl`, `prctl`,
/// `socket`, `kill`, `tgkill` and `prlimit64` are added with argument checks by `rules`.
const BASE: &[Call] = calls![
    // Memory.
    SYS_brk,
    SYS_mmap,
    SYS_munmap,
    SYS_mremap,
    SYS_mprotect,
    SYS_madvise,
    // Threads, futexes, scheduling.
    SYS_clone3,
    SYS_futex,
    SYS_set_robust_list,
    SYS_rseq,
    SYS_sched_yield,
    SYS_sched_getaffinity,
    SYS_exit,
    SYS_exit_group,
    SYS_getpid,
    SYS_gettid,
    SYS_getuid,
    SYS_geteuid,
    SYS_getgid,
    SYS_getegid,
    SYS_restart_syscall,
    // Signals.
    SYS_rt_sigaction,
    SYS_rt_sigprocmask,
    SYS_rt_sigreturn,
    SYS_sigaltstack,
    // Time and randomness.
    SYS_clock_gettime,
    SYS_clock_getres,
    SYS_clock_nanosleep,
    SYS_nanosleep,
    SYS_gettimeofday,
    SYS_getrandom,
    // Descriptors and the event loop.
    SYS_read,
    SYS_write,
    SYS_readv,
    SYS_writev,
    SYS_pread64,
    SYS_close,
    SYS_fcntl,
    SYS_lseek,
    SYS_eventfd2,
    SYS_epoll_create1,
    SYS_epoll_ctl,
    SYS_epoll_pwait,
    SYS_ppoll,
    // Sockets (the families are checked in `rules`).
    SYS_socketpair,
    SYS_connect,
    SYS_accept4,
    SYS_recvfrom,
    SYS_sendto,
    SYS_recvmsg,
    SYS_sendmsg,
    SYS_shutdown,
    SYS_getsockname,
    SYS_getpeername,
    SYS_getsockopt,
    SYS_setsockopt,
    // Reading files (Landlock decides which).
    SYS_openat,
    SYS_statx,
    SYS_newfstatat,
    SYS_fstat,
    SYS_getdents64,
    SYS_readlinkat,
    // access(2): aarch64 has only these (SQLite's hot-journal check; glibc's faccessat()
    // tries faccessat2 first).
    SYS_faccessat,
    SYS_faccessat2,
    SYS_getcwd,
    SYS_uname,
];

/// The x86_64 names of calls aarch64 has only in their `*at`/`p*` form (libc still uses some).
#[cfg(target_arch = "x86_64")]
const BASE_LEGACY: &[Call] = calls![
    SYS_epoll_wait,
    SYS_poll,
    SYS_stat,
    SYS_lstat,
    SYS_open,
    SYS_readlink,
    SYS_access,
];
#[cfg(not(target_arch = "x86_64"))]
const BASE_LEGACY: &[Call] = &[];

/// Changing files: Maildirs, the queue, the lists' folders, the SQLite store.
const WRITE_FILES: &[Call] = calls![
    SYS_pwrite64,
    SYS_fsync,
    SYS_fdatasync,
    SYS_ftruncate,
    SYS_fallocate,
    SYS_flock,
    // rename(2) on aarch64 (which has no `rename`): glibc calls renameat, and std's fs::rename
    // calls glibc.
    SYS_renameat,
    SYS_renameat2,
    SYS_linkat,
    SYS_unlinkat,
    SYS_mkdirat,
    SYS_fchmod,
    // chmod(2) on aarch64 (which has no `chmod`).
    SYS_fchmodat,
    SYS_utimensat,
    SYS_umask,
];
#[cfg(target_arch = "x86_64")]
const WRITE_FILES_LEGACY: &[Call] = calls![
    SYS_rename, SYS_link, SYS_unlink, SYS_mkdir, SYS_rmdir, SYS_chmod,
];
#[cfg(not(target_arch = "x86_64"))]
const WRITE_FILES_LEGACY: &[Call] = &[];

/// Talking TCP or DNS itself (not only on descriptors the supervisor passed): `socket` for
/// AF_INET/AF_INET6, `bind` for the UDP port of a DNS query, and glibc's resolver (moat-auth
/// resolving a PostgreSQL host name with getaddrinfo): it sends the A and AAAA queries with
/// one `sendmmsg` and fails the lookup if that fails (only `options single-request` in
/// resolv.conf makes it use `sendto`).
const INTERNET: &[Call] = calls![SYS_bind, SYS_sendmmsg];

/// Watching Maildirs for IMAP IDLE (inotify).
const WATCH: &[Call] = calls![
    SYS_inotify_init1,
    SYS_inotify_add_watch,
    SYS_inotify_rm_watch,
];

/// What one program may do beyond the base.
struct Profile {
    write_files: bool,
    internet: bool,
    watch: bool,
}

fn profile(program: &str) -> Option<Profile> {
    let (write_files, internet, watch) = match program {
        // Accept on passed TCP listeners, talk to moat-auth, moat-queue and the mail processes
        // over Unix sockets (with descriptor passing).
        "moat-smtpd" | "moat-imap-login" | "moat-pop3-login" => (false, false, false),
        // Maildirs (flags, expunge, APPEND, mailbox folders); IDLE watches them.
        "moat-imapd" => (true, false, true),
        "moat-pop3d" | "moat-local" | "moat-queue" => (true, false, false),
        // SQLite files, or a PostgreSQL server over TCP.
        "moat-auth" => (true, true, false),
        // SMTP out and DNS.
        "moat-remote" => (false, true, false),
        // Its folders, and DMARC lookups over DNS.
        "moat-lists" => (true, true, false),
        _ => return None,
    };
    Some(Profile {
        write_files,
        internet,
        watch,
    })
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    #[error("no seccomp allow-list for program {0:?}")]
    UnknownProgram(String),
    #[error("no seccomp allow-list for the {0} architecture (x86_64 and aarch64 only)")]
    Architecture(&'static str),
    #[error("cannot build the seccomp filter: {0}")]
    Build(String),
    #[error("the kernel refused the seccomp filter: {0}")]
    Apply(String),
}

/// The names of the system calls `program` may make (sorted, without the `SYS_` prefix);
/// `clone`, `ioctl`, `prctl`, `socket`, `kill`, `tgkill` and `prlimit64` only with the
/// arguments checked.
pub fn allowed(program: &str) -> Result<Vec<&'static str>, SeccompError> {
    let mut names: Vec<&'static str> = calls(program)?
        .iter()
        .map(|(name, _)| name.trim_start_matches("SYS_"))
        .chain([
            "clone",
            "ioctl",
            "prctl",
            "socket",
            "kill",
            "tgkill",
            "prlimit64",
        ])
        .collect();
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

fn calls(program: &str) -> Result<Vec<Call>, SeccompError> {
    let p = profile(program).ok_or_else(|| SeccompError::UnknownProgram(program.to_string()))?;
    let mut list: Vec<Call> = BASE.iter().chain(BASE_LEGACY).copied().collect();
    if p.write_files {
        list.extend(WRITE_FILES.iter().chain(WRITE_FILES_LEGACY));
    }
    if p.internet {
        list.extend(INTERNET);
    }
    if p.watch {
        list.extend(WATCH);
    }
    Ok(list)
}

fn arch() -> Result<TargetArch, SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        other => Err(SeccompError::Architecture(other)),
    }
}

fn arg(index: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| SeccompError::Build(e.to_string()))
}

/// One rule per accepted value of argument `index` (any of them matches).
fn one_of(index: u8, values: &[u64]) -> Result<Vec<SeccompRule>, SeccompError> {
    values
        .iter()
        .map(|v| {
            SeccompRule::new(vec![arg(index, SeccompCmpOp::Eq, *v)?])
                .map_err(|e| SeccompError::Build(e.to_string()))
        })
        .collect()
}

/// The namespace flags no Moat process may pass to `clone` (a new user namespace would hand
/// it every capability inside, and with them much more of the kernel to attack).
const NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWTIME) as u64;

// `c_long` (a system call's number) is i64 on the targets that have lists, i32 elsewhere.
#[allow(clippy::useless_conversion)]
fn rules(program: &str) -> Result<BTreeMap<i64, Vec<SeccompRule>>, SeccompError> {
    let p = profile(program).ok_or_else(|| SeccompError::UnknownProgram(program.to_string()))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = calls(program)?
        .into_iter()
        .map(|(_, nr)| (i64::from(nr), Vec::new()))
        .collect();
    let mut families = vec![libc::AF_UNIX as u64];
    if p.internet {
        families.extend([libc::AF_INET as u64, libc::AF_INET6 as u64]);
    }
    rules.insert(libc::SYS_socket, one_of(0, &families)?);
    // The request type is `c_ulong` with glibc and `c_int` with musl.
    #[allow(clippy::unnecessary_cast)]
    let requests = [libc::FIONBIO as u64, libc::FIOCLEX as u64];
    rules.insert(libc::SYS_ioctl, one_of(1, &requests)?);
    // Thread names (std names tokio's workers); nothing else prctl can change.
    rules.insert(
        libc::SYS_prctl,
        one_of(0, &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64])?,
    );
    // The clone flags sit in argument 0 on x86_64 and aarch64 alike.
    rules.insert(
        libc::SYS_clone,
        vec![
            SeccompRule::new(vec![arg(0, SeccompCmpOp::MaskedEq(NAMESPACES), 0)?])
                .map_err(|e| SeccompError::Build(e.to_string()))?,
        ],
    );
    // abort() and raise() signal this very process only.
    let me = u64::from(std::process::id());
    rules.insert(libc::SYS_kill, one_of(0, &[me])?);
    rules.insert(libc::SYS_tgkill, one_of(0, &[me])?);
    // Resource limits of this process only (pid 0), not of another process of the same user.
    rules.insert(libc::SYS_prlimit64, one_of(0, &[0])?);
    Ok(rules)
}

fn compile(
    filter: Result<SeccompFilter, seccompiler::BackendError>,
) -> Result<BpfProgram, SeccompError> {
    filter
        .and_then(BpfProgram::try_from)
        .map_err(|e| SeccompError::Build(e.to_string()))
}

/// What `apply` enforced, for the log and `moat status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub program: String,
    pub calls: usize,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "allow-list {} ({} system calls), others refused with EPERM",
            self.program, self.calls
        )
    }
}

/// Installs `program`'s allow-list on this process (every thread, and all later ones).
pub fn apply(program: &str) -> Result<Applied, SeccompError> {
    let arch = arch()?;
    let calls = allowed(program)?.len();
    // Installed first, so the allow-list below (which lets clone3 through) is checked before
    // it, and this one turns clone3 into ENOSYS: libc then creates threads with `clone`,
    // whose flags the allow-list can check.
    let no_clone3 = compile(SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    ))?;
    let allow_list = compile(SeccompFilter::new(
        rules(program)?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    ))?;
    for filter in [&no_clone3, &allow_list] {
        seccompiler::apply_filter_all_threads(filter)
            .map_err(|e| SeccompError::Apply(e.to_string()))?;
    }
    Ok(Applied {
        program: program.to_string(),
        calls,
    })
}

/// Tries a call no allow-list has and says what happened (the `confinement_self_test`
/// setting): opening a netlink socket, which any user may do without seccomp (it would let an
/// attacker read the routing tables and talk to a large part of the kernel).
pub fn self_test() -> String {
    let result = rustix::net::socket(
        rustix::net::AddressFamily::NETLINK,
        rustix::net::SocketType::RAW,
        None,
    );
    let verdict = match result {
        Ok(_) => "allowed".to_string(),
        Err(rustix::io::Errno::PERM) => "denied (EPERM)".to_string(),
        Err(e) => format!("failed ({e})"),
    };
    format!("confinement self-test syscall socket(AF_NETLINK): {verdict}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAMS: [&str; 10] = [
        "moat-smtpd",
        "moat-imapd",
        "moat-imap-login",
        "moat-pop3-login",
        "moat-pop3d",
        "moat-auth",
        "moat-queue",
        "moat-local",
        "moat-remote",
        "moat-lists",
    ];

    #[test]
    fn every_program_has_a_list_without_the_forbidden_calls() {
        for program in PROGRAMS {
            let names = allowed(program).expect("a list");
            for forbidden in [
                "execve",
                "execveat",
                "ptrace",
                "process_vm_readv",
                "process_vm_writev",
                "mount",
                "kexec_load",
                "bpf",
                "perf_event_open",
                "keyctl",
                "add_key",
                "personality",
                "unshare",
                "setns",
                "init_module",
                "finit_module",
                "io_uring_setup",
                "seccomp",
                "setuid",
            ] {
                assert!(
                    !names.contains(&forbidden),
                    "{program} may call {forbidden}"
                );
            }
            assert!(rules(program).is_ok(), "{program}");
        }
        assert!(
            allowed("moat-smtpd").expect("list").len() < allowed("moat-local").expect("list").len()
        );
        assert!(matches!(
            allowed("bash"),
            Err(SeccompError::UnknownProgram(_))
        ));
    }

    #[test]
    fn the_calls_libc_makes_on_aarch64_and_for_getaddrinfo_are_listed() {
        for program in PROGRAMS {
            let names = allowed(program).expect("a list");
            // access(2) is faccessat/faccessat2 on aarch64 (SQLite's hot-journal check).
            assert!(names.contains(&"faccessat") && names.contains(&"faccessat2"));
            // chmod(2) and rename(3) on aarch64, where the programs that change files need them.
            let writes = profile(program).expect("profile").write_files;
            assert_eq!(names.contains(&"fchmodat"), writes, "{program}");
            assert_eq!(names.contains(&"renameat"), writes, "{program}");
            // glibc's resolver sends the A and AAAA queries with one sendmmsg.
            let internet = profile(program).expect("profile").internet;
            assert_eq!(names.contains(&"sendmmsg"), internet, "{program}");
        }
    }

    #[test]
    fn the_filters_compile() {
        let arch = arch().expect("a supported architecture");
        for program in PROGRAMS {
            let filter = compile(SeccompFilter::new(
                rules(program).expect("rules"),
                SeccompAction::Errno(libc::EPERM as u32),
                SeccompAction::Allow,
                arch,
            ))
            .expect("compiles");
            assert!(!filter.is_empty());
        }
    }
}
