//! The accept loops for `pop3` (port 110: STLS) and `pop3s` (port 995: TLS from the first
//! byte). An accepted connection is admitted by the limits or told `-ERR [SYS/TEMP]` (on the
//! plaintext port) and closed; admitted ones run in their own task.
//!
//! SECURITY: a refused connection costs one non-blocking write and a close. Accept errors
//! (out of descriptors) are logged and slowed down, never a busy loop. On stop the loops end;
//! the supervisor keeps the listening sockets, so clients wait in the backlog for the next
//! moat-pop3d instead of being refused.

use std::sync::Arc;
use std::time::Duration;

use moat_common::{error, info};
use tokio::net::TcpListener;

use crate::Server;
use crate::connection;
use crate::stop::stopped;

/// Accepts connections until the stop flag is raised. `implicit_tls`: port 995.
pub async fn accept_loop(
    listener: TcpListener,
    name: &'static str,
    implicit_tls: bool,
    server: Arc<Server>,
) {
    let mut stop = server.stop.clone();
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
        match server.limits.admit(peer.ip()) {
            Ok(slot) => {
                tokio::spawn(connection::serve(
                    tcp,
                    peer,
                    implicit_tls,
                    Arc::clone(&server),
                    slot,
                ));
            }
            Err(why) => {
                info!("{name}: refused {peer}: {why}");
                if !implicit_tls {
                    let _ = tcp.try_write(
                        format!("-ERR [SYS/TEMP] {why}, try again later\r\n").as_bytes(),
                    );
                }
            }
        }
    }
    info!("{name}: no longer accepting connections");
}
