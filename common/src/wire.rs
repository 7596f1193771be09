//! The internal wire format: what Moat's processes say to each other over Unix sockets.
//!
//! A frame is a 4-byte big-endian length and that many bytes of payload. The payload is one
//! kind byte (a letter, as in qmail's protocols) followed by fields, each a 4-byte big-endian
//! length and its bytes. Replies use qmail's three words: `K` ok, `Z` temporary failure,
//! `D` permanent failure, each with a human-readable text.
//!
//! SECURITY: every length is checked against `MAX_FRAME` before anything is allocated, a frame
//! must be consumed exactly by its fields, and the decoder never trusts a count it has not
//! bounded. A peer that sends garbage gets an error, not a panic or an allocation.

use thiserror::Error;

/// The largest frame accepted. Messages themselves never cross as frames (they are passed as
/// open file descriptors), so records stay small.
pub const MAX_FRAME: usize = 64 * 1024;
/// The most fields one record may carry.
pub const MAX_FIELDS: usize = 1024;

/// One record: a kind letter and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub fields: Vec<Vec<u8>>,
}

/// qmail's result vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `K`: done.
    Ok(String),
    /// `Z`: not done now; the sender keeps the work and tries again later.
    Temporary(String),
    /// `D`: never going to work; the sender gives up (and bounces where that applies).
    Permanent(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME}")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("unexpected record kind {0:?}")]
    UnexpectedKind(char),
}

impl Record {
    pub fn new(kind: u8) -> Record {
        Record {
            kind,
            fields: Vec::new(),
        }
    }

    /// Adds a field (builder style).
    pub fn field(mut self, value: impl AsRef<[u8]>) -> Record {
        self.fields.push(value.as_ref().to_vec());
        self
    }

    /// The field at `i` as UTF-8 text.
    pub fn text(&self, i: usize) -> Result<&str, WireError> {
        let bytes = self
            .fields
            .get(i)
            .ok_or(WireError::Malformed("missing field"))?;
        std::str::from_utf8(bytes).map_err(|_| WireError::Malformed("field is not UTF-8"))
    }

    /// The frame bytes, length prefix included.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.fields.len() > MAX_FIELDS {
            return Err(WireError::Malformed("too many fields"));
        }
        let payload_len = 1 + self.fields.iter().map(|f| 4 + f.len()).sum::<usize>();
        if payload_len > MAX_FRAME {
            return Err(WireError::TooLarge(payload_len));
        }
        let mut out = Vec::with_capacity(4 + payload_len);
        out.extend_from_slice(&(payload_len as u32).to_be_bytes());
        out.push(self.kind);
        for f in &self.fields {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
        Ok(out)
    }

    /// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are needed,
    /// otherwise the record and how many bytes it used.
    pub fn decode(buf: &[u8]) -> Result<Option<(Record, usize)>, WireError> {
        let Some(len) = read_u32(buf, 0) else {
            return Ok(None);
        };
        let len = len as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLarge(len));
        }
        if len == 0 {
            return Err(WireError::Malformed("empty frame"));
        }
        let Some(payload) = buf.get(4..4 + len) else {
            return Ok(None);
        };
        let kind = payload[0];
        let mut fields = Vec::new();
        let mut at = 1;
        while at < payload.len() {
            if fields.len() == MAX_FIELDS {
                return Err(WireError::Malformed("too many fields"));
            }
            let flen = read_u32(payload, at)
                .ok_or(WireError::Malformed("truncated field length"))?
                as usize;
            at += 4;
            let value = payload
                .get(at..at + flen)
                .ok_or(WireError::Malformed("field runs past the frame"))?;
            fields.push(value.to_vec());
            at += flen;
        }
        Ok(Some((Record { kind, fields }, 4 + len)))
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Status {
    pub fn to_record(&self) -> Record {
        let (kind, text) = match self {
            Status::Ok(t) => (b'K', t),
            Status::Temporary(t) => (b'Z', t),
            Status::Permanent(t) => (b'D', t),
        };
        Record::new(kind).field(text)
    }

    pub fn from_record(r: &Record) -> Result<Status, WireError> {
        let text = r.text(0)?.to_string();
        match r.kind {
            b'K' => Ok(Status::Ok(text)),
            b'Z' => Ok(Status::Temporary(text)),
            b'D' => Ok(Status::Permanent(text)),
            other => Err(WireError::UnexpectedKind(other as char)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_input() {
        let r = Record::new(b'R')
            .field("alice@example.test")
            .field([0u8, 1, 2]);
        let bytes = r.encode().expect("encode");
        for cut in 0..bytes.len() {
            assert_eq!(Record::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (back, used) = Record::decode(&two).expect("decode").expect("whole");
        assert_eq!(back, r);
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn statuses_use_qmail_letters() {
        for s in [
            Status::Ok("done".into()),
            Status::Temporary("disk full".into()),
            Status::Permanent("no such user".into()),
        ] {
            let bytes = s.to_record().encode().expect("encode");
            let (r, _) = Record::decode(&bytes).expect("ok").expect("whole");
            assert_eq!(Status::from_record(&r), Ok(s));
        }
        assert_eq!(
            Status::from_record(&Record::new(b'X').field("?")),
            Err(WireError::UnexpectedKind('X'))
        );
    }

    #[test]
    fn hostile_frames_are_errors() {
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert_eq!(
            Record::decode(&huge),
            Err(WireError::TooLarge(MAX_FRAME + 1))
        );
        assert!(Record::decode(&[0, 0, 0, 0]).is_err());
        // A field length that points past the frame.
        let bad = [0, 0, 0, 6, b'R', 0, 0, 0, 9, b'x'];
        assert!(Record::decode(&bad).is_err());
        // A truncated field length.
        let bad = [0, 0, 0, 3, b'R', 0, 0];
        assert!(Record::decode(&bad).is_err());
        let big = Record::new(b'R').field(vec![0u8; MAX_FRAME]);
        assert!(big.encode().is_err());
    }
}
