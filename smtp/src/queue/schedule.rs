//! The retry schedule: the delay after attempt n is entry n, and the last entry repeats until the
//! queue lifetime ends (docs/PROTOCOLS.md "moat-queue"). The supervisor hands it over as the
//! setting `retry_schedule`, seconds joined by commas (`60,300,900,1800,3600,7200,14400`, the
//! default); tests shrink it to seconds.
//!
//! Why a list and not a formula: the first retries catch the common short outages (greylisting,
//! a restart), the later ones should be rare; admins know this ladder from Postfix and Exim and
//! can write it down directly.

use moat_common::config::{DEFAULT_RETRY_SCHEDULE, MAX_RETRY_ENTRIES};

/// Delays in seconds, at least one, each at least 1 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    delays: Vec<u64>,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            delays: DEFAULT_RETRY_SCHEDULE.to_vec(),
        }
    }
}

impl Schedule {
    /// Parses the setting: seconds joined by `,`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let delays = text
            .split(',')
            .map(|entry| match entry.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => Ok(secs),
                _ => Err(format!(
                    "retry_schedule entry {entry:?} is not a number of seconds of at least 1"
                )),
            })
            .collect::<Result<Vec<u64>, String>>()?;
        if delays.len() > MAX_RETRY_ENTRIES {
            return Err(format!(
                "retry_schedule has more than {MAX_RETRY_ENTRIES} entries"
            ));
        }
        Ok(Schedule { delays })
    }

    /// Seconds to wait after attempt `attempt` (1 = the first): entry `attempt`, counting from
    /// 1, or the last entry once the list is used up.
    pub fn delay_after(&self, attempt: u32) -> u64 {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or(DEFAULT_RETRY_SCHEDULE[0])
    }

    /// The first delay: used when the queue itself failed and no attempt count is known.
    pub fn first(&self) -> u64 {
        self.delay_after(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ladder_then_every_four_hours() {
        let s = Schedule::default();
        let got: Vec<u64> = (1..=9).map(|n| s.delay_after(n)).collect();
        assert_eq!(
            got,
            [60, 300, 900, 1800, 3600, 7200, 14_400, 14_400, 14_400]
        );
        assert_eq!(s.delay_after(u32::MAX), 14_400);
        assert_eq!(s.delay_after(0), 60, "no attempt yet counts as the first");
        assert_eq!(s.first(), 60);
    }

    #[test]
    fn parse_the_setting() {
        let s = Schedule::parse("1, 2,3").expect("valid");
        assert_eq!(
            (1..=5).map(|n| s.delay_after(n)).collect::<Vec<_>>(),
            [1, 2, 3, 3, 3]
        );
        assert_eq!(Schedule::parse("7").expect("one entry").delay_after(4), 7);
        for bad in ["", "1,,2", "0", "1,-2", "1m", "1,x"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
        let long = vec!["1"; MAX_RETRY_ENTRIES + 1].join(",");
        assert!(Schedule::parse(&long).is_err());
        let max = vec!["1"; MAX_RETRY_ENTRIES].join(",");
        assert!(Schedule::parse(&max).is_ok());
    }
}
