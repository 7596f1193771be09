//! What the mail-access servers (moat-pop3d, moat-imapd) and their pre-auth login processes
//! (moat-pop3-login, moat-imap-login) share around their protocol: the settings, the start (a
//! plain listener and an implicit-TLS one, the TLS files, moat-auth, the connection limits),
//! the accept loops that refuse in the protocol's words, the drain at stop, and why a
//! connection ended, for the log. Each protocol plugs in with a [`Protocol`].
//!
//! Two modes, one program each (docs/PROTOCOLS.md, "handoff"):
//! - login (`handoff_socket` set): serves the TCP listeners up to a successful login, then
//!   hands the client to the mail process (`crate::handoff`). It has no mail, no store.
//! - mail (`handoff` descriptor): accepts clients handed over by the uids in `handoff_peers`,
//!   redeems their login token with moat-auth and serves them from the login on (`resume`).
//!   TCP listeners are still served when passed (a mail process started without a login
//!   process, as before the split).
//!
//! A login process replaced by a reload is retired with SIGUSR1 (`stop::retire`): it stops
//! accepting and keeps its open sessions, the TLS relays of logged-in clients included (IMAP
//! IDLE may last hours), until the last one ends; only a stop after that bounds them by `DRAIN`.
//!
//! Settings (installer/src/serve/specs.rs). Required: `hostname`, `auth_socket`, and
//! `mail_root` except in login mode. Optional: `handoff_socket`, `handoff_peers` (uids, comma
//! separated), `plaintext_on_loopback` (true: plaintext logins without TLS from 127.0.0.0/8 and
//! ::1), `idle_timeout_secs` (the protocol's default), `max_connections` (200),
//! `max_connections_per_ip` (20), `max_message_size` (36700160; moat-imapd's APPEND limit,
//! unused by moat-pop3d).
//!
//! SECURITY: settings are parsed strictly (a typo is an error at start) and the host name is
//! checked because it goes into every greeting. A refused connection costs one non-blocking
//! write and a close (`tcp_server`). The implicit-TLS port is only served with a certificate.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpStream, UnixListener};

use super::limits::{Limits, Slot};
use super::settings::{Lookup, count, flag, number, required, valid_hostname};
use super::stop::{self, Stop};
use super::stream::Stream;
use super::tcp_server::{self, Services};
use crate::child::Setup;
use crate::client::auth::{AuthClient, LoggedIn};
use crate::conn::{parse_uids, unix_listener};
use crate::handoff::Arrival;
use crate::{info, warn};

/// One TLS handshake may take this long.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(30);

/// How long open sessions may go on after a stop before the process ends (and drops them);
/// the supervisor waits 60 s.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    /// Empty in a login process, which has no business with mail.
    pub mail_root: PathBuf,
    pub auth_socket: PathBuf,
    /// Login mode: the mail process's `handoff` socket, where logged-in clients go.
    pub handoff_socket: Option<PathBuf>,
    /// Mail mode: the uids (login processes) that may hand clients over.
    pub handoff_peers: Vec<u32>,
    pub plaintext_on_loopback: bool,
    /// How long the client may be silent (and how long one write to it may take).
    pub idle: Duration,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    /// The largest message a client may store (IMAP APPEND); `[limits] max_message_size`.
    pub max_message_size: u64,
}

impl Settings {
    /// Reads the settings through `get` (`Setup::get_opt` in a daemon, a map in tests);
    /// `idle_default_secs` is the protocol's idle timeout.
    pub fn from_lookup(get: Lookup<'_>, idle_default_secs: u64) -> Result<Settings, String> {
        let hostname = required(get, "hostname")?;
        if !valid_hostname(&hostname) {
            return Err(format!(
                "setting hostname = {hostname:?} is not a host name"
            ));
        }
        let handoff_socket = get("handoff_socket").map(PathBuf::from);
        let mail_root = match &handoff_socket {
            Some(_) => PathBuf::new(),
            None => PathBuf::from(required(get, "mail_root")?),
        };
        Ok(Settings {
            hostname,
            mail_root,
            auth_socket: PathBuf::from(required(get, "auth_socket")?),
            handoff_socket,
            handoff_peers: parse_uids(&get("handoff_peers").unwrap_or_default())?,
            plaintext_on_loopback: flag(get, "plaintext_on_loopback", true)?,
            idle: Duration::from_secs(count(get, "idle_timeout_secs", idle_default_secs)?.into()),
            max_connections: count(get, "max_connections", 200)?,
            max_connections_per_ip: count(get, "max_connections_per_ip", 20)?,
            max_message_size: number(get, "max_message_size", 36_700_160, 1)?,
        })
    }
}

/// What every connection shares.
pub struct Server {
    pub settings: Settings,
    pub tls: Option<Arc<ServerConfig>>,
    pub auth: AuthClient,
    pub limits: Arc<Limits>,
    pub stop: Stop,
    /// The service name moat-auth knows (`imap`, `pop3`).
    pub service: &'static str,
}

/// A client a login process handed over, as the protocol resumes it.
#[derive(Debug)]
pub struct Resumed {
    /// The user moat-auth issued the login token for.
    pub user: LoggedIn,
    /// TLS is up (the stream is the login process's relay).
    pub tls: bool,
    /// The tag of the command that logged in (IMAP), "" for POP3.
    pub tag: String,
    /// What the client sent after that command, to be parsed before anything else.
    pub pending: Vec<u8>,
}

impl Server {
    /// Login mode: where logged-in clients go (`None` in a mail process).
    pub fn handoff(&self) -> Option<&Path> {
        self.settings.handoff_socket.as_deref()
    }

    /// True if `peer` may log in without TLS: loopback, and `plaintext_on_loopback`.
    pub fn plaintext_allowed(&self, peer: SocketAddr) -> bool {
        peer.ip().to_canonical().is_loopback() && self.settings.plaintext_on_loopback
    }

    /// The server side of a TLS handshake on `stream` (implicit TLS, or after STLS/STARTTLS),
    /// within `TLS_HANDSHAKE`.
    pub async fn start_tls(&self, stream: &mut Stream) -> Result<(), End> {
        let Some(tls) = &self.tls else {
            return Err(End::Failed("TLS without a certificate".into()));
        };
        stream
            .start_tls(tls, TLS_HANDSHAKE)
            .await
            .map_err(|e| End::Failed(format!("TLS handshake failed: {e}")))
    }
}

/// How a protocol plugs in.
pub struct Protocol<F, R> {
    /// The service name moat-auth knows (`imap`, `pop3`).
    pub service: &'static str,
    /// The listeners' descriptor names: the plain port, then the implicit-TLS port.
    pub listeners: [&'static str; 2],
    /// What is off without a certificate, for the log (`"no STLS, port 995 off"`).
    pub without_tls: &'static str,
    pub idle_default_secs: u64,
    /// The line a refused client gets on the plain port, from the reason.
    pub refusal: fn(&str) -> String,
    /// What happens to sessions still open after the drain, for the log.
    pub dropped: &'static str,
    /// Serves one admitted connection: `(stream, peer, implicit TLS, server, slot)`.
    pub serve: F,
    /// Serves a client a login process handed over, from its login on:
    /// `(stream, peer, resumed, server, slot)`.
    pub resume: R,
}

/// Runs a mail-access server with what the supervisor handed over. Call after
/// `Setup::receive`.
pub fn run<F, Fut, R, RFut>(mut setup: Setup, protocol: Protocol<F, R>) -> Result<(), String>
where
    F: Fn(TcpStream, SocketAddr, bool, Arc<Server>, Slot) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    R: Fn(Stream, SocketAddr, Resumed, Arc<Server>, Slot) -> RFut + Send + Sync + 'static,
    RFut: Future<Output = ()> + Send + 'static,
{
    let get = |k: &str| setup.get_opt(k).map(str::to_string);
    let settings = Settings::from_lookup(&get, protocol.idle_default_secs)?;
    let [plain, implicit] = protocol.listeners;
    let (plain_fd, implicit_fd) = (setup.take_fd_opt(plain), setup.take_fd_opt(implicit));
    let handoff = setup.take_fd_opt("handoff");
    if handoff.is_some() && settings.handoff_socket.is_some() {
        return Err(
            "both a handoff listener and a handoff_socket: a login process hands \
                    clients over, a mail process takes them, not both"
                .into(),
        );
    }
    // A mail process behind a login process has no TLS to do: the key stays in the login process.
    let tls = if plain_fd.is_none() && implicit_fd.is_none() {
        None
    } else {
        super::tls::from_setup(&mut setup, protocol.without_tls)?
    };
    let mut listeners: Vec<(&'static str, OwnedFd, bool)> = Vec::new();
    if let Some(fd) = plain_fd {
        listeners.push((plain, fd, false));
    }
    match implicit_fd {
        Some(_) if tls.is_none() => warn!("{implicit}: off, it needs a TLS certificate"),
        Some(fd) => listeners.push((implicit, fd, true)),
        None => {}
    }
    if listeners.is_empty() && handoff.is_none() {
        return Err(format!(
            "no listener to serve ({plain}, {implicit}, handoff)"
        ));
    }
    let control = setup.control;
    super::block_on(
        serve(settings, tls, listeners, handoff, control, protocol),
        Some(Duration::from_secs(2)),
    )
}

async fn serve<F, Fut, R, RFut>(
    settings: Settings,
    tls: Option<Arc<ServerConfig>>,
    listeners: Vec<(&'static str, OwnedFd, bool)>,
    handoff: Option<OwnedFd>,
    control: std::os::unix::net::UnixStream,
    protocol: Protocol<F, R>,
) -> Result<(), String>
where
    F: Fn(TcpStream, SocketAddr, bool, Arc<Server>, Slot) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    R: Fn(Stream, SocketAddr, Resumed, Arc<Server>, Slot) -> RFut + Send + Sync + 'static,
    RFut: Future<Output = ()> + Send + 'static,
{
    let mut stop = stop::watch(control, "")?;
    let server = Arc::new(Server {
        auth: AuthClient::new(&settings.auth_socket),
        limits: Limits::new(settings.max_connections, settings.max_connections_per_ip),
        tls,
        stop: stop.clone(),
        service: protocol.service,
        settings,
    });
    let handoffs = match handoff {
        Some(fd) => {
            let listener = unix_listener(fd).map_err(|e| format!("bad handoff listener: {e}"))?;
            Some(tokio::spawn(handoff_loop(
                listener,
                Arc::clone(&server),
                Arc::new(protocol.resume),
            )))
        }
        None => None,
    };
    // The accept loops end at a stop or, in a login process, when it is retired.
    let mut accepting = match server.handoff() {
        Some(_) => stop::retire(&stop)?,
        None => stop.clone(),
    };
    let serve = Arc::new(protocol.serve);
    let refusal = protocol.refusal;
    let services = Services::start(listeners, |listener, name, implicit_tls| {
        let server = Arc::clone(&server);
        let serve = Arc::clone(&serve);
        let accepting = accepting.clone();
        async move {
            let (limits, stop) = (Arc::clone(&server.limits), accepting);
            tcp_server::accept_loop(
                listener,
                name,
                &limits,
                stop,
                |tcp, peer, slot| {
                    // Replies are small and interactive: no Nagle delay.
                    let _ = tcp.set_nodelay(true);
                    serve(tcp, peer, implicit_tls, Arc::clone(&server), slot)
                },
                |tcp, peer, refused| {
                    let why = refused.text();
                    info!("{name}: refused {peer}: {why}");
                    if !implicit_tls {
                        let _ = tcp.try_write(refusal(why).as_bytes());
                    }
                },
            )
            .await;
        }
    })?;
    let mut serving = services.describe();
    if handoffs.is_some() {
        if !serving.is_empty() {
            serving.push_str(", ");
        }
        serving.push_str("clients handed over by the login process");
    }
    if let Some(socket) = server.handoff() {
        serving.push_str(&format!(
            ", handing logged-in clients to {}",
            socket.display()
        ));
    }
    info!(
        "ready: {serving} (TLS {}, plaintext logins on loopback {}, at most {} connections)",
        if server.tls.is_some() { "on" } else { "off" },
        if server.settings.plaintext_on_loopback {
            "allowed"
        } else {
            "refused"
        },
        server.settings.max_connections
    );
    stop::stopped(&mut accepting).await;
    services.join().await;
    if let Some(handoffs) = handoffs {
        let _ = handoffs.await;
    }
    if !*stop.borrow() {
        // Retired: the sessions end when their clients are done, however long that is; a stop
        // meanwhile (the supervisor's drain) ends the wait, then the usual bound applies.
        info!(
            "{} session(s) open: serving them to their end",
            server.limits.open()
        );
        tokio::select! {
            _ = server.limits.all_closed(Duration::MAX) => {}
            _ = stop::stopped(&mut stop) => {}
        }
    }
    if !server.limits.all_closed(DRAIN).await {
        warn!(
            "{} session(s) still open after the drain: {}",
            server.limits.open(),
            protocol.dropped
        );
    }
    info!("stopped");
    Ok(())
}

/// Accepts clients handed over by a login process until the stop flag is raised: each one in
/// its own task, admitted by the limits, its token redeemed with moat-auth, then resumed.
async fn handoff_loop<R, RFut>(listener: UnixListener, server: Arc<Server>, resume: Arc<R>)
where
    R: Fn(Stream, SocketAddr, Resumed, Arc<Server>, Slot) -> RFut + Send + Sync + 'static,
    RFut: Future<Output = ()> + Send + 'static,
{
    let mut stop = server.stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop::stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((unix, _)) => {
                tokio::spawn(take_over(unix, Arc::clone(&server), Arc::clone(&resume)));
            }
            Err(e) => {
                warn!("handoff: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    info!("handoff: no longer taking clients");
}

/// Takes one client from a login process (or refuses it, and the login process tells the
/// client to try later).
async fn take_over<R, RFut>(unix: tokio::net::UnixStream, server: Arc<Server>, resume: Arc<R>)
where
    R: Fn(Stream, SocketAddr, Resumed, Arc<Server>, Slot) -> RFut + Send + Sync + 'static,
    RFut: Future<Output = ()> + Send + 'static,
{
    let arrival = match Arrival::receive(unix, &server.settings.handoff_peers).await {
        Ok(arrival) => arrival,
        Err(e) => {
            warn!("handoff: {e}");
            return;
        }
    };
    let peer = arrival.handoff.peer;
    let ip = peer.ip().to_canonical().to_string();
    let who = peer.to_string();
    // The token is spent first, whatever happens next: a refused client's token must not stay
    // valid (and count against moat-auth's bound on pending logins) for its 30 s.
    // Boxed: the request's future (a record connection's buffers) would otherwise sit inline
    // in this task for the whole session that follows.
    let redeemed = Box::pin(
        server
            .auth
            .redeem(&arrival.handoff.token, server.service, &ip, &who),
    )
    .await;
    let user = match redeemed {
        Ok(user) => user,
        Err(_) => {
            arrival.refuse("the login could not be confirmed").await;
            return;
        }
    };
    let slot = match server.limits.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(refused) => {
            info!(
                "handoff: refused {peer} ({}): {}",
                user.user,
                refused.text()
            );
            arrival.refuse(refused.text()).await;
            return;
        }
    };
    let (handoff, stream) = match arrival.accept().await {
        Ok(taken) => taken,
        Err(e) => {
            warn!("{who}: {e}");
            return;
        }
    };
    let resumed = Resumed {
        user,
        tls: handoff.tls,
        tag: handoff.tag,
        pending: handoff.pending,
    };
    resume(stream, peer, resumed, server, slot).await;
}

/// Why a connection ended (for the log).
#[derive(Debug)]
pub enum End {
    Closed,
    ClientGone,
    Timeout,
    Stopping,
    /// Logged in and handed to the mail process (login mode), and how.
    HandedOff(String),
    Failed(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed => f.write_str("closed"),
            End::ClientGone => f.write_str("client left"),
            End::Timeout => f.write_str("idle timeout"),
            End::Stopping => f.write_str("server stopping"),
            End::HandedOff(how) => f.write_str(how),
            End::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> End {
        match e.kind() {
            std::io::ErrorKind::TimedOut => End::Timeout,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => End::ClientGone,
            _ => End::Failed(format!("I/O error: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&|k| map.get(k).cloned(), 600)
    }

    #[test]
    fn settings_defaults_and_strictness() {
        let base = [
            ("hostname", "mail.example.test"),
            ("mail_root", "/var/mail"),
            ("auth_socket", "/run/moat/auth.sock"),
        ];
        let s = parse(&base).expect("settings");
        assert!(s.plaintext_on_loopback);
        assert_eq!(s.idle, Duration::from_secs(600));
        assert_eq!((s.max_connections, s.max_connections_per_ip), (200, 20));
        assert_eq!(s.max_message_size, 36_700_160);
        assert!(parse(&base[1..]).is_err());
        for (k, v) in [
            ("plaintext_on_loopback", "yes"),
            ("idle_timeout_secs", "10m"),
            ("hostname", "mail\r\nx"),
        ] {
            let mut bad: Vec<(&str, &str)> =
                base.iter().filter(|(b, _)| *b != k).copied().collect();
            bad.push((k, v));
            assert!(parse(&bad).is_err(), "{k}");
        }
    }

    #[test]
    fn ends_from_io_errors() {
        let end = |k| End::from(std::io::Error::from(k)).to_string();
        assert_eq!(end(std::io::ErrorKind::TimedOut), "idle timeout");
        assert_eq!(end(std::io::ErrorKind::ConnectionReset), "client left");
        assert!(end(std::io::ErrorKind::PermissionDenied).starts_with("I/O error"));
    }
}
