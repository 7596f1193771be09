//! End-to-end latency of relayed messages: from the moment the client sent MAIL FROM to the
//! moment the sink read the final dot, both on this process's monotonic clock.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::sink::Arrivals;
use crate::smtp::measure::median;

#[derive(Clone, Copy)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// `started[session][index]` against the sink's first arrival of (session, index).
    pub fn of(started: &[Vec<Instant>], arrivals: &Arrivals) -> Result<Latency> {
        let mut all = Vec::with_capacity(arrivals.len());
        for (session, starts) in started.iter().enumerate() {
            for (index, start) in starts.iter().enumerate() {
                let Some(at) = arrivals.get(&(session, index)) else {
                    bail!("message {session}/{index} never reached the sink");
                };
                all.push(at.saturating_duration_since(*start));
            }
        }
        if all.is_empty() {
            bail!("no message to time");
        }
        all.sort();
        let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
        Ok(Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    /// Each percentile's median over the rounds.
    pub fn median(rounds: &[Latency]) -> Latency {
        let of = |f: fn(&Latency) -> Duration| median(rounds.iter().map(f).collect());
        Latency {
            p50: of(|l| l.p50),
            p90: of(|l| l.p90),
            p99: of(|l| l.p99),
            max: of(|l| l.max),
        }
    }

    /// Milliseconds, for a report's cells.
    pub fn cells(&self) -> [String; 4] {
        [self.p50, self.p90, self.p99, self.max].map(|d| format!("{:.0}", 1000.0 * d.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pair_each_start_with_its_arrival() {
        let t0 = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        // Session 0 sends 100 messages, message i arrives i+1 ms after its start.
        let started = vec![(0..100u64).map(|i| t0 + ms(i)).collect::<Vec<_>>()];
        let arrivals: Arrivals = (0..100u64)
            .map(|i| ((0, i as usize), t0 + ms(2 * i + 1)))
            .collect();
        let l = Latency::of(&started, &arrivals).expect("latency");
        assert_eq!(
            (l.p50, l.p90, l.p99, l.max),
            (ms(51), ms(90), ms(99), ms(100))
        );
        let mut missing = arrivals.clone();
        missing.remove(&(0, 5));
        assert!(Latency::of(&started, &missing).is_err());
    }
}
