//! The `sendmail` command: who is sending, where the queue is, the injection, and the exit codes
//! (sysexits, as every sendmail): 0 queued (the queue answered `K`), 64 usage, 65 refused for
//! good (`D`), 74 cannot read standard input, 75 temporary (`Z`, queue unreachable).
//!
//! The queue socket is `$MOAT_QUEUE_SOCKET`, else `/run/moat/queue.sock`; the host name used for
//! unqualified addresses and added headers is `$MOAT_HOSTNAME`, else the system's node name.
//! (Reading `[paths] run` from moat.toml is left for later.)
//!
//! SECURITY: runs as the invoking user, without privilege; the queue records that uid and marks
//! the message `sendmail` whatever we say. Errors are printed as `sendmail: ...` on stderr.

use std::io::BufRead;
use std::path::PathBuf;

use moat_common::client::queue::{Injection, Origin};
use moat_common::wire::Status;

use super::sendmail_args::{Command, Options, USAGE, parse};
use super::sendmail_message::{Identity, Line, Lines, envelope_sender, prepare, qualify};
use moat_common::date;

pub const EX_OK: u8 = 0;
pub const EX_USAGE: u8 = 64;
pub const EX_DATAERR: u8 = 65;
pub const EX_IOERR: u8 = 74;
pub const EX_TEMPFAIL: u8 = 75;

/// The default queue socket.
pub const DEFAULT_SOCKET: &str = "/run/moat/queue.sock";

/// A failure with its exit code.
pub struct Failure {
    pub code: u8,
    pub text: String,
}

fn fail(code: u8, text: impl Into<String>) -> Failure {
    Failure {
        code,
        text: text.into(),
    }
}

/// The invoking user from /etc/passwd (name and the full name from GECOS), else the environment.
pub fn identity(hostname: String) -> Identity {
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 5 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[4].to_string()))
    });
    let (login, gecos) = entry.unwrap_or_else(|| {
        let name = std::env::var("LOGNAME")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| format!("uid{uid}"));
        (name, String::new())
    });
    let full_name = gecos
        .split(',')
        .next()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Identity {
        login,
        full_name,
        uid,
        hostname,
    }
}

/// `$MOAT_HOSTNAME` or the system's node name.
pub fn hostname() -> String {
    std::env::var("MOAT_HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        })
}

/// `$MOAT_QUEUE_SOCKET` or the default.
pub fn socket() -> PathBuf {
    std::env::var_os("MOAT_QUEUE_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// The whole command: parses `args`, reads `input`, queues. Returns the exit code.
pub fn main<R: BufRead>(args: Vec<String>, input: R) -> u8 {
    let opts = match parse(args) {
        Ok(Command::Send(opts)) => opts,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return EX_OK;
        }
        Err(e) => {
            eprintln!("sendmail: {e}\n{USAGE}");
            return EX_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sendmail: cannot start: {e}");
            return EX_TEMPFAIL;
        }
    };
    match runtime.block_on(submit(&opts, input)) {
        Ok(id) => {
            if opts.verbose {
                println!("sendmail: queued as {id}");
            }
            EX_OK
        }
        Err(f) => {
            eprintln!("sendmail: {}", f.text);
            f.code
        }
    }
}

async fn submit<R: BufRead>(opts: &Options, input: R) -> Result<String, Failure> {
    let who = identity(hostname());
    let sender = envelope_sender(opts, &who);
    let mut lines = Lines::new(input, opts.ignore_dots);
    let read_error = |e: std::io::Error| fail(EX_IOERR, format!("cannot read the message: {e}"));
    let prepared = prepare(&mut lines, opts, &who, &sender, date::now(), rand::random())
        .map_err(read_error)?;
    let mut recipients: Vec<String> = opts
        .recipients
        .iter()
        .map(|r| qualify(r.trim(), &who.hostname))
        .filter(|r| !r.is_empty())
        .collect();
    recipients.extend(prepared.extracted);
    // The same address on the command line and in a header gets one copy.
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.to_ascii_lowercase()));
    if recipients.is_empty() {
        return Err(fail(
            EX_USAGE,
            "no recipients (give them as arguments, or use -t)",
        ));
    }
    let temp = |e: std::io::Error| fail(EX_TEMPFAIL, format!("cannot queue the message: {e}"));
    let client = format!("sendmail uid {} ({})", who.uid, who.login);
    let mut injection = Injection::open(&socket(), Origin::Sendmail, &client)
        .await
        .map_err(temp)?;
    injection.write(&prepared.head).await.map_err(temp)?;
    while let Some(line) = lines.next_line().map_err(read_error)? {
        match line {
            Line::Whole(mut l) => {
                l.extend_from_slice(b"\r\n");
                injection.write(&l).await.map_err(temp)?;
            }
            Line::Part(p) => injection.write(&p).await.map_err(temp)?,
        }
    }
    match injection.finish(&sender, &recipients).await.map_err(temp)? {
        Status::Ok(id) => Ok(id),
        Status::Temporary(t) => Err(fail(EX_TEMPFAIL, format!("the queue says try later: {t}"))),
        Status::Permanent(t) => Err(fail(
            EX_DATAERR,
            format!("the queue refused the message: {t}"),
        )),
    }
}
