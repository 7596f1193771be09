//! Per-message delivery state on disk: the done marks (`done/<id>`) and the retry record
//! (`retry/<id>`).
//!
//! `done/<id>` gets one line appended (and fsynced) per finished recipient, never rewritten:
//!
//! ```text
//! 0 K delivered to example.test/bob          recipient 0 delivered
//! 1 D 5.1.1 no such user                      recipient 1 failed for good (status first)
//! B 1TW2KQ8F0A3C1234                          the bounce for this message was queued under this id
//! B 1TW2KQ8F0A3C1235 2                        VERP: recipient 2's own bounce was queued
//! W 1TW2KQ8F0A3C5678                          the delay notice went under this id (`W -`: none due)
//! ```
//!
//! A torn last line (a crash in the middle of an append) has no newline and is ignored: that
//! recipient is simply delivered again (at least once). The `W` line is written before its notice
//! is committed, the `B` line after its bounce: a crash in between loses a delay notice (advice)
//! rather than send it twice, but sends a bounce twice rather than lose it.
//! `retry/<id>` is one line, `<attempts> <next try, unix seconds> <last temporary error>`,
//! replaced atomically; the schedule that sets the next try is `schedule.rs`.
//!
//! SECURITY: texts come from moat-local; they are cleaned (no control characters, bounded) before
//! they are written, so a line cannot be forged. Indices out of range and unknown lines are
//! ignored, not trusted.

use std::collections::{BTreeMap, BTreeSet};

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
    /// VERP messages bounce per recipient: the indices whose bounce is already queued.
    pub bounced: BTreeSet<usize>,
    /// The delay notice, once decided (it is sent at most once per message).
    pub delay_notice: Option<DelayNotice>,
}

/// What was decided about a message's one delay notice (`W` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelayNotice {
    /// Queued under this id.
    Queued(String),
    /// Due, but nobody was to get it (null sender, NOTIFY without DELAY).
    NotSent,
}

/// One done line.
pub fn mark_line(index: usize, mark: &Mark) -> Vec<u8> {
    let (letter, text) = match mark {
        Mark::Delivered(t) => ('K', t),
        Mark::Failed(t) => ('D', t),
    };
    format!("{index} {letter} {}\n", clean(text, MAX_TEXT)).into_bytes()
}

/// The line recording that a bounce was queued: for the whole message, or (VERP) for the
/// recipient `index` alone.
pub fn bounce_line(bounce_id: &str, index: Option<usize>) -> Vec<u8> {
    match index {
        None => format!("B {}\n", clean(bounce_id, 64)).into_bytes(),
        Some(i) => format!("B {} {i}\n", clean(bounce_id, 64)).into_bytes(),
    }
}

/// The line recording the delay notice decision.
pub fn delay_notice_line(notice: &DelayNotice) -> Vec<u8> {
    match notice {
        DelayNotice::Queued(id) => format!("W {}\n", clean(id, 64)).into_bytes(),
        DelayNotice::NotSent => b"W -\n".to_vec(),
    }
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
                (Some("B"), Some(id), Some(index)) if super::id::is_valid(id) => {
                    if let Ok(index) = index.parse::<usize>()
                        && index < recipients
                    {
                        done.bounced.insert(index);
                    }
                }
                (Some("W"), Some("-"), None) => {
                    done.delay_notice.get_or_insert(DelayNotice::NotSent);
                }
                (Some("W"), Some(id), None) if super::id::is_valid(id) => {
                    done.delay_notice
                        .get_or_insert_with(|| DelayNotice::Queued(id.to_string()));
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
        file.extend(bounce_line("0123456789ABCDEF", None));
        file.extend(bounce_line("0123456789ABCDEH", Some(1)));
        file.extend(b"B 0123456789ABCDEJ 7\nB 0123456789ABCDEK x\n");
        file.extend(delay_notice_line(&DelayNotice::Queued(
            "0123456789ABCDEG".into(),
        )));
        file.extend(delay_notice_line(&DelayNotice::NotSent));
        file.extend(b"garbage\n1 K torn");
        let done = Done::parse(&file, 3);
        assert_eq!(done.marks.len(), 2);
        assert_eq!(done.marks[&0], Mark::Delivered("ok".into()));
        assert_eq!(done.marks[&2], Mark::Failed("5.1.1 no such??user".into()));
        assert_eq!(done.bounce.as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(
            done.bounced,
            BTreeSet::from([1]),
            "out of range or bad: ignored"
        );
        assert_eq!(
            done.delay_notice,
            Some(DelayNotice::Queued("0123456789ABCDEG".into())),
            "the first decision stands"
        );
        assert_eq!(Done::parse(b"", 3), Done::default());
        let torn = [delay_notice_line(&DelayNotice::NotSent), b"W 0123".to_vec()].concat();
        assert_eq!(
            Done::parse(&torn, 1).delay_notice,
            Some(DelayNotice::NotSent)
        );
        assert_eq!(Done::parse(b"W ../../x\nW\n", 1).delay_notice, None);
    }

    #[test]
    fn retry_round_trip() {
        let r = Retry {
            attempts: 3,
            next_try: 1_700_000_060,
            last_error: "remote delivery is not available yet".into(),
        };
        assert_eq!(Retry::decode(&r.encode()), Some(r));
        assert_eq!(Retry::decode(b"3 x y\n"), None);
    }
}
