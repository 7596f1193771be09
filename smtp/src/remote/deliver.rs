//! One request: find where the domain's mail goes (`dns`), then try each host and each of its
//! addresses in order (`client`) until one transaction decides the recipients; when none does,
//! every recipient is temporary with the last reason (the queue retries).
//!
//! SECURITY: the message descriptor is only read (from offset 0); nothing here touches the
//! file system. At most `dns::MAX_ADDRESSES` connections are attempted per request.

use std::net::SocketAddr;

use moat_common::config::TlsPolicy;
use moat_common::info;
use moat_common::wire::Status;

use super::client::{self, Job, Outcome};
use super::dns::{Dns, LookupError, MAX_ADDRESSES};
use super::settings::Settings;
use super::tls::Tls;

/// The validated request.
pub struct Request {
    pub queue_id: String,
    pub sender: String,
    pub domain: String,
    pub recipients: Vec<String>,
}

pub async fn deliver(
    settings: &Settings,
    dns: &Dns,
    tls: &Tls,
    req: &Request,
    message: &std::fs::File,
) -> Vec<Status> {
    let n = req.recipients.len();
    let qid = req.queue_id.as_str();
    let route = settings.route(&req.domain);
    let policy = route.and_then(|r| r.tls).unwrap_or(settings.tls);
    let size = message.metadata().map(|m| m.len()).unwrap_or(0);
    let job = Job {
        helo: &settings.hostname,
        sender: &req.sender,
        recipients: &req.recipients,
        message,
        size,
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
            let addr = SocketAddr::new(ip, host.port);
            let t = settings.timeouts;
            let mut outcome = client::attempt(tls, policy, t, &host.name, addr, &job).await;
            if let Outcome::Plaintext(why) = &outcome {
                info!(id = qid; "{}: STARTTLS failed ({why}); trying again without TLS", host.name);
                outcome = client::attempt(tls, TlsPolicy::None, t, &host.name, addr, &job).await;
            }
            match outcome {
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
