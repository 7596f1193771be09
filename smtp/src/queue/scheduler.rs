//! What is delivered when: new messages at once, temporary failures at the time their attempt
//! chose (the retry schedule, see `delivery`), every queued message at startup (keeping the
//! persisted time), everything on flush; at most `max_deliveries` messages in delivery at once
//! (and as many recipient deliveries, shared through one semaphore, see `delivery`).
//!
//! The scheduler holds only ids and times; the truth is on disk and each attempt (`delivery`)
//! reads it afresh. Admin deletes of a message being delivered wait for that attempt to end.
//!
//! SECURITY: nothing here reads peer input; ids come from the store or were checked by `admin`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use moat_common::wire::Status;
use moat_common::{error, info, warn};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::delivery::{self, Outcome};
use super::{Ctx, blocking, now_ms};

/// How long deliveries in progress may take to finish after a stop was asked for.
pub const DRAIN: Duration = Duration::from_secs(30);

/// Requests to the scheduler.
pub enum Command {
    /// A message was just committed.
    New(String),
    /// Try everything now.
    Flush,
    /// Remove a message without bouncing it.
    Delete(String, oneshot::Sender<Status>),
}

enum State {
    Waiting(u64),
    Ready,
    Running { delete: bool },
}

struct Scheduler {
    ctx: Arc<Ctx>,
    states: HashMap<String, State>,
    waiting: BTreeSet<(u64, String)>,
    ready: VecDeque<String>,
    running: JoinSet<(String, Outcome)>,
    tasks: HashMap<tokio::task::Id, String>,
    permits: Arc<Semaphore>,
}

/// Runs until `stop` turns true, then waits (at most `DRAIN`) for deliveries in progress.
pub async fn run(
    ctx: Arc<Ctx>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(ctx.settings.max_deliveries));
    let mut s = Scheduler {
        ctx,
        states: HashMap::new(),
        waiting: BTreeSet::new(),
        ready: VecDeque::new(),
        running: JoinSet::new(),
        tasks: HashMap::new(),
        permits,
    };
    s.load().await;
    loop {
        s.start_ready();
        let next = s.waiting.first().map(|(at, _)| *at);
        let sleep = Duration::from_millis(next.map_or(0, |at| at.saturating_sub(now_ms())));
        tokio::select! {
            command = commands.recv() => match command {
                Some(c) => s.command(c).await,
                None => break,
            },
            Some(joined) = s.running.join_next_with_id(), if !s.running.is_empty() => {
                s.finished(joined).await;
            }
            _ = tokio::time::sleep(sleep), if next.is_some() => s.wake_due(),
            _ = stop.changed() => break,
        }
    }
    if !s.running.is_empty() {
        info!(
            "waiting for {} delivery attempt(s) to finish",
            s.running.len()
        );
        let drained = tokio::time::timeout(DRAIN, async {
            while let Some(joined) = s.running.join_next_with_id().await {
                s.finished(joined).await;
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                "stopping with deliveries unfinished: they will be tried again at the next start"
            );
        }
    }
}

impl Scheduler {
    async fn load(&mut self) {
        let store = Arc::clone(&self.ctx.store);
        let loaded = blocking(move || {
            let mut due = Vec::new();
            for id in store.queued()? {
                let at = store
                    .retry(&id)?
                    .map_or(0, |r| r.next_try.saturating_mul(1000));
                due.push((id, at));
            }
            Ok(due)
        })
        .await;
        match loaded {
            Ok(due) => {
                info!("{} message(s) in the queue", due.len());
                for (id, at) in due {
                    self.schedule(id, at);
                }
            }
            Err(e) => error!("cannot read the queue: {e}"),
        }
    }

    fn schedule(&mut self, id: String, at: u64) {
        match self.states.get(&id) {
            // Its attempt in progress reschedules it when it ends: never two at once.
            Some(State::Running { .. }) => return,
            Some(State::Waiting(old)) => {
                let key = (*old, id.clone());
                self.waiting.remove(&key);
            }
            _ => {}
        }
        if at <= now_ms() {
            self.states.insert(id.clone(), State::Ready);
            self.ready.push_back(id);
        } else {
            self.waiting.insert((at, id.clone()));
            self.states.insert(id, State::Waiting(at));
        }
    }

    fn start_ready(&mut self) {
        while self.running.len() < self.ctx.settings.max_deliveries {
            let Some(id) = self.ready.pop_front() else {
                return;
            };
            if !matches!(self.states.get(&id), Some(State::Ready)) {
                continue; // deleted, or scheduled again since
            }
            self.states
                .insert(id.clone(), State::Running { delete: false });
            let (ctx, permits, task_id) =
                (Arc::clone(&self.ctx), Arc::clone(&self.permits), id.clone());
            let handle = self.running.spawn(async move {
                let outcome = delivery::attempt(&ctx, &task_id, permits).await;
                (task_id, outcome)
            });
            self.tasks.insert(handle.id(), id);
        }
    }

    fn wake_due(&mut self) {
        let now = now_ms();
        while let Some((at, id)) = self.waiting.first().cloned() {
            if at > now {
                break;
            }
            self.waiting.remove(&(at, id.clone()));
            if matches!(self.states.get(&id), Some(State::Waiting(w)) if *w == at) {
                self.states.insert(id.clone(), State::Ready);
                self.ready.push_back(id);
            }
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::New(id) => self.schedule(id, 0),
            Command::Flush => {
                for (at, id) in std::mem::take(&mut self.waiting) {
                    if matches!(self.states.get(&id), Some(State::Waiting(w)) if *w == at) {
                        self.states.insert(id.clone(), State::Ready);
                        self.ready.push_back(id);
                    }
                }
            }
            Command::Delete(id, reply) => {
                let status = match self.states.get_mut(&id) {
                    None => Status::Permanent("no such message".into()),
                    Some(State::Running { delete }) => {
                        *delete = true;
                        Status::Ok("deleted once the delivery in progress ends".into())
                    }
                    Some(state) => {
                        if let State::Waiting(at) = state {
                            let key = (*at, id.clone());
                            self.waiting.remove(&key);
                        }
                        self.states.remove(&id);
                        self.remove(&id).await
                    }
                };
                let _ = reply.send(status);
            }
        }
    }

    async fn remove(&self, id: &str) -> Status {
        let store = Arc::clone(&self.ctx.store);
        let owned = id.to_string();
        match blocking(move || store.remove(&owned)).await {
            Ok(()) => {
                info!(id = id; "removed");
                Status::Ok("deleted".into())
            }
            Err(e) => {
                error!(id = id; "cannot remove: {e}");
                Status::Temporary(format!("cannot remove: {e}"))
            }
        }
    }

    async fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, (String, Outcome)), tokio::task::JoinError>,
    ) {
        let (id, outcome) = match joined {
            Ok((task, (id, outcome))) => {
                self.tasks.remove(&task);
                (id, outcome)
            }
            Err(e) => {
                let Some(id) = self.tasks.remove(&e.id()) else {
                    return;
                };
                error!(id = &id; "delivery attempt failed: {e}");
                let at = now_ms() + 1000 * self.ctx.settings.retry_schedule.first();
                (id, Outcome::Retry { at })
            }
        };
        let delete = matches!(
            self.states.remove(&id),
            Some(State::Running { delete: true })
        );
        match outcome {
            Outcome::Removed { bounces } => {
                for bounce in bounces {
                    self.schedule(bounce, 0);
                }
            }
            Outcome::Retry { .. } if delete => {
                self.remove(&id).await;
            }
            Outcome::Retry { at } => self.schedule(id, at),
        }
    }
}
