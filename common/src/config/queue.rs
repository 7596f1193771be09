//! The `[queue]` section: how long a message may wait, when it is tried again, and when its
//! sender hears that it is late.
//!
//! ```toml
//! [queue]
//! lifetime = "5d"                                          # then the rest bounces
//! retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]  # the last entry repeats
//! delay_warning = "4h"                                     # "0" or "off": no delay notices
//! ```
//!
//! `retry_min = "1m"` is the older way to say "start at this and double up to an hour" (the
//! exponential backoff the queue had first); it is kept so existing files keep their meaning, and
//! naming both is an error.

use serde::Deserialize;

use super::parse_duration;

/// The retry schedule when the file names none: the delay after attempt n is entry n, the last
/// entry repeating (1m, 5m, 15m, 30m, 1h, 2h, then every 4h).
pub const DEFAULT_RETRY_SCHEDULE: [u64; 7] = [60, 300, 900, 1800, 3600, 7200, 14_400];
/// The most entries a schedule may have (a longer list is a mistake, not a policy).
pub const MAX_RETRY_ENTRIES: usize = 100;
/// How long a message may wait by default (5 days).
pub const DEFAULT_LIFETIME_SECS: u64 = 5 * 86_400;
/// When the sender is told a message is late, by default.
pub const DEFAULT_DELAY_WARNING_SECS: u64 = 4 * 3600;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    lifetime: Option<String>,
    retry_min: Option<String>,
    retry_schedule: Option<Vec<String>>,
    delay_warning: Option<String>,
}

/// The parsed `[queue]` section, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QueueTimes {
    pub lifetime_secs: u64,
    /// At least one entry, each at least 1 s.
    pub retry_schedule: Vec<u64>,
    /// 0 = no delay notices.
    pub delay_warning_secs: u64,
}

impl RawQueue {
    pub(super) fn parse(self) -> Result<QueueTimes, String> {
        let lifetime_secs = match self.lifetime.as_deref() {
            None => DEFAULT_LIFETIME_SECS,
            Some(text) => parse_duration(text).ok_or_else(|| {
                format!(
                    "queue.lifetime {text:?} is not a duration such as \"5d\", \"36h\" or \"90m\""
                )
            })?,
        };
        let retry_schedule = match (self.retry_schedule, self.retry_min.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(
                    "queue.retry_min and queue.retry_schedule both given: keep retry_schedule"
                        .into(),
                );
            }
            (Some(list), None) => schedule(&list)?,
            (None, Some(text)) => {
                let min = parse_duration(text).filter(|s| *s > 0).ok_or_else(|| {
                    format!(
                        "queue.retry_min {text:?} is not a duration of at least 1 s such as \"1m\""
                    )
                })?;
                doubling(min)
            }
            (None, None) => DEFAULT_RETRY_SCHEDULE.to_vec(),
        };
        let delay_warning_secs = match self.delay_warning.as_deref().map(str::trim) {
            None => DEFAULT_DELAY_WARNING_SECS,
            Some("off") => 0,
            Some(text) => parse_duration(text).ok_or_else(|| {
                format!(
                    "queue.delay_warning {text:?} is not a duration such as \"4h\", \
                     or \"off\""
                )
            })?,
        };
        Ok(QueueTimes {
            lifetime_secs,
            retry_schedule,
            delay_warning_secs,
        })
    }
}

/// `["1m", "5m", ...]` in seconds: 1 to `MAX_RETRY_ENTRIES` entries, each at least 1 s.
fn schedule(list: &[String]) -> Result<Vec<u64>, String> {
    if list.is_empty() || list.len() > MAX_RETRY_ENTRIES {
        return Err(format!(
            "queue.retry_schedule must have 1 to {MAX_RETRY_ENTRIES} entries (got {})",
            list.len()
        ));
    }
    list.iter()
        .map(|text| {
            parse_duration(text).filter(|s| *s > 0).ok_or_else(|| {
                format!(
                    "queue.retry_schedule entry {text:?} is not a duration of at least 1 s \
                     such as \"15m\""
                )
            })
        })
        .collect()
}

/// The schedule `retry_min` stands for: `min` doubling per attempt up to an hour (or `min`
/// itself when that is longer), which then repeats.
pub fn doubling(min: u64) -> Vec<u64> {
    let cap = min.max(3600);
    let mut out = vec![min];
    while let Some(&last) = out.last()
        && last < cap
    {
        out.push(last.saturating_mul(2).min(cap));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<QueueTimes, String> {
        let raw: RawQueue = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.parse()
    }

    #[test]
    fn defaults() {
        let t = parse("").expect("empty section");
        assert_eq!(t.lifetime_secs, 432_000);
        assert_eq!(
            t.retry_schedule,
            vec![60, 300, 900, 1800, 3600, 7200, 14_400]
        );
        assert_eq!(t.delay_warning_secs, 14_400);
    }

    #[test]
    fn schedules_and_warnings() {
        let t = parse("retry_schedule = [\"1s\", \"2s\", \"3\"]\ndelay_warning = \"2s\"\n")
            .expect("valid");
        assert_eq!((t.retry_schedule, t.delay_warning_secs), (vec![1, 2, 3], 2));
        for off in ["\"off\"", "\"0\"", "\"0s\""] {
            let t = parse(&format!("delay_warning = {off}\n")).expect(off);
            assert_eq!(t.delay_warning_secs, 0, "{off}");
        }
        assert_eq!(
            parse("retry_min = \"1m\"\n")
                .expect("legacy")
                .retry_schedule,
            vec![60, 120, 240, 480, 960, 1920, 3600]
        );
        for (text, needle) in [
            ("retry_schedule = []\n", "1 to 100 entries"),
            ("retry_schedule = [\"1m\", \"0s\"]\n", "\"0s\""),
            ("retry_schedule = [\"soon\"]\n", "\"soon\""),
            ("retry_schedule = [\"1m\"]\nretry_min = \"1m\"\n", "both"),
            ("retry_min = \"0\"\n", "at least 1 s"),
            ("delay_warning = \"later\"\n", "delay_warning"),
            ("retry_schedule = \"1m\"\n", "sequence"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
        let long = format!("retry_schedule = [{}]\n", vec!["\"1s\""; 101].join(","));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn doubling_is_the_old_backoff() {
        assert_eq!(doubling(1)[..4], [1, 2, 4, 8]);
        assert_eq!(doubling(1).last(), Some(&3600));
        assert_eq!(doubling(7200), vec![7200]);
        assert_eq!(doubling(3600), vec![3600]);
        assert_eq!(doubling(1000), vec![1000, 2000, 3600]);
    }
}
