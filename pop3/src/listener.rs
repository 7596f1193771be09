//! The accept loops for `pop3` (port 110: STLS) and `pop3s` (port 995: TLS from the first
//! byte). An accepted connection is admitted by the limits or told `-ERR [SYS/TEMP]` (on the
//! plaintext port) and closed; admitted ones run in their own task.
//!
//! SECURITY: a refused connection costs one non-blocking write and a close. Accept errors
//! (out of descriptors) are logged and slowed down, never a busy loop
//! (`moat_common::daemon::tcp_server`). On stop the loops end;
//! the supervisor keeps the listening sockets, so clients wait in the backlog for the next
//! moat-pop3d instead of being refused.

use std::sync::Arc;

use moat_common::daemon::tcp_server;
use moat_common::info;
use tokio::net::TcpListener;

use crate::Server;
use crate::connection;

/// Accepts connections until the stop flag is raised. `implicit_tls`: port 995.
pub async fn accept_loop(
    listener: TcpListener,
    name: &'static str,
    implicit_tls: bool,
    server: Arc<Server>,
) {
    tcp_server::accept_loop(
        listener,
        name,
        &server.limits,
        server.stop.clone(),
        |tcp, peer, slot| connection::serve(tcp, peer, implicit_tls, Arc::clone(&server), slot),
        |tcp, peer, refusal| {
            let why = refusal.text();
            info!("{name}: refused {peer}: {why}");
            if !implicit_tls {
                let _ =
                    tcp.try_write(format!("-ERR [SYS/TEMP] {why}, try again later\r\n").as_bytes());
            }
        },
    )
    .await;
}
