//! How the supervisor starts a child and how the child learns its job.
//!
//! The supervisor spawns every Moat process with a Unix socketpair as its standard input. Over
//! it, before anything else, it sends records (see `wire`): `F` [name] carrying one open file
//! descriptor (a listening socket, a key file), `S` [key, value] settings, and `G` to say the
//! setup is complete. The child reads them with `Setup::receive`, which also makes sure the
//! process is not root (dropping to the `user` setting if it still is) and confines it (Landlock,
//! seccomp), then sends back one `C` [Landlock summary, seccomp summary] record. Afterwards the
//! channel stays open: end-of-file on it means the supervisor is gone and the child should stop.
//!
//! SECURITY: the child gets exactly the descriptors and settings it needs and opens no secret
//! itself; nothing is passed on the command line or in the environment, where `ps` shows it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use thiserror::Error;

use crate::confine::{self, Enforced, Grant};
use crate::fdpass::{recv_with_fds, send_with_fds};
use crate::privilege;
use crate::seccomp;
use crate::wire::{Record, WireError};

/// The most setup records a child accepts (bounds a confused or hostile sender).
const MAX_SETUP_RECORDS: usize = 256;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("cannot read the setup from the supervisor: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad setup record: {0}")]
    Wire(#[from] WireError),
    #[error("bad setup: {0}")]
    Bad(String),
    #[error("setting {0:?} is missing from the setup")]
    Missing(String),
    #[error(transparent)]
    Privilege(#[from] privilege::PrivilegeError),
}

/// One thing handed to a child.
pub enum Item<'a> {
    Setting(&'a str, String),
    Fd(&'a str, BorrowedFd<'a>),
}

/// What a child received.
#[derive(Debug)]
pub struct Setup {
    settings: BTreeMap<String, String>,
    fds: BTreeMap<String, OwnedFd>,
    /// The channel to the supervisor (end-of-file = stop).
    pub control: UnixStream,
}

impl Setup {
    /// Reads the setup from standard input. Call first thing in `main`, before any thread or
    /// async runtime exists: if the process is still root it drops to the `user` setting here.
    pub fn receive() -> Result<Setup, SetupError> {
        // By convention fd 0 is the setup channel; `control` holds its own duplicate.
        let stdin: OwnedFd = std::io::stdin().as_fd().try_clone_to_owned()?;
        let control = UnixStream::from(stdin);
        let setup = Setup::receive_from(control)?;
        if privilege::is_root() {
            let user = setup.get("user")?;
            privilege::drop_to(&privilege::lookup(user)?)?;
        } else {
            rustix::thread::set_no_new_privs(true).map_err(std::io::Error::from)?;
        }
        privilege::assert_not_root()?;
        // Not dumpable: no core file with keys, passwords or mail in it, and no ptrace or
        // /proc/PID/mem from another process of the same user (moat-local, moat-imapd and
        // moat-pop3d share one). The kernel does this on a uid change, but the supervisor
        // already spawned us as our user, so nothing changes here and exec left it dumpable.
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(std::io::Error::from)?;
        setup.confine()?;
        Ok(setup)
    }

    /// Applies the Landlock ruleset the supervisor named (`landlock_read`, `landlock_write`:
    /// one path a line) and then the seccomp allow-list of the `program` setting, logs how much
    /// of each the kernel enforces, runs the tests' `confinement_self_test`, and reports both to
    /// the supervisor (`report`). Without the Landlock settings (a child started by hand)
    /// nothing is done. Either one missing is fatal unless `allow_unconfined` is "true".
    fn confine(&self) -> Result<(), SetupError> {
        let (Some(read), Some(write)) = (
            self.get_opt("landlock_read"),
            self.get_opt("landlock_write"),
        ) else {
            return Ok(());
        };
        let allow_unconfined = self.get_opt("allow_unconfined") == Some("true");
        let program = self.get("program")?;
        let lines = |text: &'_ str| {
            text.lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        };
        let (read, write) = (lines(read), lines(write));
        let rules: Vec<(PathBuf, Grant)> = read
            .iter()
            .map(|p| (p.clone(), Grant::Read))
            .chain(write.iter().map(|p| (p.clone(), Grant::ReadWrite)))
            .collect();
        let enforced = confine::apply(&rules, self.get_opt("run_dir").map(Path::new))?;
        if enforced == Enforced::Not && !allow_unconfined {
            return Err(SetupError::Bad(
                "Landlock is not available in this kernel: refusing to run unconfined (set \
                 [security] allow_unconfined = true to accept that)"
                    .into(),
            ));
        }
        let show = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if enforced == Enforced::Not {
            crate::warn!("landlock {enforced}: running without a file-system sandbox");
        } else {
            crate::info!(
                "landlock {enforced}: read-only [{}], read-write [{}]",
                show(&read),
                show(&write)
            );
        }
        // Landlock's own checks run before seccomp, which would refuse exec (EPERM) before
        // Landlock is asked.
        let self_test = lines(self.get_opt("confinement_self_test").unwrap_or_default());
        for path in &self_test {
            crate::info!("{}", confine::self_test(path));
        }
        if !self_test.is_empty() {
            crate::info!("{}", confine::exec_self_test());
        }
        let filtered = match seccomp::apply(program) {
            Ok(applied) => {
                crate::info!("seccomp: {applied}");
                applied.to_string()
            }
            Err(e) if allow_unconfined => {
                crate::warn!("seccomp not enforced ({e}): running without a system-call filter");
                format!("not enforced ({e})")
            }
            Err(e) => {
                return Err(SetupError::Bad(format!(
                    "{e}: refusing to run without a system-call filter (set [security] \
                     allow_unconfined = true to accept that)"
                )));
            }
        };
        if !self_test.is_empty() {
            crate::info!("{}", seccomp::self_test());
        }
        self.report(&enforced.to_string(), &filtered);
        Ok(())
    }

    /// Tells the supervisor how this process is confined (`C` [landlock, seccomp], for `moat
    /// status`). Sent without waiting: a full or closed channel loses the report, never the
    /// process.
    fn report(&self, landlock: &str, seccomp: &str) {
        use rustix::net::SendFlags;
        let sent = Record::new(b'C')
            .field(landlock)
            .field(seccomp)
            .encode()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                rustix::net::send(
                    &self.control,
                    &bytes,
                    SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                )
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    if n == bytes.len() {
                        Ok(())
                    } else {
                        Err(format!("only {n} of {} bytes sent", bytes.len()))
                    }
                })
            });
        if let Err(e) = sent {
            crate::warn!("cannot report the confinement to the supervisor: {e}");
        }
    }

    /// Reads setup records from `control` until `G`.
    pub fn receive_from(control: UnixStream) -> Result<Setup, SetupError> {
        let mut settings = BTreeMap::new();
        let mut fds = BTreeMap::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut pending_fds: Vec<OwnedFd> = Vec::new();
        for _ in 0..MAX_SETUP_RECORDS {
            let (record, used) = loop {
                if let Some(done) = Record::decode(&buf)? {
                    break done;
                }
                let mut chunk = [0u8; 8192];
                let (n, got) = recv_with_fds(&control, &mut chunk)?;
                if n == 0 {
                    return Err(SetupError::Bad("the supervisor closed the channel".into()));
                }
                buf.extend_from_slice(&chunk[..n]);
                pending_fds.extend(got);
            };
            buf.drain(..used);
            match record.kind {
                b'S' => {
                    settings.insert(record.text(0)?.to_string(), record.text(1)?.to_string());
                }
                b'F' => {
                    let fd = if pending_fds.is_empty() {
                        return Err(SetupError::Bad("F record without a descriptor".into()));
                    } else {
                        pending_fds.remove(0)
                    };
                    fds.insert(record.text(0)?.to_string(), fd);
                }
                b'G' => {
                    return Ok(Setup {
                        settings,
                        fds,
                        control,
                    });
                }
                other => {
                    return Err(SetupError::Bad(format!(
                        "unknown record kind {:?}",
                        other as char
                    )));
                }
            }
        }
        Err(SetupError::Bad("too many setup records".into()))
    }

    /// A required setting.
    pub fn get(&self, key: &str) -> Result<&str, SetupError> {
        self.settings
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| SetupError::Missing(key.to_string()))
    }

    /// An optional setting.
    pub fn get_opt(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// A required descriptor, taken out of the setup.
    pub fn take_fd(&mut self, name: &str) -> Result<OwnedFd, SetupError> {
        self.fds
            .remove(name)
            .ok_or_else(|| SetupError::Missing(format!("descriptor {name}")))
    }

    /// An optional descriptor.
    pub fn take_fd_opt(&mut self, name: &str) -> Option<OwnedFd> {
        self.fds.remove(name)
    }
}

/// Spawns `cmd` with a setup channel as its standard input and sends `items`.
/// Returns the child and the supervisor's end of the channel.
pub fn spawn(cmd: &mut Command, items: &[Item<'_>]) -> std::io::Result<(Child, UnixStream)> {
    let (ours, theirs) = UnixStream::pair()?;
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)));
    let child = cmd.spawn()?;
    send_setup(&ours, items)?;
    Ok((child, ours))
}

/// Sends the setup records over an existing channel (also used by tests that start a child
/// themselves).
pub fn send_setup(channel: &UnixStream, items: &[Item<'_>]) -> std::io::Result<()> {
    let to_io = |e: WireError| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut writer = channel;
    for item in items {
        match item {
            Item::Setting(k, v) => {
                let bytes = Record::new(b'S')
                    .field(k)
                    .field(v)
                    .encode()
                    .map_err(to_io)?;
                writer.write_all(&bytes)?;
            }
            Item::Fd(name, fd) => {
                let bytes = Record::new(b'F').field(name).encode().map_err(to_io)?;
                let sent = send_with_fds(channel, &bytes, &[*fd])?;
                writer.write_all(&bytes[sent..])?;
            }
        }
    }
    writer.write_all(&Record::new(b'G').encode().map_err(to_io)?)?;
    writer.flush()
}

/// Blocks until the supervisor closes the channel (use from a dedicated thread or
/// `spawn_blocking`); any byte received is ignored.
pub fn wait_for_close(mut control: &UnixStream) {
    let mut buf = [0u8; 64];
    loop {
        match control.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            // A signal landing on this thread is not the supervisor going away.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    #[test]
    fn settings_and_descriptors_arrive() {
        let (sup, child) = UnixStream::pair().expect("pair");
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"key material").expect("write");
        file.rewind().expect("rewind");
        send_setup(
            &sup,
            &[
                Item::Setting("run_dir", "/run/moat".into()),
                Item::Fd("tls_key", file.as_fd()),
                Item::Setting("hostname", "mx.example.test".into()),
            ],
        )
        .expect("send");
        let mut setup = Setup::receive_from(child).expect("receive");
        assert_eq!(setup.get("run_dir").ok(), Some("/run/moat"));
        assert_eq!(setup.get("hostname").ok(), Some("mx.example.test"));
        assert!(matches!(setup.get("nope"), Err(SetupError::Missing(_))));
        let mut key = String::new();
        std::fs::File::from(setup.take_fd("tls_key").expect("fd"))
            .read_to_string(&mut key)
            .expect("read");
        assert_eq!(key, "key material");
        assert!(setup.take_fd("tls_key").is_err());
        drop(sup);
        wait_for_close(&setup.control);
    }

    #[test]
    fn a_closed_channel_is_an_error() {
        let (sup, child) = UnixStream::pair().expect("pair");
        drop(sup);
        assert!(Setup::receive_from(child).is_err());
    }
}
