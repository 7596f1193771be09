//! One attempt at one address: an idle pooled connection to it when there is one, else a new
//! one (under `may`, once more in plaintext when the STARTTLS handshake fails; logged in when
//! the route has credentials); afterwards the connection goes back into the pool when its
//! transaction ended cleanly, keyed by the credentials too.
//!
//! A pooled connection may have been closed by the server while it waited. If it fails before
//! MAIL is accepted (`Outcome::Next`: RSET or MAIL refused or unanswered), nothing was decided
//! and the same address is tried at once on a new connection; that retry is part of this
//! attempt, not a failed attempt of its own.

use std::net::SocketAddr;

use moat_common::config::TlsPolicy;
use moat_common::info;

use super::auth::Credentials;
use super::client::{self, Connection, Job, Outcome};
use super::pool::{Key, MAX_AGE, Pool};
use super::settings::Timeouts;
use super::tls::Tls;

/// Where one attempt goes.
pub struct Target<'a> {
    /// The host name (TLS checks and texts).
    pub host: &'a str,
    pub addr: SocketAddr,
    pub policy: TlsPolicy,
    /// The route's credentials, when it has some: AUTH after EHLO (and STARTTLS).
    pub auth: Option<&'a Credentials>,
}

/// Runs one transaction at `target`; `Outcome::Next` when nothing was decided there (the caller
/// moves on to the next address), never `Outcome::Plaintext` (handled here).
pub async fn attempt(
    tls: &Tls,
    pool: &Pool<Connection>,
    t: Timeouts,
    target: &Target<'_>,
    job: &Job<'_>,
    queue_id: &str,
) -> Outcome {
    let key = Key {
        addr: target.addr,
        host: target.host.to_string(),
        policy: target.policy,
        helo: job.helo.to_string(),
        auth: target.auth.map(Credentials::identity),
    };
    if let Some(conn) = pool.take(&key) {
        let peer = conn.peer().to_string();
        info!(id = queue_id; "{peer}: reusing an idle connection");
        match keep(pool, &key, client::send(conn, job).await) {
            Outcome::Next(why) => {
                info!(id = queue_id; "{peer}: the reused connection failed ({why}); connecting again");
            }
            decided => return decided,
        }
    }
    let open = |policy| {
        client::open(
            tls,
            policy,
            t,
            target.host,
            target.addr,
            job.helo,
            target.auth,
        )
    };
    let opened = match open(target.policy).await {
        Err(Outcome::Plaintext(why)) => {
            info!(id = queue_id; "{}: STARTTLS failed ({why}); trying again without TLS", target.host);
            // Credentials still go only where `auth::sasl::may_send` allows: the route's own
            // policy decides that, not this fallback's.
            open(TlsPolicy::None).await
        }
        other => other,
    };
    match opened {
        Ok(conn) => {
            if let Some(creds) = target.auth {
                info!(id = queue_id; "{}: authenticated as {}", conn.peer(), creds.user);
            }
            keep(pool, &key, client::send(conn, job).await)
        }
        Err(outcome) => outcome,
    }
}

/// Pools the connection a transaction handed back (unless it is too old: then QUIT).
fn keep(
    pool: &Pool<Connection>,
    key: &Key,
    (outcome, conn): (Outcome, Option<Connection>),
) -> Outcome {
    if let Some(conn) = conn {
        if conn.age() < MAX_AGE {
            pool.put(key.clone(), conn);
        } else {
            tokio::spawn(conn.quit());
        }
    }
    outcome
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
