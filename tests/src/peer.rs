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

/// How a peer differs from the default (127.0.0.1 on a free port, 8BITMIME and SMTPUTF8 offered,
/// answering at once).
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Bind address (e.g. 127.0.0.3 for a second MX on the same port).
    pub address: Option<String>,
    pub port: Option<u16>,
    pub no_smtputf8: bool,
    pub no_8bitmime: bool,
    /// Seconds to wait before answering the end of data.
    pub data_delay: Option<f64>,
    /// Require AUTH with this (user, password) before MAIL; offered only under TLS unless
    /// `auth_plaintext`.
    pub auth: Option<(String, String)>,
    pub auth_plaintext: bool,
    /// The mechanisms offered, e.g. "LOGIN" (default "PLAIN LOGIN").
    pub auth_mechanisms: Option<String>,
    /// Recipients answered 550 at RCPT whatever their local part (see `Peer::refused`).
    pub refuse: Vec<String>,
    /// Seconds between logging such a RCPT (`Peer::refused`) and answering it.
    pub refuse_delay: Option<f64>,
}

impl Peer {
    pub fn start(tls: Option<(&Path, &Path)>) -> Peer {
        Peer::start_with(tls, &Options::default())
    }

    pub fn start_with(tls: Option<(&Path, &Path)>, options: &Options) -> Peer {
        let out = tempfile::tempdir().expect("tempdir");
        let port = options.port.unwrap_or_else(|| crate::free_ports::<1>()[0]);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smtp_peer.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script).arg(port.to_string()).arg(out.path());
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        if let Some(address) = &options.address {
            cmd.env("PEER_ADDRESS", address);
        }
        if options.no_smtputf8 {
            cmd.env("PEER_NO_SMTPUTF8", "1");
        }
        if options.no_8bitmime {
            cmd.env("PEER_NO_8BITMIME", "1");
        }
        if let Some(delay) = options.data_delay {
            cmd.env("PEER_DATA_DELAY", delay.to_string());
        }
        if let Some((user, password)) = &options.auth {
            cmd.env("PEER_AUTH", format!("{user}:{password}"));
        }
        if options.auth_plaintext {
            cmd.env("PEER_AUTH_PLAINTEXT", "1");
        }
        if let Some(mechanisms) = &options.auth_mechanisms {
            cmd.env("PEER_AUTH_MECHANISMS", mechanisms);
        }
        if !options.refuse.is_empty() {
            cmd.env("PEER_REFUSE", options.refuse.join(","));
        }
        if let Some(delay) = options.refuse_delay {
            cmd.env("PEER_REFUSE_DELAY", delay.to_string());
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

    /// The RCPTs refused because of `Options::refuse`, in order: (MAIL FROM, RCPT); each is
    /// listed as soon as it arrives, `Options::refuse_delay` before its 550.
    pub fn refused(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.out.path().join("refused"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(from, rcpt)| (from.to_string(), rcpt.to_string()))
            .collect()
    }

    /// The MAIL FROM parameters of the `n`th message received (from 1): "SIZE=42 BODY=8BITMIME".
    pub fn mail_options(&self, n: usize) -> String {
        let path = self.out.path().join(format!("{n}.opts"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Every AUTH the peer saw, in order: `AUTH PLAIN` per command, `<login> ok|refused` per
    /// checked login (`Options::auth`).
    pub fn auth_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.out.path().join("auth"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The login of the session that sent the `n`th message (from 1); "" without AUTH.
    pub fn login(&self, n: usize) -> String {
        let path = self.out.path().join(format!("{n}.login"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// SMTP sessions so far, and the most open at once.
    pub fn sessions(&self) -> (u32, u32) {
        let text = std::fs::read_to_string(self.out.path().join("connections")).unwrap_or_default();
        let mut numbers = text.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
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

/// A self-signed certificate for `localhost` and its key, written into `dir`: (cert, key) for
/// `Peer::start`.
pub fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (dir.join("peer-cert.pem"), dir.join("peer-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
