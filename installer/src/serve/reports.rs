//! The children's confinement reports: once confined, a child sends one `C` record [Landlock
//! summary, seccomp summary] on its control channel (its setup socket, `common/src/child.rs`).
//! One task per child reads them and passes them to the supervisor's loop, which keeps the
//! latest for `moat status`. A child that never reports (an older build) just has none.
//!
//! SECURITY: this is the one thing the supervisor reads from a child, which may be compromised.
//! Frames are bounded by `wire::MAX_FRAME`; anything but a well-formed `C` record, or more than
//! `MAX_REPORTS` of them, ends the reading for that child (logged). The texts are kept only
//! after control characters are replaced and they are cut to `MAX_TEXT` characters, so nothing
//! a child says can forge a line in the status file or the admin's terminal.

use std::os::unix::net::UnixStream;

use moat_common::warn;
use moat_common::wire::Record;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::specs::Role;

/// Reports one child may send in its life (one is expected).
const MAX_REPORTS: usize = 16;
/// Characters kept of each summary.
const MAX_TEXT: usize = 200;

/// What one child said about its confinement.
#[derive(Debug)]
pub struct Report {
    pub role: Role,
    pub generation: u64,
    pub landlock: String,
    pub seccomp: String,
}

/// Starts reading `control` (the supervisor's end of a child's setup channel, setup already
/// sent) in a task; reports go to `tx`. The task ends at end-of-file (the child is gone); abort
/// it to stop reading earlier.
pub fn watch(
    control: &UnixStream,
    role: Role,
    generation: u64,
    tx: mpsc::UnboundedSender<Report>,
) -> std::io::Result<AbortHandle> {
    let stream = control.try_clone()?;
    stream.set_nonblocking(true)?;
    let mut stream = tokio::net::UnixStream::from_std(stream)?;
    let task = tokio::spawn(async move {
        let program = role.program();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut reports = 0;
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            loop {
                let record = match Record::decode(&buf) {
                    Ok(Some((record, used))) => {
                        buf.drain(..used);
                        record
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(
                            "{program}: a bad record on its control channel ({e}): ignoring it from now on"
                        );
                        return;
                    }
                };
                let Some((landlock, seccomp)) = parse(&record) else {
                    warn!(
                        "{program}: an unexpected {:?} record on its control channel: ignoring it \
                         from now on",
                        record.kind as char
                    );
                    return;
                };
                reports += 1;
                if reports > MAX_REPORTS {
                    warn!(
                        "{program}: more than {MAX_REPORTS} confinement reports: ignoring it from now on"
                    );
                    return;
                }
                let report = Report {
                    role,
                    generation,
                    landlock,
                    seccomp,
                };
                if tx.send(report).is_err() {
                    return;
                }
            }
        }
    });
    Ok(task.abort_handle())
}

/// The two summaries of a `C` record, cleaned.
fn parse(record: &Record) -> Option<(String, String)> {
    if record.kind != b'C' || record.fields.len() != 2 {
        return None;
    }
    let landlock = record.text(0).ok()?;
    let seccomp = record.text(1).ok()?;
    Some((clean(landlock), clean(seccomp)))
}

/// One short line: control characters become spaces, at most `MAX_TEXT` characters.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    if text.chars().count() > MAX_TEXT {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn frame(record: Record) -> Vec<u8> {
        record.encode().expect("encode")
    }

    #[test]
    fn reports_are_cleaned_and_bounded() {
        let ok = Record::new(b'C')
            .field("enforced (every right)")
            .field("filter: 61 calls");
        assert_eq!(
            parse(&ok),
            Some(("enforced (every right)".into(), "filter: 61 calls".into()))
        );
        let forged = Record::new(b'C')
            .field("ok\nmoat-auth 1 root\x1b[2J")
            .field("x".repeat(1000));
        let (landlock, seccomp) = parse(&forged).expect("a C record");
        assert!(!landlock.chars().any(char::is_control), "{landlock:?}");
        assert!(seccomp.chars().count() <= MAX_TEXT + 1);
        assert_eq!(parse(&Record::new(b'S').field("a").field("b")), None);
        assert_eq!(parse(&Record::new(b'C').field("only one")), None);
        assert_eq!(parse(&Record::new(b'C').field([0xff]).field("b")), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_report_arrives_and_garbage_ends_the_reading() {
        let (ours, mut theirs) = UnixStream::pair().expect("pair");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _task = watch(&ours, Role::Smtpd, 7, tx).expect("watch");
        // Split across writes: the frame is put together before it is decoded.
        let bytes = frame(Record::new(b'C').field("enforced").field("filter"));
        theirs.write_all(&bytes[..3]).expect("write");
        theirs.write_all(&bytes[3..]).expect("write");
        let report = rx.recv().await.expect("a report");
        assert_eq!((report.role, report.generation), (Role::Smtpd, 7));
        assert_eq!(
            (report.landlock.as_str(), report.seccomp.as_str()),
            ("enforced", "filter")
        );
        // A frame over the limit: the task stops and nothing more comes.
        theirs.write_all(&u32::MAX.to_be_bytes()).expect("write");
        theirs
            .write_all(&frame(Record::new(b'C').field("late").field("late")))
            .expect("write");
        assert!(rx.recv().await.is_none(), "the reader must have given up");
    }
}
