//! One request: find where the domain's mail goes (`dns`), then try each host and each of its
//! addresses in order (`client`) until one transaction decides the recipients; when none does,
//! every recipient is temporary with the last reason (the queue retries).
//!
//! SECURITY: the message descriptor is only read (from offset 0); nothing here touches the
//! file system. At most `dns::MAX_ADDRESSES` addresses are attempted per request (a pooled
//! connection that turns out dead adds one new connection to its address, no more).

use std::net::SocketAddr;

use moat_common::client::one_click::OneClick;
use moat_common::client::queue::Origin;
use moat_common::info;
use moat_common::wire::Status;

use super::attempt::{Target, attempt};
use super::client::{Connection, Job, Outcome};
use super::dns::{Dns, LookupError, MAX_ADDRESSES};
use super::mime::{self, Needs};
use super::pool::Pool;
use super::settings::Settings;
use super::tls::Tls;

/// The validated request.
pub struct Request {
    pub queue_id: String,
    pub sender: String,
    pub domain: String,
    pub recipients: Vec<String>,
    /// The original MAIL FROM carried SMTPUTF8 (`mime::Needs`).
    pub smtputf8: bool,
    /// How the message reached the queue: decides DKIM signing (`dkim::signs`).
    pub origin: Origin,
    /// A list post's RFC 8058 attribute (the request then has one recipient).
    pub one_click: Option<OneClick>,
    /// The lines sent in front of the message, filled in after the request is checked: the
    /// DKIM-Signature lines (none: unsigned), then the recipient's one-click fields, which the
    /// signatures cover.
    pub prefix: Vec<u8>,
}

pub async fn deliver(
    settings: &Settings,
    dns: &Dns,
    tls: &Tls,
    pool: &Pool<Connection>,
    req: &Request,
    message: &std::fs::File,
) -> Vec<Status> {
    let n = req.recipients.len();
    let qid = req.queue_id.as_str();
    let route = settings.route(&req.domain);
    let policy = route.and_then(|r| r.tls).unwrap_or(settings.tls);
    let auth = route
        .and_then(|r| settings.credentials.get(r))
        .map(|c| &**c);
    let size = message.metadata().map(|m| m.len()).unwrap_or(0);
    let content = match mime::scan(message).await {
        Ok(c) => c,
        Err(e) => return vec![Status::Temporary(format!("4.3.0 cannot read the message: {e}")); n],
    };
    let job = Job {
        helo: &settings.hostname,
        sender: &req.sender,
        recipients: &req.recipients,
        message,
        prefix: &req.prefix,
        size: size + req.prefix.len() as u64,
        needs: Needs::of(content, req.smtputf8, &req.sender, &req.recipients),
    };
    let hosts = match dns.hosts(&req.domain, route, settings.port).await {
        Ok(h) => h,
        Err(LookupError::Permanent(t)) => return vec![Status::Permanent(t); n],
        Err(LookupError::Temporary(t)) => return vec![Status::Temporary(t); n],
    };
    let mut last = format!("4.4.4 no mail server found for {}", req.domain);
    let mut tried = 0usize;
    let mut permanent_only = true;
    for host in &hosts {
        let addresses = match dns.addresses(&host.name).await {
            Ok(a) => a,
            Err(LookupError::Permanent(t)) => {
                last = t;
                continue;
            }
            Err(LookupError::Temporary(t)) => {
                permanent_only = false;
                last = t;
                continue;
            }
        };
        for ip in addresses {
            if tried >= MAX_ADDRESSES {
                break;
            }
            tried += 1;
            permanent_only = false;
            let target = Target {
                host: &host.name,
                addr: SocketAddr::new(ip, host.port),
                policy,
                auth,
            };
            match attempt(tls, pool, settings.timeouts, &target, &job, qid).await {
                Outcome::Done(statuses) => return statuses,
                Outcome::Next(why) | Outcome::Plaintext(why) => {
                    info!(id = qid; "{}: {why}; trying the next address", req.domain);
                    last = why;
                }
            }
        }
    }
    // Every MX host has no address at all (and the lookups worked): the domain cannot get mail.
    if permanent_only && !hosts.is_empty() {
        return vec![Status::Permanent(last); n];
    }
    vec![Status::Temporary(last); n]
}
