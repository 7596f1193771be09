//! The moat-remote process: take the `remote` listener and settings from the setup, then serve
//! `R` requests (one per connection) until SIGTERM or the supervisor's end of the setup channel,
//! letting transactions in flight finish.
//!
//! SECURITY: only `peers_queue` (and our own uid) may ask; anyone else gets `D` without a slot.
//! Every field is checked again (queue id, addresses, the domain, recipient count, every
//! recipient in that domain); the descriptor must be a regular file. At most `max_deliveries`
//! transactions run at once; the rest wait in the listen backlog.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::remote::MAX_RECIPIENTS;
use moat_common::conn::{Conn, unix_listener, with_timeout};
use moat_common::daemon::{stop, unix_server};
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::net::UnixStream;

use super::deliver::{Request, deliver};
use super::dns::Dns;
use super::settings::Settings;
use super::tls::Tls;

/// How long the queue may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    settings: Settings,
    dns: Dns,
    tls: Tls,
    own_uid: u32,
}

pub struct Daemon {
    settings: Settings,
    listener: OwnedFd,
    ca: Option<OwnedFd>,
    control: StdUnixStream,
}

impl Daemon {
    pub fn from_setup(mut setup: Setup) -> Result<Daemon, String> {
        let settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
        let listener = setup.take_fd("remote").map_err(|e| e.to_string())?;
        let ca = setup.take_fd_opt("tls_ca");
        Ok(Daemon {
            settings,
            listener,
            ca,
            control: setup.control,
        })
    }

    /// Serves until SIGTERM or the end of the control channel. Call inside a tokio runtime.
    pub async fn serve(self) -> Result<(), String> {
        let listener = unix_listener(self.listener).map_err(|e| e.to_string())?;
        let tls = Tls::new(self.ca)?;
        let dns = Dns::new(self.settings.nameserver)?;
        let shutdown = stop::shutdown(self.control).map_err(|e| e.to_string())?;
        info!(
            "serving: nameserver {}, {} route(s), TLS {} by default, at most {} transactions",
            self.settings.nameserver,
            self.settings.routes.len(),
            self.settings.tls.name(),
            self.settings.max_deliveries
        );
        let max = self.settings.max_deliveries;
        let shared = Arc::new(Shared {
            settings: self.settings,
            dns,
            tls,
            own_uid: rustix::process::geteuid().as_raw(),
        });
        unix_server::serve(listener, max, shutdown, "transaction(s)", |stream| {
            let shared = Arc::clone(&shared);
            async move { serve_one(stream, &shared).await }
        })
        .await;
        Ok(())
    }
}

async fn serve_one(stream: UnixStream, shared: &Shared) {
    let mut conn = Conn::new(stream);
    let Some((peer, record)) = unix_server::read_request(&mut conn, REQUEST_TIMEOUT).await else {
        return;
    };
    let allowed = peer.uid == shared.own_uid || shared.settings.peers_queue.contains(&peer.uid);
    let refuse = |text: String| vec![Status::Permanent(text).to_record()];
    let replies = if !allowed {
        warn!("permission denied: uid {} pid {}", peer.uid, peer.pid);
        refuse("permission denied".into())
    } else if record.kind != b'R' {
        refuse("unknown request".into())
    } else {
        match parse(&record) {
            Err(e) => {
                warn!("bad delivery request from uid {}: {e}", peer.uid);
                refuse(format!("bad request: {e}"))
            }
            Ok(req) => match conn.take_fd().map(std::fs::File::from) {
                Some(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
                    let statuses = run(shared, &req, &file).await;
                    let count = statuses.len();
                    let mut out: Vec<Record> = statuses.iter().map(Status::to_record).collect();
                    out.push(Record::new(b'E').field(count.to_string()));
                    out
                }
                _ => refuse("no message descriptor attached".into()),
            },
        }
    };
    for reply in replies {
        if let Err(e) = with_timeout(REQUEST_TIMEOUT, conn.send(&reply)).await {
            warn!("cannot answer uid {}: {e}", peer.uid);
            return;
        }
    }
}

async fn run(shared: &Shared, req: &Request, file: &std::fs::File) -> Vec<Status> {
    let qid = req.queue_id.as_str();
    info!(id = qid; "from=<{}> domain={} nrcpt={}", req.sender, req.domain, req.recipients.len());
    let statuses = deliver(&shared.settings, &shared.dns, &shared.tls, req, file).await;
    for (rcpt, status) in req.recipients.iter().zip(&statuses) {
        match status {
            Status::Ok(t) => info!(id = qid; "to=<{rcpt}> delivered: {t}"),
            Status::Temporary(t) => info!(id = qid; "to=<{rcpt}> deferred: {t}"),
            Status::Permanent(t) => info!(id = qid; "to=<{rcpt}> failed: {t}"),
        }
    }
    statuses
}

/// An envelope address as it may go into MAIL/RCPT: printable ASCII, no brackets or spaces.
fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= 320
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        && a.rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!("bad address {a:?}"))
    }
}

fn check_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn parse(record: &Record) -> Result<Request, String> {
    let text = |i: usize| {
        record
            .text(i)
            .map(str::to_string)
            .map_err(|e| e.to_string())
    };
    let queue_id = text(0)?;
    if queue_id.is_empty()
        || queue_id.len() > 64
        || !queue_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err("bad queue id".into());
    }
    let sender = text(1)?;
    if !sender.is_empty() {
        check_address(&sender)?;
    }
    let domain = text(2)?;
    if !check_domain(&domain) {
        return Err(format!("bad domain {domain:?}"));
    }
    let n = record.fields.len().saturating_sub(3);
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(format!("{n} recipients (1 to {MAX_RECIPIENTS})"));
    }
    let mut recipients = Vec::with_capacity(n);
    for i in 3..record.fields.len() {
        let r = text(i)?;
        check_address(&r)?;
        let in_domain = r
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain));
        if !in_domain {
            return Err(format!("{r:?} is not in {domain}"));
        }
        recipients.push(r);
    }
    Ok(Request {
        queue_id,
        sender,
        domain,
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        let ok = Record::new(b'R')
            .field("0123456789ABCDEF")
            .field("a@b.example")
            .field("c.example")
            .field("x@c.example")
            .field("Y@C.example");
        assert_eq!(parse(&ok).expect("ok").recipients.len(), 2);
        for bad in [
            Record::new(b'R')
                .field("../x")
                .field("")
                .field("c.example")
                .field("x@c.example"),
            Record::new(b'R').field("Q").field("").field("c.example"),
            Record::new(b'R')
                .field("Q")
                .field("")
                .field("c.example")
                .field("x@d.example"),
            Record::new(b'R')
                .field("Q")
                .field("")
                .field("C.example")
                .field("x@c.example"),
            Record::new(b'R')
                .field("Q")
                .field("a b@x")
                .field("c.example")
                .field("x@c.example"),
            Record::new(b'R')
                .field("Q")
                .field("")
                .field("c.example")
                .field("<x>@c.example"),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
