//! Read deadlines (RFC 5321 4.5.3.2), as total deadlines rather than per-read timeouts.
//!
//! A per-read timeout lets a client that sends one byte every few seconds hold a session (and a
//! connection slot) forever. Here every unit of work has a deadline fixed when it starts:
//! - a command line (also the greeting's answer and AUTH lines): `timeout_command` from our
//!   previous reply, however the bytes trickle in;
//! - message data: `timeout_data` for each `DATA_PROGRESS` octets. A slow but honest link
//!   (a few hundred bytes a second) finishes any message; a client dribbling bytes does not.
//!
//! SECURITY: the deadline only moves when the client completes something (a command answered,
//! a block of data received); a trickle of bytes never moves it.

use tokio::time::Instant;

use super::settings::Timeouts;
use crate::proto::Phase;

/// Octets of message data that earn a fresh data deadline (one maximal text line).
pub const DATA_PROGRESS: usize = 1000;

#[derive(Debug)]
pub struct Clock {
    timeouts: Timeouts,
    deadline: Instant,
    data_since: usize,
    /// A reply was produced since the last read: the client completed a command.
    answered: bool,
}

impl Clock {
    /// The clock of a new session, waiting for its first command.
    pub fn new(timeouts: Timeouts) -> Clock {
        Clock {
            timeouts,
            deadline: Instant::now() + timeouts.command,
            data_since: 0,
            answered: false,
        }
    }

    /// A reply was produced (a command completed).
    pub fn answered(&mut self) {
        self.answered = true;
    }

    /// Called before waiting for input in `phase`: starts a fresh deadline if the client
    /// completed something since the last wait.
    pub fn before_read(&mut self, phase: Phase) {
        if std::mem::take(&mut self.answered) {
            self.restart(phase);
        }
    }

    /// `n` octets arrived in `phase`.
    pub fn received(&mut self, phase: Phase, n: usize) {
        if phase == Phase::Data {
            self.data_since += n;
            if self.data_since >= DATA_PROGRESS {
                self.restart(phase);
            }
        }
    }

    fn restart(&mut self, phase: Phase) {
        self.data_since = 0;
        let limit = match phase {
            Phase::Data => self.timeouts.data,
            Phase::Command | Phase::Auth | Phase::Tls | Phase::Closed => self.timeouts.command,
        };
        self.deadline = Instant::now() + limit;
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeouts() -> Timeouts {
        Timeouts {
            command: Duration::from_secs(300),
            data: Duration::from_secs(180),
            tls: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_trickle_does_not_move_the_deadline() {
        let mut c = Clock::new(timeouts());
        let first = c.deadline();
        for _ in 0..100 {
            c.received(Phase::Command, 1);
            c.before_read(Phase::Command);
        }
        assert_eq!(c.deadline(), first);
        std::thread::sleep(Duration::from_millis(2));
        c.answered();
        c.before_read(Phase::Command);
        assert!(c.deadline() > first);
    }

    #[test]
    fn data_needs_progress() {
        let mut c = Clock::new(timeouts());
        c.answered();
        c.before_read(Phase::Data);
        let start = c.deadline();
        assert!(start < Instant::now() + Duration::from_secs(181));
        std::thread::sleep(Duration::from_millis(2));
        c.received(Phase::Data, DATA_PROGRESS - 1);
        c.before_read(Phase::Data);
        assert_eq!(c.deadline(), start);
        c.received(Phase::Data, 1);
        assert!(c.deadline() > start);
    }
}
