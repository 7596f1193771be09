//! The delay notice: once a message has waited `delay_warning_secs` with recipients still
//! undelivered, its sender gets one RFC 3464 report with `Action: delayed` for them (the last
//! temporary reason as a 4.x.x status, `Will-Retry-Until` the end of the queue lifetime, the
//! original header only). It is injected into the queue like a bounce.
//!
//! Once per message, even across crashes: the decision is a `W` line in `done/<id>` (appended and
//! fsynced, `state.rs`), written *before* the notice is committed. A crash between the two loses
//! the notice instead of sending it twice: a delay notice is advice, and a duplicate is what
//! users complain about (a bounce is the other way round, see `delivery.rs`).
//!
//! VERP (`verp.rs`): each waiting recipient's notice goes to its own VERP address, one notice
//! per recipient; the one `W` line (naming the first) still makes it once per message.
//!
//! Who gets none (RFC 3461 4.1): the null sender (no reports about reports), and recipients whose
//! NOTIFY was given without DELAY (NEVER included); no NOTIFY means FAILURE,DELAY. When nobody is
//! left, `W -` records that, so the question is settled once too.
//!
//! On time: while a notice is still to come, `delivery` moves the next attempt up to its due
//! time (as it does for the expiry), so a 4 h warning goes out at 4 h, not at the next step of a
//! schedule that is by then 4 h apart.
//!
//! SECURITY: the notice goes only to a sender that passes `check_recipient`; recipient texts come
//! from moat-local and moat-remote and are cleaned by `bounce::compose`.

use std::sync::Arc;

use moat_common::client::queue::Origin;
use moat_common::{date, error, info, warn};

use super::bounce::{self, Failure, Kind, MAX_HEADER_COPY, Report};
use super::envelope::{Envelope, check_recipient};
use super::scheduler::Command;
use super::state::{DelayNotice, delay_notice_line};
use super::{Ctx, blocking, verp};

/// What to do about the delay notice after an attempt that left recipients deferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing, now or later: notices are off, or this message's was already decided.
    Never,
    /// A notice will be due at this unix time (seconds).
    Later(u64),
    /// Due now, for these recipients (indices into the envelope).
    Send(Vec<usize>),
    /// Due now, but nobody may get it (the reason, for the log): record that, send nothing.
    Skip(&'static str),
}

/// The decision for `env`, whose recipients `deferred` are still waiting at unix time `now`;
/// `decided` is whether `done/<id>` already has a `W` line; `warning` is `delay_warning_secs`.
pub fn decide(
    env: &Envelope,
    decided: bool,
    deferred: &[usize],
    now: u64,
    warning: Option<u64>,
) -> Decision {
    let Some(after) = warning else {
        return Decision::Never;
    };
    if decided || deferred.is_empty() {
        return Decision::Never;
    }
    let wanted: Vec<usize> = deferred
        .iter()
        .copied()
        .filter(|i| env.dsn.recipient(*i).wants_delay())
        .collect();
    let nobody = if env.sender.is_empty() {
        Some("the sender is null")
    } else if check_recipient(&env.sender).is_err() {
        Some("the sender is not a deliverable address")
    } else if wanted.is_empty() {
        Some("no waiting recipient asked for one (NOTIFY)")
    } else {
        None
    };
    let due = env.arrival.saturating_add(after);
    match (now >= due, nobody) {
        (false, None) => Decision::Later(due),
        // Nothing will be sent: no reason to move an attempt up for it.
        (false, Some(_)) => Decision::Never,
        (true, Some(why)) => Decision::Skip(why),
        (true, None) => Decision::Send(wanted),
    }
}

/// Acts on the decision after an attempt of message `id`; `deferred` are the recipients still
/// waiting with their last temporary reason. Returns the unix time the next attempt must not be
/// later than (the notice's due time), if any. Failures are logged: a notice that could not be
/// queued before its `W` line was written is tried again at the next attempt.
pub async fn handle(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Arc<Envelope>,
    decided: bool,
    deferred: &[(usize, String)],
) -> Option<u64> {
    let indices: Vec<usize> = deferred.iter().map(|(i, _)| *i).collect();
    let decision = decide(
        env,
        decided,
        &indices,
        date::now(),
        ctx.settings.delay_warning_secs,
    );
    match decision {
        Decision::Never => None,
        Decision::Later(due) => Some(due),
        Decision::Skip(why) => {
            let store = Arc::clone(&ctx.store);
            let (owned, line) = (id.to_string(), delay_notice_line(&DelayNotice::NotSent));
            match blocking(move || store.append_done(&owned, &line)).await {
                Ok(()) => info!(id = id; "no delay notice: {why}"),
                Err(e) => warn!(id = id; "cannot record that no delay notice is due: {e}"),
            }
            None
        }
        Decision::Send(indices) => {
            // By index once, not a scan per recipient: a list post may wait for thousands.
            let texts: std::collections::HashMap<usize, &String> =
                deferred.iter().map(|(i, t)| (*i, t)).collect();
            let delayed: Vec<Failure> = indices
                .iter()
                .filter_map(|i| {
                    let text = texts.get(i)?;
                    Some(Failure {
                        recipient: env.recipients.get(*i)?.clone(),
                        text: text.to_string(),
                        orcpt: env.dsn.recipient(*i).orcpt,
                    })
                })
                .collect();
            queue_notices(ctx, id, env, notice_groups(env, delayed)).await;
            None
        }
    }
}

/// Who gets which delayed recipients: the sender all of them, or for a VERP message each
/// recipient's VERP address its own (the list manager learns who is slow, as with bounces).
fn notice_groups(env: &Envelope, delayed: Vec<Failure>) -> Vec<(String, Vec<Failure>)> {
    if !env.verp {
        return vec![(env.sender.clone(), delayed)];
    }
    delayed
        .into_iter()
        .map(|f| (verp::sender_for(env, &f.recipient).into_owned(), vec![f]))
        .collect()
}

/// How one notice ended once the `W` line was written (errors before it are the `Err` of
/// `blocking`: nothing was sent, the next attempt tries again).
struct Queued {
    nid: String,
    to: String,
    count: usize,
    /// The committed size, or why the commit failed (that notice is lost).
    committed: std::io::Result<u64>,
}

async fn queue_notices(
    ctx: &Arc<Ctx>,
    id: &str,
    env: &Arc<Envelope>,
    groups: Vec<(String, Vec<Failure>)>,
) {
    let (ctx2, env2, owned) = (Arc::clone(ctx), Arc::clone(env), id.to_string());
    let queued = blocking(move || {
        let s = &ctx2.settings;
        let headers = ctx2
            .store
            .message_header(&owned, MAX_HEADER_COPY)
            .unwrap_or_default();
        let now = date::now();
        let mut out = Vec::with_capacity(groups.len());
        // One notice at a time (written, then committed): a VERP post waiting for thousands of
        // recipients makes as many notices, and never holds more than one file open.
        for (n, (to, delayed)) in groups.into_iter().enumerate() {
            let message = bounce::compose(&Report {
                kind: Kind::Delayed {
                    retry_until: env2.arrival.saturating_add(s.lifetime_secs),
                },
                hostname: &s.hostname,
                from: &s.bounce_from,
                original_id: &owned,
                original_sender: &to,
                arrival: env2.arrival,
                now,
                failures: &delayed,
                headers: &headers,
                full: None,
                envid: env2.dsn.envid.as_deref(),
                token: rand::random(),
            });
            let count = delayed.len();
            let written = ctx2
                .store
                .create(now)
                .and_then(|mut d| d.write(&message).map(|()| d));
            let draft = match written {
                Ok(d) => d,
                // Nothing recorded yet: the next attempt tries again.
                Err(e) if n == 0 => return Err(e),
                Err(e) => {
                    out.push(Queued {
                        nid: "(none)".into(),
                        to,
                        count,
                        committed: Err(e),
                    });
                    continue;
                }
            };
            let nid = draft.id().to_string();
            if n == 0 {
                // Before any commit: a crash in between loses notices instead of sending them
                // twice. One line for the message, naming the first notice (VERP may send
                // several).
                ctx2.store.append_done(
                    &owned,
                    &delay_notice_line(&DelayNotice::Queued(nid.clone())),
                )?;
            }
            let mut notice_env = Envelope {
                arrival: now,
                origin: Origin::Bounce,
                uid: ctx2.own_uid,
                size: 0,
                client: format!("delay notice of {owned}"),
                sender: String::new(),
                recipients: vec![to.clone()],
                dsn: Default::default(),
                smtputf8: false,
                verp: false,
                one_click: None,
            };
            let committed = draft.commit(&mut notice_env).map(|_| notice_env.size);
            out.push(Queued {
                nid,
                to,
                count,
                committed,
            });
        }
        Ok(out)
    })
    .await;
    let queued = match queued {
        Ok(queued) => queued,
        Err(e) => {
            warn!(id = id; "cannot queue the delay notice ({e}): trying at the next attempt");
            return;
        }
    };
    for Queued {
        nid,
        to,
        count,
        committed,
    } in queued
    {
        match committed {
            Ok(size) => {
                info!(id = &nid; "from=<> size={size} nrcpt=1 origin=bounce client=delay notice of {id}");
                info!(id = id; "delay notice {nid} queued to <{to}> for {count} recipient(s)");
                // If the scheduler is gone (stopping), the next start picks it up from disk.
                let _ = ctx.scheduler.send(Command::New(nid));
            }
            Err(e) => {
                error!(id = id; "delay notice {nid} to <{to}> not queued ({e}): it is lost");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::client::queue::{Dsn, Notify, RcptDsn};

    const ARRIVAL: u64 = 1_700_000_000;
    const FOUR_HOURS: Option<u64> = Some(4 * 3600);

    fn env(sender: &str, notify: &[Option<Notify>]) -> Envelope {
        Envelope {
            arrival: ARRIVAL,
            origin: Origin::Submission,
            uid: 1,
            size: 10,
            client: "test".into(),
            sender: sender.into(),
            recipients: (0..notify.len())
                .map(|i| format!("r{i}@far.example"))
                .collect(),
            dsn: Dsn {
                recipients: notify
                    .iter()
                    .map(|n| RcptDsn {
                        notify: *n,
                        orcpt: None,
                    })
                    .collect(),
                ..Dsn::default()
            },
            smtputf8: false,
            verp: false,
            one_click: None,
        }
    }

    const DELAY: Option<Notify> = Some(Notify {
        success: false,
        failure: false,
        delay: true,
    });
    const FAILURE: Option<Notify> = Some(Notify {
        success: false,
        failure: true,
        delay: false,
    });

    #[test]
    fn due_after_the_warning_time_for_those_who_want_it() {
        let e = env("alice@example.test", &[None, DELAY, FAILURE]);
        let due = ARRIVAL + 4 * 3600;
        assert_eq!(
            decide(&e, false, &[0, 1, 2], due - 1, FOUR_HOURS),
            Decision::Later(due)
        );
        assert_eq!(
            decide(&e, false, &[0, 1, 2], due, FOUR_HOURS),
            Decision::Send(vec![0, 1]),
            "no NOTIFY means DELAY too; NOTIFY=FAILURE does not"
        );
        assert_eq!(
            decide(&e, false, &[2, 1], due + 9, FOUR_HOURS),
            Decision::Send(vec![1])
        );
    }

    #[test]
    fn once_per_message_and_never_when_off_or_finished() {
        let e = env("alice@example.test", &[None]);
        let late = ARRIVAL + 10 * 3600;
        assert_eq!(decide(&e, true, &[0], late, FOUR_HOURS), Decision::Never);
        assert_eq!(decide(&e, false, &[0], late, None), Decision::Never);
        assert_eq!(decide(&e, false, &[], late, FOUR_HOURS), Decision::Never);
    }

    #[test]
    fn verp_notices_go_per_recipient_to_its_verp_address() {
        let failure = |r: &str| Failure {
            recipient: r.into(),
            text: "4.2.0 later".into(),
            orcpt: None,
        };
        let delayed = vec![failure("r0@far.example"), failure("r1@far.example")];
        let mut e = env("list@lists.example", &[None, None]);
        let plain = notice_groups(&e, delayed.clone());
        assert_eq!(plain, vec![("list@lists.example".into(), delayed.clone())]);
        e.verp = true;
        let to: Vec<(String, usize)> = notice_groups(&e, delayed)
            .into_iter()
            .map(|(to, f)| (to, f.len()))
            .collect();
        assert_eq!(
            to,
            vec![
                ("list-r0=far.example@lists.example".into(), 1),
                ("list-r1=far.example@lists.example".into(), 1)
            ]
        );
    }

    #[test]
    fn nobody_to_tell_is_settled_without_a_notice() {
        let late = ARRIVAL + 5 * 3600;
        let null = env("", &[None]);
        assert_eq!(
            decide(&null, false, &[0], late, FOUR_HOURS),
            Decision::Skip("the sender is null")
        );
        assert_eq!(
            decide(&null, false, &[0], ARRIVAL, FOUR_HOURS),
            Decision::Never,
            "no attempt is moved up for a notice nobody gets"
        );
        let never = env("alice@example.test", &[Some(Notify::NEVER), FAILURE]);
        assert_eq!(
            decide(&never, false, &[0, 1], late, FOUR_HOURS),
            Decision::Skip("no waiting recipient asked for one (NOTIFY)")
        );
        let bad = env("no-at-sign", &[None]);
        assert!(matches!(
            decide(&bad, false, &[0], late, FOUR_HOURS),
            Decision::Skip(_)
        ));
    }
}
