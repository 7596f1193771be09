//! What a damaged index still offers a rebuild: the blobs of a cache file whose entries check
//! out (so a lost snapshot costs no parsing), and the highest MODSEQ a readable snapshot header
//! or log record remembers (so MODSEQs continue above it even if the clock is behind).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use moat_maildir::Result;

use super::disk::{LOG_FILE, MAX_SNAPSHOT, SNAPSHOT_FILE, io_err, read_bounded};
use super::format::{self, CACHE_HEADER_LEN, ENTRY_HEADER_LEN, LOG_HEADER_LEN, LogRec, Snapshot};
use super::state::BlobRef;

/// A log larger than this is not read when salvaging (it cannot be ours).
const SALVAGE_MAX_LOG: u64 = 256 << 20;

/// Every checked entry of a cache file, later ones winning: `(uid, where, file_size, size)`.
pub(crate) fn salvage_entries(f: &File, path: &Path) -> Result<Vec<(u32, BlobRef, u64, u64)>> {
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    let mut out = Vec::new();
    let mut pos = CACHE_HEADER_LEN;
    let mut head = [0u8; ENTRY_HEADER_LEN as usize];
    while pos + ENTRY_HEADER_LEN <= len {
        match f.read_exact_at(&mut head, pos) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err("read", path)(e)),
        }
        let Some((uid, blen, file_size, size, crc)) = format::decode_entry_header(&head) else {
            break;
        };
        let end = pos + ENTRY_HEADER_LEN + u64::from(blen);
        if end > len {
            break;
        }
        let mut blob = vec![0u8; blen as usize];
        f.read_exact_at(&mut blob, pos + ENTRY_HEADER_LEN)
            .map_err(io_err("read", path))?;
        if !format::entry_crc_ok(&head, &blob, crc) {
            break;
        }
        out.push((
            uid,
            BlobRef {
                offset: pos,
                len: blen,
            },
            file_size,
            size,
        ));
        pos = end;
    }
    Ok(out)
}

/// The highest MODSEQ any readable part of a damaged index remembers (0 if none), so a rebuilt
/// index starts above it even if the clock is behind.
pub(crate) fn salvage_highest_modseq(dir: &Path) -> u64 {
    let mut highest = 0;
    if let Ok(Some(data)) = read_bounded(&dir.join(SNAPSHOT_FILE), MAX_SNAPSHOT) {
        match format::decode_snapshot(&data) {
            Snapshot::Good(h, _) | Snapshot::HeaderOnly(h) => highest = h.highest_modseq,
            Snapshot::Bad => {}
        }
    }
    let log_path = dir.join(LOG_FILE);
    if let Ok(Some(data)) = read_bounded(&log_path, SALVAGE_MAX_LOG) {
        let (recs, _) = format::decode_records(data.get(LOG_HEADER_LEN as usize..).unwrap_or(&[]));
        for r in recs {
            let m = match r {
                LogRec::Add(m) => m.modseq,
                LogRec::Name { modseq, .. } | LogRec::Expunge { modseq, .. } => modseq,
                _ => 0,
            };
            highest = highest.max(m);
        }
    }
    highest
}
