//! The server loop: accept on `local.sock`, check the peer per request kind, dispatch, answer;
//! stop on SIGTERM or when the supervisor closes the control channel, after the deliveries in
//! flight have finished.
//!
//! One request per connection (the clients in `moat_common::client` open one per call): read one
//! record, answer it, close. Descriptors are only taken for `L`; any others die with the
//! connection.
//!
//! SECURITY: the peer's uid comes from SO_PEERCRED and is checked against the allowed list for
//! the request's kind before anything else is done with it (`peers`); refusals are logged. A
//! peer gets `REQUEST_TIMEOUT` to send its one bounded record (`wire::MAX_FRAME`) and as long to
//! read the answer; at most `MAX_CONNECTIONS` are served at once, the rest wait in the listen
//! backlog.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::local::{self, Delivery};
use moat_common::conn::{Conn, unix_listener, with_timeout};
use moat_common::wire::{Record, Status};
use moat_common::{error, info, warn};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::local::check::check;
use crate::local::deliver::deliver;
use crate::local::peers::Kind;
use crate::local::request::{CheckRequest, DeliverRequest};
use crate::local::settings::Settings;

/// How long a peer may take to send its request, and to take the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once (the queue runs about 20 deliveries; smtpd checks are quick).
pub const MAX_CONNECTIONS: usize = 256;

/// Everything moat-local needs to run, taken from the setup before any runtime exists.
pub struct Daemon {
    settings: Arc<Settings>,
    listener: OwnedFd,
    control: StdUnixStream,
}

impl Daemon {
    /// Takes the `local` listener and the settings out of the setup.
    pub fn from_setup(mut setup: Setup) -> Result<Daemon, String> {
        let own = rustix::process::geteuid().as_raw();
        let settings = Settings::from_setup(&setup, own)?;
        let listener = setup.take_fd("local").map_err(|e| e.to_string())?;
        Ok(Daemon {
            settings: Arc::new(settings),
            listener,
            control: setup.control,
        })
    }

    /// Serves until SIGTERM or the end of the control channel, then drains. Call inside a
    /// tokio runtime.
    pub async fn serve(self) -> std::io::Result<()> {
        let listener = unix_listener(self.listener)?;
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
        let control = self.control;
        // A plain thread: it blocks in read() until the supervisor goes away, and must not
        // keep the runtime from shutting down.
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                moat_common::child::wait_for_close(&control);
                let _ = closed_tx.send(());
            })?;
        let shutdown = async {
            tokio::select! {
                _ = sigterm.recv() => "SIGTERM",
                _ = closed_rx => "the supervisor closed the control channel",
            }
        };
        tokio::pin!(shutdown);

        info!(
            "serving mail_root={} auth={} queue={}",
            self.settings.mail_root.display(),
            self.settings.auth_socket.display(),
            self.settings.queue_socket.display()
        );
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tasks = JoinSet::new();
        let why = loop {
            let permit = tokio::select! {
                why = &mut shutdown => break why,
                permit = Arc::clone(&limit).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break "the connection limit was closed",
                },
            };
            tokio::select! {
                why = &mut shutdown => break why,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let settings = Arc::clone(&self.settings);
                        tasks.spawn(async move {
                            serve_one(stream, &settings).await;
                            drop(permit);
                        });
                        while let Some(done) = tasks.try_join_next() {
                            if let Err(e) = done {
                                error!("a request handler failed: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        error!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        };
        drop(listener);
        info!(
            "stopping ({why}); finishing {} request(s) in flight",
            tasks.len()
        );
        while tasks.join_next().await.is_some() {}
        info!("stopped");
        Ok(())
    }
}

/// Serves one connection: one request, one answer.
async fn serve_one(stream: UnixStream, settings: &Settings) {
    let mut conn = Conn::new(stream);
    let peer = match conn.peer() {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot identify a peer: {e}");
            return;
        }
    };
    let record = match with_timeout(REQUEST_TIMEOUT, conn.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            warn!("bad request from uid {} pid {}: {e}", peer.uid, peer.pid);
            return;
        }
    };
    let reply: Record = match Kind::of(record.kind) {
        None => {
            warn!(
                "unknown request {:?} from uid {} pid {}",
                record.kind as char, peer.uid, peer.pid
            );
            Status::Permanent("unknown request".into()).to_record()
        }
        Some(kind) if !settings.peers.allows(kind, peer.uid) => {
            warn!(
                "permission denied: request {:?} from uid {} pid {}",
                record.kind as char, peer.uid, peer.pid
            );
            Status::Permanent("permission denied".into()).to_record()
        }
        Some(Kind::Deliver) => match handle_deliver(&mut conn, &record, settings).await {
            Delivery::Status(status) => status.to_record(),
            Delivery::Remote => Record::new(local::REMOTE).field(local::REMOTE_TEXT),
        },
        Some(Kind::Check) => match CheckRequest::parse(&record) {
            Ok(req) => check(settings, &req).await.to_record(),
            Err(e) => {
                warn!("bad check request from uid {}: {e}", peer.uid);
                Status::Permanent(format!("bad request: {e}")).to_record()
            }
        },
    };
    if let Err(e) = with_timeout(REQUEST_TIMEOUT, conn.send(&reply)).await {
        warn!("cannot answer uid {} pid {}: {e}", peer.uid, peer.pid);
    }
}

async fn handle_deliver(conn: &mut Conn, record: &Record, settings: &Settings) -> Delivery {
    let req = match DeliverRequest::parse(record) {
        Ok(req) => req,
        Err(e) => {
            warn!("bad delivery request: {e}");
            return Delivery::Status(Status::Permanent(format!("bad request: {e}")));
        }
    };
    let Some(fd) = conn.take_fd() else {
        warn!(id = &req.queue_id; "delivery request without a message descriptor");
        return Delivery::Status(Status::Permanent("no message descriptor attached".into()));
    };
    deliver(settings, &req, fd).await
}
