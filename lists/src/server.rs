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
use crate::{help, post, subscribe};

/// How long moat-local may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; the rest wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

/// The `Z` text for commands this slice does not handle yet (bounces, moderation, digests,
/// the archive): the queue keeps the mail.
pub const NOT_YET: &str = "4.3.0 list command not handled yet";

pub struct Daemon {
    ctx: Ctx,
    peers_local: Vec<u32>,
    own_uid: u32,
    listener: OwnedFd,
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
        Ok(Daemon {
            ctx,
            peers_local,
            own_uid: rustix::process::geteuid().as_raw(),
            listener,
            control: setup.control,
        })
    }

    /// Serves until SIGTERM or the end of the control channel. Call inside a tokio runtime.
    pub async fn serve(self) -> Result<(), String> {
        let listener = unix_listener(self.listener).map_err(|e| e.to_string())?;
        let shutdown = stop::shutdown(self.control).map_err(|e| e.to_string())?;
        info!("serving lists.sock (peers: local {:?})", self.peers_local);
        let shared = Arc::new((self.ctx, self.peers_local, self.own_uid));
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
        Ok(())
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
        Command::Owner
        | Command::DigestSubscribe
        | Command::DigestUnsubscribe
        | Command::Accept(_)
        | Command::Reject(_)
        | Command::Return(_)
        | Command::Get { .. }
        | Command::Index => {
            let ext = &req.extension;
            info!(id = qid; "list=<{}> from=<{}> {ext}: {NOT_YET}", req.list, req.sender);
            Status::Temporary(NOT_YET.into())
        }
        Command::Later(ext) => {
            info!(id = qid; "list=<{}> from=<{}> {ext}: {NOT_YET}", req.list, req.sender);
            Status::Temporary(NOT_YET.into())
        }
    }
}
