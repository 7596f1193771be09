//! The three services and their accept loops: `smtp` (port 25: the MX, local recipients only),
//! `submission` (587: STARTTLS, then AUTH, then any recipient) and `submissions` (465: the
//! same over implicit TLS). Each accepted connection is admitted by the limits or told
//! `421 4.7.0` and closed, then runs in its own task.
//!
//! SECURITY: a refused connection costs one non-blocking write and a close: no task, no
//! session, no wait. Accept errors (out of descriptors) are logged and slowed down, never a
//! busy loop (`moat_common::daemon::tcp_server`). On stop the loops end at once; the supervisor
//! keeps the listening sockets, so connections wait in the backlog for the next moat-smtpd
//! instead of being refused.

use std::sync::Arc;

use moat_common::client::queue::Origin;
use moat_common::daemon::tcp_server;
use moat_common::info;
use tokio::net::TcpListener;

use super::connection;
use super::{HEADROOM, Server};
use crate::proto::SessionConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Submission,
    Submissions,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Smtp, Service::Submission, Service::Submissions];

    /// The descriptor's name in the setup, and the name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
        }
    }

    /// TLS from the first byte (port 465).
    pub fn implicit_tls(self) -> bool {
        self == Service::Submissions
    }

    /// What the queue is told about mail from this service.
    pub fn origin(self) -> Origin {
        match self {
            Service::Smtp => Origin::Smtp,
            Service::Submission | Service::Submissions => Origin::Submission,
        }
    }

    /// The session configuration: submission requires AUTH (which is only offered under
    /// TLS); STARTTLS is offered when a certificate is loaded.
    pub fn session_config(self, server: &Server) -> SessionConfig {
        let s = &server.settings;
        let mut cfg = match self {
            Service::Smtp => SessionConfig::new(s.hostname.clone()),
            Service::Submission | Service::Submissions => {
                SessionConfig::submission(s.hostname.clone())
            }
        };
        cfg.starttls = server.tls.is_some();
        cfg.limits.message_size = s.max_message_size.saturating_sub(HEADROOM).max(1);
        cfg.limits.recipients = s.max_recipients;
        // Any listener where a client logged in (port 25 offers no AUTH today).
        cfg.check_sender = s.sender_login_match;
        cfg
    }
}

/// Accepts connections on `listener` until the stop flag is raised.
pub async fn accept_loop(listener: TcpListener, service: Service, server: Arc<Server>) {
    tcp_server::accept_loop(
        listener,
        service.name(),
        &server.limits,
        server.stop.clone(),
        |tcp, peer, slot| connection::serve(tcp, peer, service, Arc::clone(&server), slot),
        |tcp, peer, refusal| {
            info!(
                "refused connection from {peer} to {}: {} is reached",
                service.name(),
                refusal.describe()
            );
            // TLS on 465 has not started, so a plaintext line is all we could say; a TLS
            // client will just see the connection close.
            if !service.implicit_tls() {
                let hostname = &server.settings.hostname;
                let line = format!(
                    "421 4.7.0 {hostname} {}, try again later\r\n",
                    refusal.text()
                );
                let _ = tcp.try_write(line.as_bytes());
            }
        },
    )
    .await;
}
