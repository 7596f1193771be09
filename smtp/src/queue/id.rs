//! Queue ids: 16 characters `[0-9A-Z]`, unique, and sortable by arrival time.
//!
//! Layout (base 36, most significant first): 7 characters of seconds since the epoch, 4 of a
//! per-process sequence number (starting at a random value), 5 of the process id. One queue
//! process runs per queue directory, so time + sequence + pid cannot repeat within a process, and
//! the store still refuses an id whose files already exist (a restart in the same second with the
//! same pid).
//!
//! SECURITY: ids name files. Every id that comes from a peer (admin requests) is checked with
//! `is_valid` before it is joined to a path, so `../x` or `a/b` can never reach the file system.

use std::sync::atomic::{AtomicU32, Ordering};

/// The length of every queue id.
pub const LEN: usize = 16;

const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SEQ_SPACE: u32 = 36 * 36 * 36 * 36;
const PID_SPACE: u32 = 36 * 36 * 36 * 36 * 36;
const TIME_SPACE: u64 = 36u64.pow(7);

/// Makes ids for one process.
#[derive(Debug)]
pub struct IdGen {
    seq: AtomicU32,
    pid: u32,
}

impl Default for IdGen {
    fn default() -> IdGen {
        IdGen::new()
    }
}

impl IdGen {
    pub fn new() -> IdGen {
        IdGen {
            seq: AtomicU32::new(rand::random::<u32>() % SEQ_SPACE),
            pid: std::process::id(),
        }
    }

    /// A new id for a message arriving at `unix_secs`.
    pub fn next(&self, unix_secs: u64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) % SEQ_SPACE;
        let mut id = String::with_capacity(LEN);
        push_base36(&mut id, unix_secs % TIME_SPACE, 7);
        push_base36(&mut id, u64::from(seq), 4);
        push_base36(&mut id, u64::from(self.pid % PID_SPACE), 5);
        id
    }
}

fn push_base36(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 8];
    for slot in digits[..width].iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    out.extend(digits[..width].iter().map(|&b| b as char));
}

/// Whether `id` has the shape of a queue id (and so is safe to use as a file name).
pub fn is_valid(id: &str) -> bool {
    id.len() == LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_unique_and_sorted_by_time() {
        let ids = IdGen::new();
        let a = ids.next(1_700_000_000);
        let b = ids.next(1_700_000_000);
        let c = ids.next(1_700_000_001);
        assert!(is_valid(&a) && is_valid(&b) && is_valid(&c), "{a} {b} {c}");
        assert_ne!(a, b);
        assert!(a[..7] < c[..7]);
        let many: std::collections::HashSet<String> =
            (0..10_000).map(|_| ids.next(1_700_000_000)).collect();
        assert_eq!(many.len(), 10_000);
    }

    #[test]
    fn hostile_ids_are_refused() {
        for bad in [
            "",
            "../../etc/passwd",
            "0123456789abcdef",
            "0123456789ABCDE/",
            "0123456789ABCDEFG",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(is_valid("0123456789ABCDEF"));
    }
}
