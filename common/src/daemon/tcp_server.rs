//! The accept loops of TCP services (moat-smtpd's smtp/submission/submissions, moat-pop3d's
//! pop3/pop3s): each accepted connection is admitted by the limits and served in its own task
//! with its slot, or refused; the loops end when the stop flag is raised. `Services` starts
//! one loop per listening descriptor and waits for them.
//!
//! SECURITY: a refused connection costs what the `refused` callback does (one non-blocking
//! write and a close in every daemon): no task, no session, no wait. Accept errors (out of
//! descriptors) are logged and slowed down, never a busy loop. On stop the loop ends at once;
//! the supervisor keeps the listening sockets, so connections wait in the backlog for the next
//! instance instead of being refused.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::limits::{Limits, Refusal, Slot};
use super::stop::{Stop, stopped};
use crate::conn::tcp_listener;
use crate::{error, info};

/// Accepts connections on `listener` (logged as `name`) until `stop` is raised. An admitted
/// connection is served by the task `admitted` makes, which holds the slot until it ends; a
/// refused one goes to `refused`, which may say why, and is closed.
pub async fn accept_loop<F>(
    listener: TcpListener,
    name: &str,
    limits: &Arc<Limits>,
    mut stop: Stop,
    mut admitted: impl FnMut(TcpStream, SocketAddr, Slot) -> F,
    mut refused: impl FnMut(TcpStream, SocketAddr, Refusal),
) where
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                error!("{name}: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match limits.admit(peer.ip()) {
            Ok(slot) => {
                tokio::spawn(admitted(tcp, peer, slot));
            }
            Err(refusal) => refused(tcp, peer, refusal),
        }
    }
    info!("{name}: no longer accepting connections");
}

/// A daemon's running accept loops.
pub struct Services {
    loops: Vec<JoinHandle<()>>,
    names: Vec<String>,
}

impl Services {
    /// Starts one accept loop per `(name, listening descriptor, service)`: `start` makes the
    /// loop from the listener, the name and the service.
    pub fn start<T, F>(
        listeners: impl IntoIterator<Item = (&'static str, OwnedFd, T)>,
        mut start: impl FnMut(TcpListener, &'static str, T) -> F,
    ) -> Result<Services, String>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut services = Services {
            loops: Vec::new(),
            names: Vec::new(),
        };
        for (name, fd, service) in listeners {
            let listener = tcp_listener(fd).map_err(|e| format!("bad {name} listener: {e}"))?;
            if let Ok(addr) = listener.local_addr() {
                services.names.push(format!("{name} on {addr}"));
            }
            services
                .loops
                .push(tokio::spawn(start(listener, name, service)));
        }
        Ok(services)
    }

    /// `smtp on 0.0.0.0:25, submission on …`, for the log.
    pub fn describe(&self) -> String {
        self.names.join(", ")
    }

    /// Waits until every loop has ended (after the stop flag).
    pub async fn join(self) {
        for l in self.loops {
            let _ = l.await;
        }
    }
}
