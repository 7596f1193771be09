//! The moat-lists process: take the `lists` listener and settings from the setup, then serve
//! `L` requests (one per connection) until SIGTERM or the supervisor's end of the setup channel,
//! letting requests in flight finish.
//!
//! SECURITY: only `peers_local` (moat-local), our own uid and root may ask; anyone else gets
//! `D` "permission denied". Every field is checked again (`request`); the descriptor must be a
//! regular file, read with positioned reads and never whole into memory. moat-lists opens no
//! store: list data comes through moat-auth (docs/ARCHITECTURE.md, "moat-lists").

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::list_store::ListStore;
use moat_common::client::lists::HANDLE;
use moat_common::conn::{Conn, parse_uids, unix_listener, with_timeout};
use moat_common::daemon::{stop, unix_server};
use moat_common::wire::Status;
use moat_common::{info, warn};
use tokio::net::UnixStream;

use crate::command::Command;
use crate::context::{Ctx, Policy};
use crate::cookie::Action;
use crate::request::{self, Request};
use crate::throttle::Throttle;
use crate::web::Web;
use crate::{archive, digest};
use crate::{bounce, help, post, subscribe};
use crate::{held, moderate, owner, replay};

/// How long moat-local may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; the rest wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

/// The `Z` text for an extension moat-auth took as a list command and this moat-lists does not
/// know (two versions of the grammar during an upgrade): the queue keeps the mail until a
/// moat-lists that knows it runs.
pub const NOT_YET: &str = "4.3.0 list command not known to this moat-lists";

pub struct Daemon {
    ctx: Ctx,
    peers_local: Vec<u32>,
    own_uid: u32,
    listener: OwnedFd,
    /// The RFC 8058 one-click endpoint, when a `web` listener was passed.
    web: Option<Web>,
    control: StdUnixStream,
}

impl Daemon {
    pub fn from_setup(mut setup: Setup) -> Result<Daemon, String> {
        let get = |key: &str| {
            setup
                .get(key)
                .map(str::to_string)
                .map_err(|e| e.to_string())
        };
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match setup.get_opt(key).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{key}: {v:?} is not a positive number")),
            }
        };
        let d = Policy::default();
        let small = |n: u64| u32::try_from(n).map_err(|_| format!("{n} is too large"));
        let policy = Policy {
            bounce_threshold: small(number("bounce_threshold", d.bounce_threshold.into())?)?,
            bounce_window_secs: number("bounce_window_secs", d.bounce_window_secs)?,
            held_expiry_secs: number("held_expiry_secs", d.held_expiry_secs)?,
            digest_posts: small(number("digest_posts", d.digest_posts.into())?)?,
            digest_interval_secs: number("digest_interval_secs", d.digest_interval_secs)?,
        };
        let optional = |key: &str| {
            setup
                .get_opt(key)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let ctx = Ctx {
            queue_socket: PathBuf::from(get("queue_socket")?),
            hostname: setup.get_opt("hostname").unwrap_or("localhost").to_string(),
            store: ListStore::new(&PathBuf::from(get("auth_socket")?)),
            throttle: Throttle::default(),
            data_dir: PathBuf::from(get("lists_dir")?),
            policy,
            web_url: optional("web_url"),
            nameserver: optional("nameserver"),
        };
        let peers_local = parse_uids(setup.get_opt("peers_local").unwrap_or(""))
            .map_err(|e| format!("peers_local: {e}"))?;
        let listener = setup.take_fd("lists").map_err(|e| e.to_string())?;
        let web = Web::from_setup(&mut setup)?;
        Ok(Daemon {
            ctx,
            peers_local,
            own_uid: rustix::process::geteuid().as_raw(),
            listener,
            web,
            control: setup.control,
        })
    }

    /// Serves until SIGTERM or the end of the control channel. Call inside a tokio runtime.
    pub async fn serve(self) -> Result<(), String> {
        let listener = unix_listener(self.listener).map_err(|e| e.to_string())?;
        let shutdown = stop::shutdown(self.control).map_err(|e| e.to_string())?;
        // The one-click endpoint stops with the rest: the flag is raised when `shutdown` ends.
        let (stop_web, web_stopped) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            let why = shutdown.await;
            stop_web.send_replace(true);
            why
        };
        info!("serving lists.sock (peers: local {:?})", self.peers_local);
        let sweeper = tokio::spawn(sweep_held(
            self.ctx.data_dir.clone(),
            self.ctx.policy.held_expiry_secs,
        ));
        let replay_sweeper = tokio::spawn(sweep_replay(self.ctx.data_dir.clone()));
        let shared = Arc::new((self.ctx, self.peers_local, self.own_uid));
        let web = self
            .web
            .map(|web| tokio::spawn(web.serve(Arc::clone(&shared), |s| &s.0, web_stopped)));
        let digests = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { digest::timer(&shared.0).await }
        });
        unix_server::serve(
            listener,
            MAX_CONNECTIONS,
            shutdown,
            "request(s)",
            |stream| {
                let shared = Arc::clone(&shared);
                async move {
                    let (ctx, peers_local, own_uid) = &*shared;
                    serve_one(stream, ctx, peers_local, *own_uid).await;
                }
            },
        )
        .await;
        sweeper.abort();
        replay_sweeper.abort();
        if let Some(web) = web {
            let _ = web.await;
        }
        digests.abort();
        Ok(())
    }
}

/// How often held posts are checked for expiry.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Removes expired held posts (`held::sweep`) now and every `SWEEP_EVERY`; aborted at shutdown.
async fn sweep_held(data_dir: PathBuf, max_age: u64) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let dir = data_dir.clone();
        let now = moat_common::date::now();
        match tokio::task::spawn_blocking(move || held::sweep(&dir, now, max_age)).await {
            Ok((expired, problems)) => {
                for e in expired {
                    info!(
                        "list=<{}> held post {} from=<{}>: expired unmoderated \
                         (held {}s ago): removed",
                        e.list,
                        e.id,
                        e.sender.as_deref().unwrap_or("?"),
                        now.saturating_sub(e.held_at)
                    );
                }
                for p in problems {
                    warn!("held posts sweep: {p}");
                }
            }
            Err(e) => warn!("held posts sweep: {e}"),
        }
    }
}

/// Removes replay records older than `replay::MAX_AGE_SECS` now and every `SWEEP_EVERY`;
/// aborted at shutdown.
async fn sweep_replay(data_dir: PathBuf) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let dir = data_dir.clone();
        let now = moat_common::date::now();
        let swept =
            tokio::task::spawn_blocking(move || replay::sweep(&dir, now, replay::MAX_AGE_SECS));
        match swept.await {
            Ok((removed, problems)) => {
                if removed > 0 {
                    info!("replay records sweep: {removed} record(s) older than 7 days removed");
                }
                for p in problems {
                    warn!("replay records sweep: {p}");
                }
            }
            Err(e) => warn!("replay records sweep: {e}"),
        }
    }
}

async fn serve_one(stream: UnixStream, ctx: &Ctx, peers_local: &[u32], own_uid: u32) {
    let mut conn = Conn::new(stream);
    let Some((peer, record)) = unix_server::read_request(&mut conn, REQUEST_TIMEOUT).await else {
        return;
    };
    let allowed = peer.uid == 0 || peer.uid == own_uid || peers_local.contains(&peer.uid);
    let status = if !allowed {
        warn!("permission denied: uid {} pid {}", peer.uid, peer.pid);
        Status::Permanent("permission denied".into())
    } else if record.kind != HANDLE {
        Status::Permanent("unknown request".into())
    } else {
        match request::parse(&record) {
            Err(e) => {
                warn!("bad request from uid {}: {e}", peer.uid);
                Status::Permanent(format!("bad request: {e}"))
            }
            Ok(req) => match conn.take_fd().map(File::from) {
                Some(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
                    handle(ctx, &req, file).await
                }
                _ => Status::Permanent("no message descriptor attached".into()),
            },
        }
    };
    if let Err(e) = with_timeout(REQUEST_TIMEOUT, conn.send(&status.to_record())).await {
        warn!("cannot answer uid {}: {e}", peer.uid);
    }
}

/// One message for one list address: the verdict for moat-local.
async fn handle(ctx: &Ctx, req: &Request, file: File) -> Status {
    let qid = req.queue_id.as_str();
    let file = Arc::new(file);
    match Command::parse(&req.extension) {
        Command::Post => post::distribute(ctx, req, file).await,
        Command::Help => help::answer(ctx, req, file).await,
        Command::Subscribe => subscribe::request(ctx, req, file, Action::Subscribe).await,
        Command::Unsubscribe => subscribe::request(ctx, req, file, Action::Unsubscribe).await,
        Command::SubscribeConfirm { cookie, address } => {
            subscribe::confirm(ctx, req, file, Action::Subscribe, &cookie, &address).await
        }
        Command::UnsubscribeConfirm { cookie, address } => {
            subscribe::confirm(ctx, req, file, Action::Unsubscribe, &cookie, &address).await
        }
        Command::Owner => owner::forward(ctx, req, file).await,
        Command::Accept(id) => moderate::accept(ctx, req, file, &id).await,
        Command::Reject(id) => moderate::reject(ctx, req, file, &id).await,
        Command::DigestSubscribe => {
            subscribe::digest_request(ctx, req, file, Action::Subscribe).await
        }
        Command::DigestUnsubscribe => {
            subscribe::digest_request(ctx, req, file, Action::Unsubscribe).await
        }
        Command::Get { from, to } => archive::get(ctx, req, file, from, to).await,
        Command::Index => archive::index(ctx, req, file).await,
        Command::Return(rest) => bounce::handle(ctx, req, file, &rest).await,
        Command::Later(ext) => {
            info!(id = qid; "list=<{}> from=<{}> {ext}: {NOT_YET}", req.list, req.sender);
            Status::Temporary(NOT_YET.into())
        }
    }
}
