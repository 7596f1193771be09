//! What every request handler shares: where the queue and moat-auth are, the host name, and
//! the confirmation throttle. Also the two checks every command makes before it answers.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use moat_common::client::list_store::{
    Answer, ListInfo, ListStore, NO_SUCH_LIST, ROSTER_TOO_LARGE,
};
use moat_common::wire::Status;
use moat_common::{info, warn};

use crate::header;
use crate::request::Request;
use crate::throttle::Throttle;

pub struct Ctx {
    pub queue_socket: PathBuf,
    pub hostname: String,
    /// The lists' data, through moat-auth.
    pub store: ListStore,
    pub throttle: Throttle,
    /// moat-lists' own folder (`[paths] lists`): `<data_dir>/<list@domain>/` holds that list's
    /// held posts, archive and digest state. Owned by moat-lists, mode 0700.
    pub data_dir: PathBuf,
    pub policy: Policy,
    /// The one-click unsubscribe endpoint's base URL (`https://host[:port]`, no trailing `/`),
    /// when one is served (`[lists] web_url`).
    pub web_url: Option<String>,
    /// `IP:PORT` of the DNS server for DMARC lookups (`[remote] nameserver`); `None` = the
    /// system's resolv.conf.
    pub nameserver: Option<String>,
}

/// The `[lists]` policies (common/src/config/lists.rs has the meanings and defaults).
#[derive(Debug, Clone)]
pub struct Policy {
    pub bounce_threshold: u32,
    pub bounce_window_secs: u64,
    pub held_expiry_secs: u64,
    pub digest_posts: u32,
    pub digest_interval_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        let l = moat_common::config::Lists::default();
        Policy {
            bounce_threshold: l.bounce_threshold,
            bounce_window_secs: l.bounce_window_secs,
            held_expiry_secs: l.held_expiry_secs,
            digest_posts: l.digest_posts,
            digest_interval_secs: l.digest_interval_secs,
        }
    }
}

/// The `Z` text when moat-auth cannot answer for the lists.
pub const STORE_DOWN: &str = "4.3.0 list store unavailable";

impl Ctx {
    /// The list's settings, or the verdict to give when they cannot be had.
    pub async fn list(&self, req: &Request) -> Result<ListInfo, Status> {
        let answer = self.store.get(&req.list).await;
        store_result(req, "list settings", answer)
    }
}

/// A store answer as a value, or as this request's verdict: a list that vanished since moat-auth
/// resolved it bounces (`D`), anything else waits (`Z`).
pub fn store_result<T>(
    req: &Request,
    what: &str,
    answer: std::io::Result<Answer<T>>,
) -> Result<T, Status> {
    let qid = req.queue_id.as_str();
    match answer {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Status::Permanent(t))) if t == NO_SUCH_LIST => {
            info!(id = qid; "list=<{}>: no such list", req.list);
            Err(Status::Permanent("5.1.1 no such mailing list".into()))
        }
        // Not the store's fault and not going to change by waiting: the sender is told.
        Ok(Err(Status::Permanent(t))) if t == ROSTER_TOO_LARGE => {
            warn!(id = qid; "list=<{}>: {what}: {t}", req.list);
            Err(Status::Permanent(t))
        }
        Ok(Err(s)) => {
            let t = match &s {
                Status::Ok(t) | Status::Temporary(t) | Status::Permanent(t) => t,
            };
            warn!(id = qid; "list=<{}>: {what}: moat-auth said {t}", req.list);
            Err(Status::Temporary(STORE_DOWN.into()))
        }
        Err(e) => {
            warn!(id = qid; "list=<{}>: {what}: moat-auth: {e}", req.list);
            Err(Status::Temporary(STORE_DOWN.into()))
        }
    }
}

/// The message's header, unless the request must not be answered: the null sender or a
/// machine-sent message is accepted (`K`) and dropped with a log line, as ezmlm does (robots
/// answering robots is how mail loops start).
pub async fn screen(req: &Request, what: &str, file: Arc<File>) -> Result<Vec<u8>, Status> {
    let qid = req.queue_id.as_str();
    if req.sender.is_empty() {
        info!(id = qid; "list=<{}> {what} from <>: not answered", req.list);
        return Err(Status::Ok("not answered (null sender)".into()));
    }
    let (head, _) = read_header(req, file).await?;
    if let Some(why) = header::automatic(&head) {
        info!(id = qid; "list=<{}> {what} from=<{}>: not answered ({why})", req.list, req.sender);
        return Err(Status::Ok(format!("not answered ({why})")));
    }
    Ok(head)
}

/// The message's header (bounded) and where its body starts (`header::read`), or `Z` when it
/// cannot be read.
pub async fn read_header(req: &Request, file: Arc<File>) -> Result<(Vec<u8>, Option<u64>), Status> {
    let qid = req.queue_id.as_str();
    match tokio::task::spawn_blocking(move || header::read(&file)).await {
        Ok(Ok(head)) => Ok(head),
        Ok(Err(e)) => {
            warn!(id = qid; "list=<{}>: cannot read the message: {e}", req.list);
            Err(Status::Temporary("4.3.0 cannot read the message".into()))
        }
        Err(e) => {
            warn!(id = qid; "list=<{}>: {e}", req.list);
            Err(Status::Temporary("4.3.0 internal error".into()))
        }
    }
}

/// The verdict for a reply of ours handed to the queue.
pub fn queued(req: &Request, what: &str, to: &str, result: std::io::Result<Status>) -> Status {
    let qid = req.queue_id.as_str();
    match result {
        Ok(Status::Ok(new_id)) => {
            info!(id = qid; "list=<{}> {what} sent to=<{to}> as {new_id}", req.list);
            Status::Ok(format!("{what} sent ({new_id})"))
        }
        Ok(Status::Permanent(why) | Status::Temporary(why)) => {
            warn!(id = qid; "list=<{}> {what} to=<{to}>: the queue refused it: {why}", req.list);
            Status::Temporary("4.3.0 cannot queue the reply".into())
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> {what} to=<{to}>: the queue: {e}", req.list);
            Status::Temporary("4.3.0 cannot queue the reply".into())
        }
    }
}

/// `<data_dir>/<list>/`, the folder of one list's own files (held posts, replay records, the
/// archive), after checking again that the list address is a safe file name: it crossed a
/// socket, and a `/`, `..` or NUL would lead out of `data_dir`.
pub fn list_folder(data_dir: &std::path::Path, list: &str) -> std::io::Result<PathBuf> {
    let safe = !list.is_empty()
        && list.len() <= 255
        && list.contains('@')
        && !list.starts_with('.')
        && !list.contains("..")
        && !list.bytes().any(|b| b == b'/' || b == 0);
    if !safe {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad list address {list:?}"),
        ));
    }
    Ok(data_dir.join(list))
}
