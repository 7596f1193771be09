//! Which process serves a client: the server's end of a loopback TCP connection found in
//! /proc/net/tcp (readable by anyone) and looked for among a process's descriptors. The
//! children are not dumpable, so only root can read another one's /proc/PID/fd: not root, the
//! connection is only checked to exist.

use crate::Stack;

/// The port of an address of /proc/net/tcp (`0100007F:0019`: hex, after the colon).
fn port(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')
        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
}

/// The inode of the server's end of the TCP connection from client port `client` to server
/// port `server`.
fn server_socket(server: u16, client: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    // Fields: sl, local, remote, state, ..., inode (the tenth).
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (port(f.get(1)?)? == server && port(f.get(2)?)? == client)
            .then(|| f.get(9).map(|i| i.to_string()))
            .flatten()
    })
}

/// Whether process `pid` holds the socket `inode`; `None` when not root.
fn holds(pid: u32, inode: &str) -> Option<bool> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let want = format!("socket:[{inode}]");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("root reads /proc/PID/fd");
    Some(
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == want)),
    )
}

/// Asserts that the connection from client port `client` to server port `server` exists and,
/// as root, that the server's end is held by the running `owner` and not by `other`.
pub fn served_by(s: &Stack, server: u16, client: u16, owner: &str, other: &str) {
    let inode = server_socket(server, client).expect("the connection in /proc/net/tcp");
    let (owner_pid, other_pid) = (
        s.pid_of(owner).expect("owner running"),
        s.pid_of(other).expect("other running"),
    );
    if let (Some(a), Some(b)) = (holds(owner_pid, &inode), holds(other_pid, &inode)) {
        assert!(a && !b, "{owner} holds it: {a}, {other} holds it: {b}");
    }
}

/// The client ports of the IPv4 TCP connections process `pid` holds (its descriptors matched
/// with /proc/net/tcp; listeners left out): which process serves which client. `None` when
/// not root (the children are not dumpable, so only root reads their /proc/PID/fd).
pub fn tcp_clients(pid: u32) -> Option<Vec<u16>> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("root reads /proc/PID/fd")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|t| {
            let t = t.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(t.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    // Fields: sl, local, remote, state (0A = listening), ..., inode (the tenth).
    Some(
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let held = inodes.iter().any(|i| f.get(9) == Some(&i.as_str()));
                (held && f.get(3) != Some(&"0A")).then(|| port(f.get(2)?))?
            })
            .collect(),
    )
}
