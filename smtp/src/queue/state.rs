//! Per-message delivery state on disk: the done marks (`done/<id>`) and the retry record
//! (`retry/<id>`).
//!
//! `done/<id>` gets one line appended (and fsynced) per finished recipient, never rewritten:
//!
//! ```text
//! 0 K delivered to example.test/bob          recipient 0 delivered
//! 1 D 5.1.1 no such user                      recipient 1 failed for good (status first)
//! B 1TW2KQ8F0A3C1234                          the bounce for this message was queued under this id
//! ```
//!
//! A torn last line (a crash in the middle of an append) has no newline and is ignored: that
//! recipient is simply delivered again (at least once). `retry/<id>` is one line,
//! `<attempts> <next try, unix seconds> <last temporary error>`, replaced atomically.
//!
//! SECURITY: texts come from moat-local; they are cleaned (no control characters, bounded) before
//! they are written, so a line cannot be forged. Indices out of range and unknown lines are
//! ignored, not trusted.

use std::collections::BTreeMap;

use super::envelope::clean;

/// The longest text kept per mark.
pub const MAX_TEXT: usize = 500;

/// How one recipient ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Delivered (`K`).
    Delivered(String),
    /// Failed for good (`D`); the text starts with an enhanced status code.
    Failed(String),
}

/// What `done/<id>` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Recipient index → how it ended (the first mark for an index wins).
    pub marks: BTreeMap<usize, Mark>,
    /// The id of the bounce already queued for this message, if any.
    pub bounce: Option<String>,
}

/// One done line.
pub fn mark_line(index: usize, mark: &Mark) -> Vec<u8> {
    let (letter, text) = match mark {
        Mark::Delivered(t) => ('K', t),
        Mark::Failed(t) => ('D', t),
    };
    format!("{index} {letter} {}\n", clean(text, MAX_TEXT)).into_bytes()
}

/// The line recording that a bounce was queued.
pub fn bounce_line(bounce_id: &str) -> Vec<u8> {
    format!("B {}\n", clean(bounce_id, 64)).into_bytes()
}

impl Done {
    /// Parses a done file for a message with `recipients` recipients.
    pub fn parse(bytes: &[u8], recipients: usize) -> Done {
        let mut done = Done::default();
        let text = String::from_utf8_lossy(bytes);
        // Only complete lines count: a torn last line is dropped.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        for line in complete.split('\n') {
            let mut parts = line.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("B"), Some(id), None) if super::id::is_valid(id) => {
                    done.bounce = Some(id.to_string());
                }
                (Some(index), Some(letter), Some(text)) => {
                    let Ok(index) = index.parse::<usize>() else {
                        continue;
                    };
                    let mark = match letter {
                        "K" => Mark::Delivered(text.to_string()),
                        "D" => Mark::Failed(text.to_string()),
                        _ => continue,
                    };
                    if index < recipients {
                        done.marks.entry(index).or_insert(mark);
                    }
                }
                _ => {}
            }
        }
        done
    }
}

/// The retry record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    /// Unix seconds.
    pub next_try: u64,
    pub last_error: String,
}

impl Retry {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {}\n",
            self.attempts,
            self.next_try,
            clean(&self.last_error, MAX_TEXT)
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Retry> {
        let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
        let mut parts = text.splitn(3, ' ');
        Some(Retry {
            attempts: parts.next()?.parse().ok()?,
            next_try: parts.next()?.parse().ok()?,
            last_error: parts.next().unwrap_or("").to_string(),
        })
    }
}

/// The delay before retry number `attempts + 1`: `min` doubling per attempt, capped at one hour
/// (or at `min` when that is longer).
pub fn backoff(min_secs: u64, attempts: u32) -> u64 {
    let cap = min_secs.max(3600);
    let shift = attempts.saturating_sub(1).min(32);
    min_secs.saturating_mul(1u64 << shift).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_torn_lines_are_ignored() {
        let mut file = Vec::new();
        file.extend(mark_line(0, &Mark::Delivered("ok".into())));
        file.extend(mark_line(2, &Mark::Failed("5.1.1 no such\r\nuser".into())));
        file.extend(mark_line(0, &Mark::Failed("later duplicate".into())));
        file.extend(mark_line(9, &Mark::Delivered("out of range".into())));
        file.extend(bounce_line("0123456789ABCDEF"));
        file.extend(b"garbage\n1 K torn");
        let done = Done::parse(&file, 3);
        assert_eq!(done.marks.len(), 2);
        assert_eq!(done.marks[&0], Mark::Delivered("ok".into()));
        assert_eq!(done.marks[&2], Mark::Failed("5.1.1 no such??user".into()));
        assert_eq!(done.bounce.as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(Done::parse(b"", 3), Done::default());
    }

    #[test]
    fn retry_round_trip_and_backoff() {
        let r = Retry {
            attempts: 3,
            next_try: 1_700_000_060,
            last_error: "remote delivery is not available yet".into(),
        };
        assert_eq!(Retry::decode(&r.encode()), Some(r));
        assert_eq!(Retry::decode(b"3 x y\n"), None);
        assert_eq!(backoff(60, 1), 60);
        assert_eq!(backoff(60, 2), 120);
        assert_eq!(backoff(60, 7), 3600);
        assert_eq!(backoff(60, 1000), 3600);
        assert_eq!(backoff(1, 3), 4);
        assert_eq!(backoff(7200, 5), 7200);
    }
}
