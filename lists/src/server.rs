//! The moat-lists process: take the `lists` listener and settings from the setup, then serve
//! `L` requests (one per connection) until SIGTERM or the supervisor's end of the setup channel,
//! letting requests in flight finish.
//!
//! SECURITY: only `peers_local` (moat-local), our own uid and root may ask; anyone else gets
//! `D` "permission denied". Every field is checked again (`request`); the descriptor must be a
//! regular file, read with positioned reads and never whole into memory. moat-lists opens no
//! store: list data will come through moat-auth (docs/ARCHITECTURE.md, "moat-lists").

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::lists::HANDLE;
use moat_common::conn::{Conn, parse_uids, unix_listener, with_timeout};
use moat_common::daemon::{stop, unix_server};
use moat_common::wire::Status;
use moat_common::{info, warn};
use tokio::net::UnixStream;

use crate::command::Command;
use crate::header;
use crate::help;
use crate::reply::Reply;
use crate::request::{self, Request};

/// How long moat-local may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; the rest wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

/// The `Z` text for commands this slice does not handle yet: the queue keeps the mail.
pub const NOT_YET: &str = "4.3.0 list command not handled yet";

struct Settings {
    queue_socket: PathBuf,
    hostname: String,
    peers_local: Vec<u32>,
    own_uid: u32,
}

pub struct Daemon {
    settings: Settings,
    listener: OwnedFd,
    control: StdUnixStream,
}

impl Daemon {
    pub fn from_setup(mut setup: Setup) -> Result<Daemon, String> {
        let get = |key: &str| setup.get(key).map(str::to_string).map_err(|e| e.to_string());
        let settings = Settings {
            queue_socket: PathBuf::from(get("queue_socket")?),
            hostname: setup.get_opt("hostname").unwrap_or("localhost").to_string(),
            peers_local: parse_uids(setup.get_opt("peers_local").unwrap_or(""))
                .map_err(|e| format!("peers_local: {e}"))?,
            own_uid: rustix::process::geteuid().as_raw(),
        };
        let listener = setup.take_fd("lists").map_err(|e| e.to_string())?;
        Ok(Daemon {
            settings,
            listener,
            control: setup.control,
        })
    }

    /// Serves until SIGTERM or the end of the control channel. Call inside a tokio runtime.
    pub async fn serve(self) -> Result<(), String> {
        let listener = unix_listener(self.listener).map_err(|e| e.to_string())?;
        let shutdown = stop::shutdown(self.control).map_err(|e| e.to_string())?;
        info!(
            "serving lists.sock (peers: local {:?})",
            self.settings.peers_local
        );
        let settings = std::sync::Arc::new(self.settings);
        unix_server::serve(listener, MAX_CONNECTIONS, shutdown, "request(s)", |stream| {
            let settings = std::sync::Arc::clone(&settings);
            async move { serve_one(stream, &settings).await }
        })
        .await;
        Ok(())
    }
}

async fn serve_one(stream: UnixStream, settings: &Settings) {
    let mut conn = Conn::new(stream);
    let Some((peer, record)) = unix_server::read_request(&mut conn, REQUEST_TIMEOUT).await else {
        return;
    };
    let allowed =
        peer.uid == 0 || peer.uid == settings.own_uid || settings.peers_local.contains(&peer.uid);
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
                    handle(settings, &req, file).await
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
async fn handle(settings: &Settings, req: &Request, file: File) -> Status {
    let qid = req.queue_id.as_str();
    match Command::parse(&req.extension) {
        Command::Help => help(settings, req, file).await,
        Command::Post => {
            info!(id = qid; "list=<{}> from=<{}> post: {NOT_YET}", req.list, req.sender);
            Status::Temporary(NOT_YET.into())
        }
        Command::Later(ext) => {
            info!(id = qid; "list=<{}> from=<{}> {ext}: {NOT_YET}", req.list, req.sender);
            Status::Temporary(NOT_YET.into())
        }
    }
}

/// `list-help`: mail the help text to the sender, unless nobody (the null sender) or a machine
/// sent the request: those are accepted and dropped with a log line, as ezmlm does.
async fn help(settings: &Settings, req: &Request, file: File) -> Status {
    let qid = req.queue_id.as_str();
    if req.sender.is_empty() {
        info!(id = qid; "list=<{}> help from <>: not answered", req.list);
        return Status::Ok("not answered (null sender)".into());
    }
    let head = match tokio::task::spawn_blocking(move || header::read(&file)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            warn!(id = qid; "list=<{}>: cannot read the message: {e}", req.list);
            return Status::Temporary("4.3.0 cannot read the message".into());
        }
        Err(e) => {
            warn!(id = qid; "list=<{}>: {e}", req.list);
            return Status::Temporary("4.3.0 internal error".into());
        }
    };
    if let Some(why) = header::automatic(&head) {
        info!(id = qid; "list=<{}> help from=<{}>: not answered ({why})", req.list, req.sender);
        return Status::Ok(format!("not answered ({why})"));
    }
    let (local, domain) = req.list_parts();
    let from = format!("{local}-help@{domain}");
    let subject = format!("Help for {}", req.list);
    let body = help::text(&req.list);
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &req.sender,
        subject: &subject,
        body: &body,
        queue_id: qid,
        hostname: &settings.hostname,
    };
    match reply.send(&settings.queue_socket).await {
        Ok(Status::Ok(new_id)) => {
            info!(id = qid; "list=<{}> help sent to=<{}> as {new_id}", req.list, req.sender);
            Status::Ok(format!("help sent ({new_id})"))
        }
        Ok(Status::Permanent(why) | Status::Temporary(why)) => {
            warn!(id = qid; "list=<{}> help to=<{}>: the queue refused it: {why}",
                req.list, req.sender);
            Status::Temporary("4.3.0 cannot queue the reply".into())
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> help to=<{}>: the queue: {e}", req.list, req.sender);
            Status::Temporary("4.3.0 cannot queue the reply".into())
        }
    }
}
