//! A real receiving SMTP server for the tests of outgoing mail: Python's aiosmtpd
//! (`tests/peers/smtp_peer.py`, Debian python3-aiosmtpd) on a loopback port. Local parts
//! starting with `perm` get 550, `temp` 451 (see the script); everything received is written to
//! a folder the test reads.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Stack;

/// Debian's interpreter, where python3-aiosmtpd and python3-dnslib are installed.
pub const PYTHON: &str = "/usr/bin/python3";

/// A running aiosmtpd peer; killed on drop.
pub struct Peer {
    child: Child,
    pub port: u16,
    out: tempfile::TempDir,
}

impl Peer {
    pub fn start(tls: Option<(&Path, &Path)>) -> Peer {
        let out = tempfile::tempdir().expect("tempdir");
        let [port] = crate::free_ports::<1>();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smtp_peer.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script).arg(port.to_string()).arg(out.path());
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("peer output");
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Peer { child, port, out }
    }

    /// The messages received so far: (envelope lines, message bytes), in order.
    pub fn received(&self) -> Vec<(Vec<String>, Vec<u8>)> {
        let mut got = Vec::new();
        for n in 1.. {
            let base = self.out.path().join(n.to_string());
            let Ok(bytes) = std::fs::read(base.with_extension("eml")) else {
                break;
            };
            let env = std::fs::read_to_string(base.with_extension("env")).unwrap_or_default();
            got.push((env.lines().map(str::to_string).collect(), bytes));
        }
        got
    }

    pub fn wait(&self, n: usize, stack: &Stack) -> Vec<(Vec<String>, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the peer got {} of {n} messages:\n{}",
                got.len(),
                stack.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
