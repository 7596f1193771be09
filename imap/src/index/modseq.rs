//! MODSEQ allocation (RFC 7162): every new value is `max(highest + 1, now in microseconds)`.
//!
//! Why the clock: HIGHESTMODSEQ must never go backwards, even when the index is lost, corrupted
//! or loses its last writes in a crash (log appends are not fsynced; the index is a cache). A
//! value taken from the clock is larger than anything handed out earlier as long as allocation
//! does not outrun the clock for longer than a reboot takes (one value per microsecond; a batch
//! shares one value), so a rebuilt index needs no record of the old values. The clock stepping
//! back is harmless: `highest + 1` still wins. Values stay far below RFC 7162's 2^63 - 1 limit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Largest MODSEQ RFC 7162 allows (a positive 63-bit number).
pub(crate) const MAX_MODSEQ: u64 = (1 << 63) - 1;

/// Microseconds since the epoch (1 if the clock is before 1970).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(MAX_MODSEQ))
        .unwrap_or(1)
        .max(1)
}

/// The MODSEQ for the next change, given the highest one handed out so far.
pub(crate) fn next_modseq(highest: u64) -> u64 {
    highest.saturating_add(1).max(now_micros()).min(MAX_MODSEQ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_clock_and_never_goes_back() {
        let a = next_modseq(0);
        assert!(a >= 1_600_000_000_000_000, "seeded from the clock: {a}");
        let far = now_micros() + 10_000_000;
        assert_eq!(next_modseq(far), far + 1, "ahead of the clock: +1");
        assert!(next_modseq(a) > a);
        assert_eq!(next_modseq(MAX_MODSEQ), MAX_MODSEQ, "saturates");
    }
}
