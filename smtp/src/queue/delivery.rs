//! One delivery attempt of one message: every recipient not yet done is handed to moat-local
//! (`L` with a fresh read-only descriptor of `mess/<id>`); those moat-local answers `R` (not a
//! domain we host) are grouped by domain and handed to moat-remote, one request (one SMTP
//! transaction) per domain and at most 100 recipients. Each result is written as a done mark
//! (appended and fsynced) as soon as it arrives, then the message is either finished (bounce for
//! the failed recipients, then removed) or given its next retry time (persisted).
//!
//! Results: `K` → done; `D` → done, bounced; `Z` or no answer → tried again after the retry
//! schedule's delay for this attempt (`schedule.rs`), and once the message is older than the
//! queue lifetime, failed with `4.4.7`. Two deadlines move the next attempt up so they are met on
//! time: the expiry (the message bounces then) and a delay notice still to come
//! (`delay_notice.rs`, sent after the attempt that finds the message old enough).
//!
//! Scale (a list post: up to 100,000 recipients in one envelope): at most `SPAWN_AHEAD` delivery
//! tasks of an attempt exist at once, remote groups are made in one pass (`by_domain`), and each
//! result appends one done line, so an attempt is linear in its recipients.
//!
//! VERP (`verp.rs`): every recipient of such a message gets its own sender, so its remote groups
//! hold one recipient each, moat-local gets that sender too (its Return-Path), and each failed
//! recipient bounces on its own to its VERP address (a `B <id> <index>` line per bounce).
//!
//! One-click (a list post's RFC 8058 attribute, `Envelope::one_click`): passed to moat-local and
//! moat-remote with each delivery, which prepend the recipient's own `List-Unsubscribe` URL;
//! remote groups hold one recipient each, as for VERP.
//!
//! SECURITY: moat-local and moat-remote get a read-only descriptor, never a path. Texts it answers are cleaned
//! before they go into a done mark, a log line or a bounce. A bounce goes only to a non-null
//! sender that is a plausible address; a message whose sender is null is never bounced (no loops).

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;

use moat_common::client::local::Delivery;
use moat_common::client::queue::{Origin, Ret};
use moat_common::client::remote::MAX_RECIPIENTS;
use moat_common::wire::Status;
use moat_common::{error, info, warn};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bounce::{self, Failure, MAX_FULL_COPY, MAX_HEADER_COPY, Report, permanent_text};
use super::delay_notice;
use super::envelope::{Envelope, check_recipient};
use super::state::{Done, Mark, Retry, bounce_line, mark_line};
use super::{Ctx, blocking, now_ms, verp};
use moat_common::date;

/// What an attempt leaves for the scheduler.
#[derive(Debug)]
pub enum Outcome {
    /// Finished and removed; bounces may have been queued under these ids (VERP: several).
    Removed { bounces: Vec<String> },
    /// Try again at this unix time in milliseconds.
    Retry { at: u64 },
}

enum Verdict {
    Done(Mark),
    Deferred(String),
    /// Not a domain we host: for moat-remote.
    Remote,
}

/// Delivery tasks of one attempt alive at once (at least twice `max_deliveries`): enough to keep
/// every permit busy, few enough that a list post's recipients are not all tasks at once.
const SPAWN_AHEAD: usize = 256;

/// The deferral text when no moat-remote is configured.
pub const NO_REMOTE: &str = "remote delivery is not available";

/// Runs one attempt; errors of the queue itself become a retry.
pub async fn attempt(ctx: &Arc<Ctx>, id: &str, permits: Arc<Semaphore>) -> Outcome {
    match try_attempt(ctx, id, permits).await {
        Ok(outcome) => outcome,
        Err(e) => {
            error!(id = id; "cannot process the message: {e}");
            // A fault of the queue itself (disk, a bad file): no eager retries, the fourth step.
            let secs = ctx.settings.retry_schedule.delay_after(4);
            Outcome::Retry {
                at: now_ms() + 1000 * secs,
            }
        }
    }
}

async fn try_attempt(
    ctx: &Arc<Ctx>,
    id: &str,
    permits: Arc<Semaphore>,
) -> std::io::Result<Outcome> {
    let store = Arc::clone(&ctx.store);
    let owned = id.to_string();
    if !store.exists(id) {
        info!(id = id; "no longer queued");
        return Ok(Outcome::Removed {
            bounces: Vec::new(),
        });
    }
    let (env, done, retry) = blocking(move || {
        let env = store.envelope(&owned)?;
        let done = store.done(&owned, env.recipients.len())?;
        let retry = store.retry(&owned)?;
        Ok((env, done, retry))
    })
    .await?;
    let attempts = retry.map_or(0, |r| r.attempts) + 1;
    let env = Arc::new(env);
    let mut marks = done.marks.clone();
    // At most `ahead` tasks exist at once (they wait for the shared permits): a list post's
    // tens of thousands of recipients are not as many tasks in memory.
    let ahead = SPAWN_AHEAD.max(2 * ctx.settings.max_deliveries);
    let pending: Vec<usize> = (0..env.recipients.len())
        .filter(|i| !marks.contains_key(i))
        .collect();
    let mut tasks = JoinSet::new();
    let mut deferred = Vec::new();
    let mut remote: Vec<usize> = Vec::new();
    let mut sort = |joined: Result<(usize, Verdict), tokio::task::JoinError>| match joined {
        Ok((index, Verdict::Done(mark))) => {
            marks.insert(index, mark);
            Ok(())
        }
        Ok((index, Verdict::Deferred(text))) => {
            deferred.push((index, text));
            Ok(())
        }
        Ok((index, Verdict::Remote)) => {
            remote.push(index);
            Ok(())
        }
        Err(e) => Err(std::io::Error::other(format!("delivery task failed: {e}"))),
    };
    for index in pending {
        if tasks.len() >= ahead
            && let Some(joined) = tasks.join_next().await
        {
            sort(joined)?;
        }
        let (ctx, env, permits, id) = (
            Arc::clone(ctx),
            Arc::clone(&env),
            Arc::clone(&permits),
            id.to_string(),
        );
        tasks.spawn(async move {
            let verdict = deliver_one(&ctx, &id, &env, index, attempts, permits).await;
            (index, verdict)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        sort(joined)?;
    }
    if !remote.is_empty() {
        remote.sort_unstable();
        let mut groups = JoinSet::new();
        let mut sort = |joined: Result<Vec<(usize, Verdict)>, tokio::task::JoinError>| {
            let results =
                joined.map_err(|e| std::io::Error::other(format!("delivery task failed: {e}")))?;
            for (index, verdict) in results {
                match verdict {
                    Verdict::Done(mark) => {
                        marks.insert(index, mark);
                    }
                    Verdict::Deferred(text) => deferred.push((index, text)),
                    Verdict::Remote => deferred.push((index, NO_REMOTE.into())),
                }
            }
            Ok::<(), std::io::Error>(())
        };
        for indices in by_domain(&env, &remote) {
            if groups.len() >= ahead
                && let Some(joined) = groups.join_next().await
            {
                sort(joined)?;
            }
            let (ctx, env, permits, id) = (
                Arc::clone(ctx),
                Arc::clone(&env),
                Arc::clone(&permits),
                id.to_string(),
            );
            groups.spawn(async move {
                deliver_remote(&ctx, &id, &env, indices, attempts, permits).await
            });
        }
        while let Some(joined) = groups.join_next().await {
            sort(joined)?;
        }
    }
    let now = date::now();
    let expires = env.arrival.saturating_add(ctx.settings.lifetime_secs);
    if !deferred.is_empty() && now >= expires {
        for (index, text) in deferred.drain(..) {
            let mark = Mark::Failed(format!(
                "4.4.7 delivery time expired after {attempts} attempt(s): {text}"
            ));
            info!(id = id; "to=<{}> expired: {text}", env.recipients[index]);
            write_mark(ctx, id, index, &mark).await?;
            marks.insert(index, mark);
        }
    }
    if let Some((_, last)) = deferred.last() {
        let notice_due =
            delay_notice::handle(ctx, id, &env, done.delay_notice.is_some(), &deferred).await;
        let deadline = notice_due.map_or(expires, |due| due.min(expires));
        // In milliseconds: the persisted time (seconds) is rounded up, never earlier.
        let delay = ctx
            .settings
            .retry_schedule
            .delay_after(attempts)
            .saturating_mul(1000);
        let at = now_ms()
            .saturating_add(delay)
            .min(deadline.saturating_mul(1000).max(now_ms() + 1000));
        let record = Retry {
            attempts,
            next_try: at.div_ceil(1000),
            last_error: last.clone(),
        };
        let store = Arc::clone(&ctx.store);
        let owned = id.to_string();
        blocking(move || store.set_retry(&owned, &record)).await?;
        return Ok(Outcome::Retry { at });
    }
    let done = Done { marks, ..done };
    finish(ctx, id, &env, &done).await
}

async fn write_mark(ctx: &Arc<Ctx>, id: &str, index: usize, mark: &Mark) -> std::io::Result<()> {
    let store = Arc::clone(&ctx.store);
    let (owned, line) = (id.to_string(), mark_line(index, mark));
    blocking(move || store.append_done(&owned, &line)).await
}

async fn deliver_one(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Envelope,
    index: usize,
    attempt: u32,
    permits: Arc<Semaphore>,
) -> Verdict {
    let rcpt = &env.recipients[index];
    let Ok(_permit) = permits.acquire_owned().await else {
        return Verdict::Deferred("the queue is stopping".into());
    };
    let answer = match ctx.store.open_message(id) {
        Ok(file) => {
            let sender = verp::sender_for(env, rcpt);
            ctx.local
                .deliver_with(id, &sender, rcpt, env.one_click.as_ref(), file.as_fd())
                .await
        }
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot open the message: {e}"),
        )),
    };
    let verdict = match answer {
        Ok(Delivery::Remote) => return Verdict::Remote,
        Ok(Delivery::Status(status)) => settle(id, rcpt, attempt, status),
        Err(e) => {
            warn!(id = id; "to=<{rcpt}> deferred (attempt {attempt}): moat-local: {e}");
            Verdict::Deferred(format!("moat-local did not answer: {e}"))
        }
    };
    mark_done(ctx, id, index, rcpt, verdict).await
}

/// Groups remote recipients (indices into the envelope) by domain, at most `MAX_RECIPIENTS` per
/// group, in envelope order; one per group for VERP (one SMTP transaction has one sender) and
/// for one-click headers (they differ per recipient).
fn by_domain(env: &Envelope, indices: &[usize]) -> Vec<Vec<usize>> {
    if env.verp || env.one_click.is_some() {
        return indices.iter().map(|&i| vec![i]).collect();
    }
    // Each domain's group still filling, by domain: one look-up per recipient, so a list post
    // to members at thousands of domains is grouped in linear time.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for &i in indices {
        let domain = domain_of(&env.recipients[i]);
        match open.get(&domain) {
            Some(&g) if groups[g].len() < MAX_RECIPIENTS => groups[g].push(i),
            _ => {
                open.insert(domain, groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// The domain of an address, lower-cased (envelope addresses were checked at injection).
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// One moat-remote request for recipients of one domain; a verdict per recipient.
async fn deliver_remote(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Envelope,
    indices: Vec<usize>,
    attempt: u32,
    permits: Arc<Semaphore>,
) -> Vec<(usize, Verdict)> {
    let rcpts: Vec<String> = indices.iter().map(|i| env.recipients[*i].clone()).collect();
    let domain = rcpts.first().map(|r| domain_of(r)).unwrap_or_default();
    // A VERP group holds one recipient (`by_domain`): its sender is that recipient's.
    let sender = verp::sender_for(env, rcpts.first().map_or("", String::as_str));
    let Some(remote) = &ctx.remote else {
        for r in &rcpts {
            info!(id = id; "to=<{r}> deferred (attempt {attempt}): {NO_REMOTE}");
        }
        return indices
            .into_iter()
            .map(|i| (i, Verdict::Deferred(NO_REMOTE.into())))
            .collect();
    };
    let answers = match permits.acquire_owned().await {
        Err(_) => Err(std::io::Error::other("the queue is stopping")),
        Ok(_permit) => match ctx.store.open_message(id) {
            Ok(file) => {
                remote
                    .deliver(
                        id,
                        &sender,
                        &domain,
                        env.smtputf8,
                        env.origin,
                        env.one_click.as_ref(),
                        &rcpts,
                        file.as_fd(),
                    )
                    .await
            }
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("cannot open the message: {e}"),
            )),
        },
    };
    let mut out = Vec::with_capacity(indices.len());
    match answers {
        Ok(statuses) => {
            for ((index, rcpt), status) in indices.into_iter().zip(&rcpts).zip(statuses) {
                let verdict = settle(id, rcpt, attempt, status);
                out.push((index, mark_done(ctx, id, index, rcpt, verdict).await));
            }
        }
        Err(e) => {
            for (index, rcpt) in indices.into_iter().zip(&rcpts) {
                warn!(id = id; "to=<{rcpt}> deferred (attempt {attempt}): moat-remote: {e}");
                out.push((
                    index,
                    Verdict::Deferred(format!("moat-remote did not answer: {e}")),
                ));
            }
        }
    }
    out
}

/// Turns one answer into a verdict, logging it.
fn settle(id: &str, rcpt: &str, attempt: u32, status: Status) -> Verdict {
    match status {
        Status::Ok(text) => {
            info!(id = id; "to=<{rcpt}> delivered: {text}");
            Verdict::Done(Mark::Delivered(text))
        }
        Status::Permanent(text) => {
            info!(id = id; "to=<{rcpt}> failed: {text}");
            Verdict::Done(Mark::Failed(permanent_text(&text)))
        }
        Status::Temporary(text) => {
            info!(id = id; "to=<{rcpt}> deferred (attempt {attempt}): {text}");
            Verdict::Deferred(text)
        }
    }
}

/// Writes the done mark of a finished recipient; a mark that cannot be written defers it.
async fn mark_done(
    ctx: &Arc<Ctx>,
    id: &str,
    index: usize,
    rcpt: &str,
    verdict: Verdict,
) -> Verdict {
    if let Verdict::Done(mark) = &verdict
        && let Err(e) = write_mark(ctx, id, index, mark).await
    {
        // Delivered but not marked: it will be delivered again (at least once).
        error!(id = id; "to=<{rcpt}> cannot write the done mark: {e}");
        return Verdict::Deferred(format!("cannot write the done mark: {e}"));
    }
    verdict
}

/// Every recipient is done: bounce the failed ones, then remove the message.
async fn finish(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Arc<Envelope>,
    done: &Done,
) -> std::io::Result<Outcome> {
    let failures: Vec<(usize, Failure)> = done
        .marks
        .iter()
        .filter_map(|(i, mark)| match mark {
            Mark::Failed(text) => Some((
                *i,
                Failure {
                    recipient: env.recipients.get(*i)?.clone(),
                    text: text.clone(),
                    orcpt: env.dsn.recipient(*i).orcpt,
                },
            )),
            Mark::Delivered(_) => None,
        })
        .collect();
    // RFC 3461 4.1: NOTIFY=NEVER, or a NOTIFY without FAILURE, asks for no failure report.
    let (failures, silent): (Vec<_>, Vec<_>) = failures
        .into_iter()
        .partition(|(i, _)| env.dsn.recipient(*i).wants_failure());
    if !silent.is_empty() {
        info!(id = id; "{} failed recipient(s) asked for no failure notice (NOTIFY)", silent.len());
    }
    let mut bounces = Vec::new();
    if !failures.is_empty() {
        if env.sender.is_empty() {
            info!(id = id; "{} recipient(s) failed; no bounce to the null sender", failures.len());
        } else if done.bounce.is_some() {
            info!(id = id; "bounce already queued");
        } else {
            for group in bounce_groups(env, done, failures) {
                if let Err(e) = check_recipient(&group.to) {
                    warn!(id = id; "cannot bounce to <{}>: {e}; dropped", group.to);
                    continue;
                }
                bounces.push(queue_bounce(ctx, id, env, group).await?);
            }
        }
    }
    let store = Arc::clone(&ctx.store);
    let owned = id.to_string();
    blocking(move || store.remove(&owned)).await?;
    info!(id = id; "removed");
    Ok(Outcome::Removed { bounces })
}

/// One bounce to queue: where it goes, for which recipients, and (VERP) the one recipient's
/// index its `B` line names.
struct BounceGroup {
    to: String,
    index: Option<usize>,
    failures: Vec<Failure>,
}

/// The bounces for `failures` (index, failure): one to the sender for them all, or for a VERP
/// message one per recipient to its VERP address, leaving out those already queued (`done`).
fn bounce_groups(env: &Envelope, done: &Done, failures: Vec<(usize, Failure)>) -> Vec<BounceGroup> {
    if !env.verp {
        return vec![BounceGroup {
            to: env.sender.clone(),
            index: None,
            failures: failures.into_iter().map(|(_, f)| f).collect(),
        }];
    }
    failures
        .into_iter()
        .filter(|(i, _)| !done.bounced.contains(i))
        .map(|(i, f)| BounceGroup {
            to: verp::sender_for(env, &f.recipient).into_owned(),
            index: Some(i),
            failures: vec![f],
        })
        .collect()
}

async fn queue_bounce(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Arc<Envelope>,
    group: BounceGroup,
) -> std::io::Result<String> {
    let (ctx2, env2, owned) = (Arc::clone(ctx), Arc::clone(env), id.to_string());
    let BounceGroup {
        to,
        index,
        failures,
    } = group;
    let to2 = to.clone();
    let count = failures.len();
    let (bid, size) = blocking(move || {
        let s = &ctx2.settings;
        let headers = ctx2
            .store
            .message_header(&owned, MAX_HEADER_COPY)
            .unwrap_or_default();
        // RET=FULL: the whole message, unless it is too big (then the header, as Postfix does).
        let full = match env2.dsn.ret {
            Some(Ret::Full) if env2.size <= MAX_FULL_COPY as u64 => ctx2
                .store
                .message_full(&owned, MAX_FULL_COPY)
                .ok()
                .flatten(),
            _ => None,
        };
        let now = date::now();
        let message = bounce::compose(&Report {
            kind: bounce::Kind::Failed,
            hostname: &s.hostname,
            from: &s.bounce_from,
            original_id: &owned,
            original_sender: &to2,
            arrival: env2.arrival,
            now,
            failures: &failures,
            headers: &headers,
            full: full.as_deref(),
            envid: env2.dsn.envid.as_deref(),
            token: rand::random(),
        });
        let mut draft = ctx2.store.create(now)?;
        draft.write(&message)?;
        let mut bounce_env = Envelope {
            arrival: now,
            origin: Origin::Bounce,
            uid: ctx2.own_uid,
            size: 0,
            client: format!("bounce of {owned}"),
            sender: String::new(),
            recipients: vec![to2],
            dsn: Default::default(),
            smtputf8: false,
            verp: false,
            one_click: None,
        };
        let bid = draft.commit(&mut bounce_env)?;
        // Recorded so a crash before the removal does not bounce twice.
        ctx2.store.append_done(&owned, &bounce_line(&bid, index))?;
        Ok((bid, bounce_env.size))
    })
    .await?;
    info!(id = &bid; "from=<> size={size} nrcpt=1 origin=bounce client=bounce of {id}");
    info!(id = id; "bounce {bid} queued to <{to}> for {count} recipient(s)");
    Ok(bid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::client::queue::Origin;

    fn envelope(recipients: Vec<String>, verp: bool) -> Envelope {
        Envelope {
            arrival: 1,
            origin: Origin::Forward,
            uid: 1,
            size: 1,
            client: String::new(),
            sender: "list-return-1@lists.test".into(),
            recipients,
            dsn: Default::default(),
            smtputf8: false,
            verp,
            one_click: None,
        }
    }

    #[test]
    fn remote_groups_per_domain_in_order_bounded_and_linear() {
        // 20,000 recipients at 5,000 domains (4 each) and 300 at one domain.
        let mut rcpts: Vec<String> = (0..20_000)
            .map(|i| format!("m{i}@d{}.test", i % 5000))
            .collect();
        rcpts.extend((0..300).map(|i| format!("m{i}@BIG.test")));
        let all: Vec<usize> = (0..rcpts.len()).collect();
        let env = envelope(rcpts, false);
        let started = std::time::Instant::now();
        let groups = by_domain(&env, &all);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(groups.len(), 5000 + 3);
        assert!(groups.iter().all(|g| g.len() <= MAX_RECIPIENTS));
        for g in &groups {
            let domain = domain_of(&env.recipients[g[0]]);
            assert!(g.iter().all(|i| domain_of(&env.recipients[*i]) == domain));
            assert!(g.windows(2).all(|w| w[0] < w[1]), "envelope order");
        }
        let mut seen: Vec<usize> = groups.concat();
        seen.sort_unstable();
        assert_eq!(seen, all, "every recipient once");
        let big: Vec<usize> = groups
            .iter()
            .filter(|g| domain_of(&env.recipients[g[0]]) == "big.test")
            .map(Vec::len)
            .collect();
        assert_eq!(big, vec![100, 100, 100]);
        // VERP: one sender per transaction, so one recipient per group.
        let verp = envelope(env.recipients.clone(), true);
        assert!(by_domain(&verp, &all).iter().all(|g| g.len() == 1));
    }
}
