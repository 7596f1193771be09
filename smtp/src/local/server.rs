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
use moat_common::daemon::{stop, unix_server};
use moat_common::wire::{Record, Status};
use moat_common::{info, warn};
use tokio::net::UnixStream;

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
        let shutdown = stop::shutdown(self.control)?;
        info!(
            "serving mail_root={} auth={} queue={}",
            self.settings.mail_root.display(),
            self.settings.auth_socket.display(),
            self.settings.queue_socket.display()
        );
        let settings = self.settings;
        unix_server::serve(
            listener,
            MAX_CONNECTIONS,
            shutdown,
            "request(s) in flight",
            |stream| {
                let settings = Arc::clone(&settings);
                async move { serve_one(stream, &settings).await }
            },
        )
        .await;
        Ok(())
    }
}

/// Serves one connection: one request, one answer.
async fn serve_one(stream: UnixStream, settings: &Settings) {
    let mut conn = Conn::new(stream);
    let Some((peer, record)) = unix_server::read_request(&mut conn, REQUEST_TIMEOUT).await else {
        return;
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
