//! The `maildirsize` file format (Maildir++ quota, Courier's README.maildirquota): parsing and the
//! limit/usage types. The policy (when to recalculate, how deliveries are checked) is in quota.rs.
//!
//! ```text
//! 1000000S,1000C        <- quota definition: byte limit S, message-count limit C (0 or absent = none)
//! 123456 42             <- usage at the last recalculation: bytes, messages
//! 4096 1                <- one line appended per delivery ...
//! -4096 -1              <- ... and per expunge
//! ```
//! Usage is the sum of all lines after the first. Any malformed line makes the parse fail (the caller
//! rebuilds the file); nothing here panics on hostile input.

/// A quota limit. Zero means "no limit" for that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaLimit {
    /// Maximum total size of all messages, in bytes.
    pub bytes: u64,
    /// Maximum number of messages.
    pub messages: u64,
}

impl QuotaLimit {
    /// The definition line, e.g. `1000000S,1000C`.
    pub fn to_definition(&self) -> String {
        format!("{}S,{}C", self.bytes, self.messages)
    }

    /// Parses a definition line (`<n>S`, `<n>C`, comma separated, either optional).
    pub fn parse_definition(line: &str) -> Option<QuotaLimit> {
        let mut limit = QuotaLimit::default();
        for part in line.trim().split(',').filter(|p| !p.is_empty()) {
            if let Some(num) = part.strip_suffix('S') {
                limit.bytes = parse_u64(num)?;
            } else if let Some(num) = part.strip_suffix('C') {
                limit.messages = parse_u64(num)?;
            } else {
                return None;
            }
        }
        Some(limit)
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Current usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Total bytes.
    pub bytes: u64,
    /// Number of messages.
    pub messages: u64,
}

/// The parsed content of a maildirsize file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maildirsize {
    /// The definition line.
    pub limit: QuotaLimit,
    /// Sum of the usage lines (negative sums, possible after lost deltas, are clamped to 0).
    pub usage: QuotaUsage,
}

impl Maildirsize {
    /// Parses the file. Any malformed line is an error (the caller rebuilds), never a panic.
    pub fn parse(data: &[u8]) -> std::result::Result<Maildirsize, (usize, String)> {
        let text = std::str::from_utf8(data).map_err(|_| (0, "not UTF-8".to_owned()))?;
        let mut lines = text.split_terminator('\n');
        let first = lines.next().ok_or((1, "empty file".to_owned()))?;
        let limit = QuotaLimit::parse_definition(first)
            .ok_or((1, format!("bad quota definition {first:?}")))?;
        let (mut bytes, mut messages) = (0i64, 0i64);
        for (i, line) in lines.enumerate() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(b), Some(c), None) = (fields.next(), fields.next(), fields.next()) else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err((i + 2, format!("bad usage line {line:?}")));
            };
            let b: i64 = b
                .parse()
                .map_err(|_| (i + 2, format!("bad byte count {b:?}")))?;
            let c: i64 = c
                .parse()
                .map_err(|_| (i + 2, format!("bad message count {c:?}")))?;
            bytes = bytes.saturating_add(b);
            messages = messages.saturating_add(c);
        }
        let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Maildirsize {
            limit,
            usage: QuotaUsage {
                bytes: clamp(bytes),
                messages: clamp(messages),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_round_trip() {
        let l = QuotaLimit {
            bytes: 1000,
            messages: 5,
        };
        assert_eq!(QuotaLimit::parse_definition(&l.to_definition()), Some(l));
        assert_eq!(
            QuotaLimit::parse_definition("1000S"),
            Some(QuotaLimit {
                bytes: 1000,
                messages: 0
            })
        );
        assert_eq!(
            QuotaLimit::parse_definition("7C,9S"),
            Some(QuotaLimit {
                bytes: 9,
                messages: 7
            })
        );
        for bad in [
            "S",
            "x",
            "10X",
            "-1S",
            "+1S",
            "1é",
            "99999999999999999999999S",
        ] {
            assert_eq!(QuotaLimit::parse_definition(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parse_sums_deltas_and_rejects_garbage() {
        let m = Maildirsize::parse(b"100S,10C\n50 2\n10 1\n-20 -1\n").expect("parse");
        assert_eq!(
            m.usage,
            QuotaUsage {
                bytes: 40,
                messages: 2
            }
        );
        let m = Maildirsize::parse(b"100S\n-5 -1\n").expect("parse");
        assert_eq!(
            m.usage,
            QuotaUsage::default(),
            "negative sums clamp to zero"
        );
        for bad in [
            &b""[..],
            b"garbage\n",
            b"100S\n1\n",
            b"100S\n1 2 3\n",
            b"100S\nx y\n",
            b"\xff\xfe",
        ] {
            assert!(Maildirsize::parse(bad).is_err(), "{bad:?}");
        }
    }
}
