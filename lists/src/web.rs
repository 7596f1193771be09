//! The RFC 8058 one-click unsubscribe endpoint: HTTPS only, on the `web` listener the
//! supervisor binds (`[lists] web_listen`), with the server's certificate (`tls_cert`,
//! `tls_key`).
//!
//! `POST /u/<list>/<user=host>/<mac>` with the body `List-Unsubscribe=One-Click` (form-encoded
//! or multipart, `http::is_one_click`) removes `user@host` from the list's members when the MAC
//! is right (`one_click::check_mac`, constant time, with the key derived from the list's
//! secret) and answers 200; a member already gone gets 200 too (the request is idempotent).
//! `GET`/`HEAD` of the same URL only show a page whose button makes that POST: mail scanners
//! and link previews follow links, so a GET never unsubscribes. An unknown list, a malformed
//! URL or a wrong MAC is 404, with no detail. Each unsubscribe is logged with the list and the
//! address. The URLs are written per recipient at delivery time (docs/LISTS.md, "One-click").
//!
//! SECURITY: the network is hostile. At most `MAX_CONNECTIONS` connections at once and
//! `MAX_PER_CLIENT` per client address; the TLS handshake and the whole request must arrive
//! within `TIMEOUT`; request line and header at most `http::MAX_HEAD` bytes, body at most
//! `http::MAX_BODY`, one request per connection (`Connection: close`). The MAC has 128 bits
//! and is compared in constant time; a failed check says nothing about why. The only thing a
//! request can change is the removal of the one address its MAC was made for.

pub mod http;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use moat_common::child::Setup;
use moat_common::client::list_store::{NO_SUCH_LIST, Roster};
use moat_common::client::one_click::{self, decode_recipient, decode_segment};
use moat_common::conn::tcp_listener;
use moat_common::daemon::limits::Limits;
use moat_common::daemon::stop::Stop;
use moat_common::daemon::tcp_server::accept_loop;
use moat_common::wire::Status;
use moat_common::{error, info, warn};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::context::Ctx;
use http::{Refusal, response};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: u32 = 64;
/// Connections at once from one client address (a /64 for IPv6).
pub const MAX_PER_CLIENT: u32 = 8;
/// The TLS handshake and the whole request must arrive within this; so must the answer leave.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoint's listener and TLS setup, taken from the supervisor's setup.
pub struct Web {
    listener: OwnedFd,
    tls: Arc<ServerConfig>,
}

impl Web {
    /// The endpoint, when the supervisor passed a `web` listener. Without a usable certificate
    /// it is not served (HTTPS only), which is logged; the list manager still runs.
    pub fn from_setup(setup: &mut Setup) -> Result<Option<Web>, String> {
        let listener = setup.take_fd_opt("web");
        let cert = setup.take_fd_opt("tls_cert");
        let key = setup.take_fd_opt("tls_key");
        let Some(listener) = listener else {
            return Ok(None);
        };
        let (Some(cert), Some(key)) = (cert, key) else {
            error!("one-click endpoint: no TLS certificate passed: not served (HTTPS only)");
            return Ok(None);
        };
        match moat_common::daemon::tls::load(cert, key) {
            Ok(tls) => Ok(Some(Web { listener, tls })),
            Err(e) => {
                error!("one-click endpoint: {e}: not served (HTTPS only)");
                Ok(None)
            }
        }
    }

    /// Serves until `stop` is raised. Call inside a tokio runtime. `shared` holds the
    /// handlers' context, which `ctx` picks out.
    pub async fn serve<S: Send + Sync + 'static>(
        self,
        shared: Arc<S>,
        ctx: fn(&S) -> &Ctx,
        stop: Stop,
    ) {
        let listener = match tcp_listener(self.listener) {
            Ok(l) => l,
            Err(e) => {
                error!("one-click endpoint: bad listener: {e}");
                return;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            info!(
                "one-click endpoint on {addr} (https), URLs under {}",
                ctx(&shared).web_url.as_deref().unwrap_or("?")
            );
        }
        let acceptor = TlsAcceptor::from(self.tls);
        let limits = Limits::new(MAX_CONNECTIONS, MAX_PER_CLIENT);
        accept_loop(
            listener,
            "one-click endpoint",
            &limits,
            stop,
            |tcp, peer, slot| {
                let (shared, acceptor) = (Arc::clone(&shared), acceptor.clone());
                async move {
                    connection(ctx(&shared), &acceptor, tcp, peer).await;
                    drop(slot);
                }
            },
            |_tcp, peer, refusal| {
                warn!("one-click endpoint: refused {peer}: {}", refusal.describe());
            },
        )
        .await;
    }
}

/// What a request gets: the response bytes.
async fn connection(ctx: &Ctx, acceptor: &TlsAcceptor, tcp: TcpStream, peer: SocketAddr) {
    let received = tokio::time::timeout(TIMEOUT, async {
        let mut tls = acceptor.accept(tcp).await?;
        let request = read_request(&mut tls).await?;
        Ok::<_, std::io::Error>((tls, request))
    })
    .await;
    let (mut tls, request) = match received {
        Ok(Ok(pair)) => pair,
        // A handshake that failed, a client that left or was too slow: nothing to answer.
        Ok(Err(_)) | Err(_) => return,
    };
    let answer = match request {
        Err(refusal) => {
            let status = refusal.status();
            text(status, &format!("{}\n", status.1), false)
        }
        Ok((head, body)) => answer(ctx, &head, &body, peer).await,
    };
    let _ = tokio::time::timeout(TIMEOUT, async {
        tls.write_all(&answer).await?;
        tls.shutdown().await
    })
    .await;
}

/// Reads one request: the head (bounded), then exactly `Content-Length` body bytes.
async fn read_request<S: AsyncReadExt + Unpin>(
    stream: &mut S,
) -> std::io::Result<Result<(http::Head, Vec<u8>), Refusal>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(end) = http::head_end(&buf) {
            break end;
        }
        if buf.len() >= http::MAX_HEAD {
            return Ok(Err(Refusal::HeaderTooLarge));
        }
        let room = (http::MAX_HEAD + http::MAX_BODY + 4 - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = match http::parse_head(&buf[..end]) {
        Ok(h) => h,
        Err(r) => return Ok(Err(r)),
    };
    let want = head.content_length.unwrap_or(0);
    let mut body = buf.split_off(end);
    if body.len() > want {
        // Pipelined or extra bytes: one request per connection.
        return Ok(Err(Refusal::BadRequest));
    }
    while body.len() < want {
        let room = (want - body.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Ok((head, body)))
}

fn text(status: (u16, &str), body: &str, head_only: bool) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", &[], body, head_only)
}

const NOT_FOUND: (u16, &str) = (404, "Not Found");
const UNAVAILABLE: (u16, &str) = (503, "Service Unavailable");

/// A one-click URL's parts: the list, the member, the MAC.
struct Target {
    list: String,
    address: String,
    mac: String,
}

/// `/u/<list>/<user=host>/<mac>`, each part checked; `None` for anything else.
fn target(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/u/")?;
    let mut parts = rest.split('/');
    let (Some(list), Some(who), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let list = decode_segment(list)?;
    let (local, domain) = list.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || list.len() > 320 {
        return None;
    }
    let address = decode_recipient(who)?;
    if address.len() > 320
        || address
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>')
    {
        return None;
    }
    if mac.len() != 2 * one_click::MAC_BYTES || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Target {
        list,
        address,
        mac: mac.to_string(),
    })
}

/// The response to a well-formed request.
async fn answer(ctx: &Ctx, head: &http::Head, body: &[u8], peer: SocketAddr) -> Vec<u8> {
    let head_only = head.method == "HEAD";
    let is_post = head.method == "POST";
    if !is_post && head.method != "GET" && !head_only {
        return response(
            (405, "Method Not Allowed"),
            "text/plain; charset=utf-8",
            &[("Allow", "GET, HEAD, POST")],
            "method not allowed\n",
            false,
        );
    }
    let Some(t) = target(&head.path) else {
        return text(NOT_FOUND, "not found\n", head_only);
    };
    let info = match ctx.store.get(&t.list).await {
        Ok(Ok(info)) => info,
        Ok(Err(Status::Permanent(why))) if why == NO_SUCH_LIST => {
            return text(NOT_FOUND, "not found\n", head_only);
        }
        Ok(Err(s)) => {
            warn!("one-click: list=<{}>: moat-auth said {s:?}", t.list);
            return text(UNAVAILABLE, "try again later\n", head_only);
        }
        Err(e) => {
            warn!("one-click: list=<{}>: moat-auth: {e}", t.list);
            return text(UNAVAILABLE, "try again later\n", head_only);
        }
    };
    let key = one_click::list_key(&info.secret);
    if !one_click::check_mac(&key, &t.address, &t.mac) {
        info!(
            "one-click: list=<{}> address=<{}> from {}: refused: MAC does not match",
            t.list,
            t.address,
            peer.ip()
        );
        return text(NOT_FOUND, "not found\n", head_only);
    }
    if !is_post {
        return page(&t, head_only);
    }
    if head.content_length.is_none() {
        let s = Refusal::LengthRequired.status();
        return text(s, "length required\n", false);
    }
    if !http::is_one_click(head.content_type.as_deref(), body) {
        return text(
            (400, "Bad Request"),
            "the body must be List-Unsubscribe=One-Click\n",
            false,
        );
    }
    match ctx
        .store
        .unsubscribe(&t.list, &t.address, Roster::Member)
        .await
    {
        Ok(Ok(removed)) => {
            let how = if removed {
                "unsubscribed"
            } else {
                "already not a member"
            };
            info!(
                "one-click: list=<{}> address=<{}> from {}: {how}",
                t.list,
                t.address,
                peer.ip()
            );
            text(
                (200, "OK"),
                &format!("{} is no longer subscribed to {}.\n", t.address, t.list),
                false,
            )
        }
        Ok(Err(s)) => {
            warn!(
                "one-click: list=<{}> address=<{}>: moat-auth said {s:?}",
                t.list, t.address
            );
            text(UNAVAILABLE, "try again later\n", false)
        }
        Err(e) => {
            warn!(
                "one-click: list=<{}> address=<{}>: moat-auth: {e}",
                t.list, t.address
            );
            text(UNAVAILABLE, "try again later\n", false)
        }
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page a GET shows: what the button does, and the button (a POST to the same URL).
fn page(t: &Target, head_only: bool) -> Vec<u8> {
    let (list, address) = (escape(&t.list), escape(&t.address));
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>Unsubscribe from {list}</title></head>\n<body>\
         <h1>Unsubscribe from {list}</h1>\n\
         <p>Stop sending mail from {list} to {address}?</p>\n\
         <form method=\"post\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>\n</body></html>\n"
    );
    response(
        (200, "OK"),
        "text/html; charset=utf-8",
        &[(
            "Content-Security-Policy",
            "default-src 'none'; form-action 'self'",
        )],
        &body,
        head_only,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = target("/u/dev@x.test/bob%2Bx=far.example/0123456789abcdef0123456789abcdef")
            .expect("parses");
        assert_eq!(
            (t.list.as_str(), t.address.as_str()),
            ("dev@x.test", "bob+x@far.example")
        );
        for bad in [
            "/u/dev@x.test/bob=far.example",
            "/u/dev@x.test/bob=far.example/0123",
            "/u/dev@x.test/bob=far.example/0123456789abcdef0123456789abcdeg",
            "/u/dev@x.test/bob=far.example/0123456789abcdef0123456789abcdef/x",
            "/u/dev/bob=far.example/0123456789abcdef0123456789abcdef",
            "/u/dev@x.test/bob%20x=far.example/0123456789abcdef0123456789abcdef",
            "/x/dev@x.test/bob=far.example/0123456789abcdef0123456789abcdef",
            "/u/dev@x.test/bob%3Cx=far.example/0123456789abcdef0123456789abcdef",
        ] {
            assert!(target(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_page_escapes() {
        let t = Target {
            list: "dev@x.test".into(),
            address: "\"<b>\"@far.example".into(),
            mac: String::new(),
        };
        let p = String::from_utf8(page(&t, false)).expect("utf8");
        assert!(p.contains("&quot;&lt;b&gt;&quot;@far.example"), "{p}");
        assert!(p.contains("<form method=\"post\">"), "{p}");
    }

    #[tokio::test]
    async fn requests_are_read_bounded() {
        let mut ok: &[u8] = b"POST /u/a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let (head, body) = read_request(&mut ok).await.expect("io").expect("ok");
        assert_eq!(
            (head.method.as_str(), body.as_slice()),
            ("POST", &b"abc"[..])
        );
        let big = [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; 9000]].concat();
        let mut big: &[u8] = &big;
        assert_eq!(
            read_request(&mut big).await.expect("io"),
            Err(Refusal::HeaderTooLarge)
        );
        let mut extra: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nab";
        assert_eq!(
            read_request(&mut extra).await.expect("io"),
            Err(Refusal::BadRequest)
        );
        let mut short: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        assert!(read_request(&mut short).await.is_err());
    }
}
