//! The moat-remote process: take the `remote` listener and settings from the setup, then serve
//! `R` requests (one per connection) until SIGTERM or the supervisor's end of the setup channel,
//! letting transactions in flight finish.
//!
//! SECURITY: only `peers_queue` (and our own uid) may ask; anyone else gets `D` without a slot.
//! Every field is checked again (queue id, addresses, the domain, the flags, the origin, the
//! one-click attribute (`OneClick::decode`; with it, exactly one recipient), recipient count,
//! every recipient in that domain); the descriptor must be a regular file.
//! DKIM keys and the routes' password files come as descriptors in the setup (`dkim`, `auth`);
//! a bad one stops the start. At most `max_deliveries` transactions run at once, at most
//! `max_per_destination` to one destination; a request waits for its slots at most one transaction's time (`Timeouts::transaction`), then
//! is deferred. At most `ACCEPTED_PER_TRANSACTION` × `max_deliveries` requests are taken at
//! once; the rest wait in the listen backlog. Idle pooled connections get QUIT on stop.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::one_click::OneClick;
use moat_common::client::queue::Origin;
use moat_common::client::remote::{FLAG_SMTPUTF8, MAX_RECIPIENTS};
use moat_common::conn::{Conn, unix_listener, with_timeout};
use moat_common::daemon::{stop, unix_server};
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;

use super::auth::Table;
use super::client::Connection;
use super::deliver::{Request, deliver};
use super::dkim::Signer;
use super::dns::Dns;
use super::limit::Limits;
use super::pool::Pool;
use super::settings::Settings;
use super::tls::Tls;

/// How long the queue may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests taken at once per transaction allowed: the extra ones wait for a destination's
/// slot without holding a transaction's (a busy destination must not stall the others); each
/// waiting request costs a task and two descriptors.
const ACCEPTED_PER_TRANSACTION: usize = 4;

struct Shared {
    settings: Settings,
    dns: Dns,
    tls: Tls,
    own_uid: u32,
    pool: Pool<Connection>,
    per_destination: Limits,
    transactions: Arc<Semaphore>,
    dkim: Arc<Signer>,
}

pub struct Daemon {
    settings: Settings,
    listener: OwnedFd,
    ca: Option<OwnedFd>,
    dkim: Signer,
    control: StdUnixStream,
}

impl Daemon {
    pub fn from_setup(mut setup: Setup) -> Result<Daemon, String> {
        let mut settings = Settings::from_lookup(&|k| setup.get_opt(k).map(str::to_string))?;
        settings.credentials = Table::from_setup(&mut setup, &settings.routes, settings.tls)?;
        let listener = setup.take_fd("remote").map_err(|e| e.to_string())?;
        let ca = setup.take_fd_opt("tls_ca");
        let dkim = Signer::from_setup(&mut setup)?;
        Ok(Daemon {
            settings,
            listener,
            ca,
            dkim,
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
            "serving: nameserver {}, {} route(s), TLS {} by default, at most {} transactions, \
             {} per destination",
            self.settings.nameserver,
            self.settings.routes.len(),
            self.settings.tls.name(),
            self.settings.max_deliveries,
            self.settings.max_per_destination
        );
        if !self.dkim.is_empty() {
            info!("DKIM: signing as {}", self.dkim.summary());
        }
        if !self.settings.credentials.is_empty() {
            info!("AUTH: route {}", self.settings.credentials.summary());
        }
        let max = self.settings.max_deliveries;
        let per_destination = self.settings.max_per_destination;
        let shared = Arc::new(Shared {
            settings: self.settings,
            dns,
            tls,
            own_uid: rustix::process::geteuid().as_raw(),
            pool: Pool::new(per_destination, max),
            per_destination: Limits::new(per_destination),
            transactions: Arc::new(Semaphore::new(max)),
            dkim: Arc::new(self.dkim),
        });
        let accepted = max.saturating_mul(ACCEPTED_PER_TRANSACTION);
        unix_server::serve(listener, accepted, shutdown, "request(s)", |stream| {
            let shared = Arc::clone(&shared);
            async move { serve_one(stream, &shared).await }
        })
        .await;
        let idle = shared.pool.len();
        if idle > 0 {
            info!("closing {idle} idle connection(s)");
        }
        shared.pool.close_all().await;
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
            Ok(mut req) => match conn.take_fd().map(std::fs::File::from) {
                Some(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
                    let lines = match (&req.one_click, req.recipients.first()) {
                        (Some(oc), Some(rcpt)) => oc.headers(rcpt, b"\r\n").unwrap_or_default(),
                        _ => Vec::new(),
                    };
                    req.prefix = shared
                        .dkim
                        .headers_for(&req.queue_id, req.origin, &req.sender, &lines, &file)
                        .await;
                    req.prefix.extend_from_slice(&lines);
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
    let n = req.recipients.len();
    info!(id = qid; "from=<{}> domain={} nrcpt={n}", req.sender, req.domain);
    let destination = shared.settings.destination(&req.domain);
    if shared.per_destination.busy(&destination) {
        info!(id = qid; "waiting: {} transaction(s) to {destination} already running",
            shared.per_destination.max());
    }
    // The destination's slot first, then one of the total: a request waiting for a busy
    // destination holds nothing the others need.
    let wait = shared.settings.timeouts.transaction();
    let slots = async {
        let slot = shared.per_destination.acquire(&destination).await;
        let permit = Arc::clone(&shared.transactions).acquire_owned().await;
        (slot, permit)
    };
    let Ok((_slot, Ok(_permit))) = tokio::time::timeout(wait, slots).await else {
        let text = format!(
            "4.4.5 too many deliveries to {destination} at once (waited {} s)",
            wait.as_secs()
        );
        warn!(id = qid; "{text}");
        return vec![Status::Temporary(text); n];
    };
    let statuses = deliver(
        &shared.settings,
        &shared.dns,
        &shared.tls,
        &shared.pool,
        req,
        file,
    )
    .await;
    for (rcpt, status) in req.recipients.iter().zip(&statuses) {
        match status {
            Status::Ok(t) => info!(id = qid; "to=<{rcpt}> delivered: {t}"),
            Status::Temporary(t) => info!(id = qid; "to=<{rcpt}> deferred: {t}"),
            Status::Permanent(t) => info!(id = qid; "to=<{rcpt}> failed: {t}"),
        }
    }
    statuses
}

/// An envelope address as it may go into MAIL/RCPT: no controls, spaces or brackets; UTF-8
/// beyond ASCII is allowed (RFC 6531, sent only with SMTPUTF8).
fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= 320
        && a.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '<' && c != '>')
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
    moat_common::client::check_queue_id(&queue_id)?;
    let sender = text(1)?;
    if !sender.is_empty() {
        check_address(&sender)?;
    }
    let domain = text(2)?;
    if !check_domain(&domain) {
        return Err(format!("bad domain {domain:?}"));
    }
    // Flags: "" or SMTPUTF8 (the original MAIL FROM asked for it); nothing else.
    let smtputf8 = match text(3)?.as_str() {
        "" => false,
        FLAG_SMTPUTF8 => true,
        other => return Err(format!("bad flags {other:?}")),
    };
    let origin = text(4)?;
    let origin = Origin::parse(&origin).ok_or_else(|| format!("bad origin {origin:?}"))?;
    let one_click = match text(5)?.as_str() {
        "" => None,
        oc => Some(OneClick::decode(oc)?),
    };
    let first = 6;
    let n = record.fields.len().saturating_sub(first);
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(format!("{n} recipients (1 to {MAX_RECIPIENTS})"));
    }
    if one_click.is_some() && n != 1 {
        return Err(format!(
            "{n} recipients with a one-click attribute (one only)"
        ));
    }
    let mut recipients = Vec::with_capacity(n);
    for i in first..record.fields.len() {
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
        smtputf8,
        origin,
        one_click,
        prefix: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fields: &[&str]) -> Record {
        fields.iter().fold(Record::new(b'R'), |r, f| r.field(f))
    }

    #[test]
    fn requests_are_checked() {
        let ok = request(&[
            "0123456789ABCDEF",
            "a@b.example",
            "c.example",
            "",
            "submission",
            "",
            "x@c.example",
            "Y@C.example",
        ]);
        let ok = parse(&ok).expect("ok");
        assert_eq!((ok.recipients.len(), ok.smtputf8), (2, false));
        assert_eq!(ok.origin, Origin::Submission);
        let utf8 = request(&[
            "Q",
            "ä@b.example",
            "c.example",
            "SMTPUTF8",
            "smtp",
            "",
            "ü@c.example",
        ]);
        assert!(parse(&utf8).expect("utf8").smtputf8);
        let oc = OneClick::for_list("https://l.test", "dev@b.example", &[2; 32])
            .expect("oc")
            .encode();
        let one = request(&["Q", "", "c.example", "", "forward", &oc, "x@c.example"]);
        assert!(parse(&one).expect("one-click").one_click.is_some());
        for bad in [
            request(&["../x", "", "c.example", "", "smtp", "", "x@c.example"]),
            request(&["Q", "", "c.example", ""]),
            request(&["Q", "", "c.example", "", "smtp", "", "x@d.example"]),
            request(&["Q", "", "C.example", "", "smtp", "", "x@c.example"]),
            request(&["Q", "a b@x", "c.example", "", "smtp", "", "x@c.example"]),
            request(&["Q", "", "c.example", "", "smtp", "<x>@c.example"]),
            request(&["Q", "", "c.example", "", "smtp", "", "x\u{85}y@c.example"]),
            request(&["Q", "", "c.example", "smtputf8", "smtp", "", "x@c.example"]),
            request(&["Q", "", "c.example", "x@c.example"]),
            // The origin is required and one of the queue's words.
            request(&["Q", "", "c.example", "", "x@c.example"]),
            request(&["Q", "", "c.example", "", "SMTP", "", "x@c.example"]),
            request(&["Q", "", "c.example", "", "local", "", "x@c.example"]),
            // A one-click attribute: well-formed, and one recipient only.
            request(&[
                "Q",
                "",
                "c.example",
                "",
                "smtp",
                "https://x/ 00 a@b",
                "x@c.example",
            ]),
            request(&[
                "Q",
                "",
                "c.example",
                "",
                "smtp",
                &oc,
                "x@c.example",
                "y@c.example",
            ]),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
