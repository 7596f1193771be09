//! Dropping root for good, before a process touches its input.
//!
//! Every child of the supervisor calls `drop_to` first thing, while it still has one thread (the
//! Linux uid/gid system calls act on the calling thread only, so an async runtime must be built
//! after, never before), then `assert_not_root`. The supervisor's `Command` also sets uid/gid at
//! spawn; this is the second, independent check that qmail's programs do too.
//!
//! SECURITY: supplementary groups are cleared, real/effective/saved ids are all set so there is no
//! way back, no_new_privs stops setuid binaries from giving anything back, and the result is
//! verified by trying to regain root, which must fail.

use rustix::process::{Gid, Uid, getegid, geteuid, getgid, getuid};
use thiserror::Error;

/// A system account as found in /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    #[error("cannot drop privileges with {0} threads running: drop them before starting any")]
    Threaded(usize),
    #[error("refusing to run as root: {0}")]
    StillRoot(&'static str),
    #[error("cannot switch to uid {uid} gid {gid}: {source}")]
    Switch {
        uid: u32,
        gid: u32,
        source: std::io::Error,
    },
    #[error("no system user {0:?}: create it (moat install does) or fix the configuration")]
    NoSuchUser(String),
    #[error("cannot read /etc/passwd: {0}")]
    Passwd(std::io::Error),
}

/// Looks a system user up in /etc/passwd (system accounts are local; no NSS is needed).
pub fn lookup(name: &str) -> Result<Account, PrivilegeError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(PrivilegeError::Passwd)?;
    find_in_passwd(&passwd, name).ok_or_else(|| PrivilegeError::NoSuchUser(name.to_string()))
}

fn find_in_passwd(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let (user, _, uid, gid) = (f.next()?, f.next()?, f.next()?, f.next()?);
        (user == name).then_some(())?;
        Some(Account {
            name: user.to_string(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    })
}

/// Whether this process is root (and so must drop privileges before doing anything else).
pub fn is_root() -> bool {
    getuid().is_root() || geteuid().is_root()
}

/// Becomes `account` irrevocably. Must be called while the process has a single thread.
pub fn drop_to(account: &Account) -> Result<(), PrivilegeError> {
    let threads = thread_count();
    if threads != 1 {
        return Err(PrivilegeError::Threaded(threads));
    }
    let (uid, gid) = (Uid::from_raw(account.uid), Gid::from_raw(account.gid));
    let switch = |source: rustix::io::Errno| PrivilegeError::Switch {
        uid: account.uid,
        gid: account.gid,
        source: source.into(),
    };
    rustix::thread::set_thread_groups(&[]).map_err(switch)?;
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(switch)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(switch)?;
    rustix::thread::set_no_new_privs(true).map_err(switch)?;
    if account.uid != 0
        && rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok()
    {
        return Err(PrivilegeError::StillRoot(
            "setuid(0) still works after the drop",
        ));
    }
    assert_not_root()
}

/// Fails when any of our ids is root's.
pub fn assert_not_root() -> Result<(), PrivilegeError> {
    if getuid().is_root() || geteuid().is_root() {
        return Err(PrivilegeError::StillRoot("the user id is 0"));
    }
    if getgid().is_root() || getegid().is_root() {
        return Err(PrivilegeError::StillRoot("the group id is 0"));
    }
    Ok(())
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      broken line\n\
                      moat-smtpd:x:998:997::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            find_in_passwd(passwd, "moat-smtpd"),
            Some(Account {
                name: "moat-smtpd".into(),
                uid: 998,
                gid: 997
            })
        );
        assert_eq!(find_in_passwd(passwd, "moat"), None);
        assert_eq!(find_in_passwd(passwd, "broken line"), None);
    }
}
