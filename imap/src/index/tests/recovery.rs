//! Damaged, missing and compacted index files.

use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::Write;

use moat_maildir::Flags;

use super::{counting_parser, setup};
use crate::index::{Index, StoreOp};

fn uids_and_flags(ix: &Index) -> Vec<(u32, String, Flags)> {
    ix.view()
        .messages
        .iter()
        .map(|m| (m.uid, m.base().to_owned(), m.flags))
        .collect()
}

#[test]
fn corrupt_index_is_rebuilt_with_the_same_uids_and_a_higher_modseq() {
    let (_d, md) = setup();
    for i in 0..5 {
        md.deliver(format!("m{i}").as_bytes()).expect("deliver");
    }
    let mut ix = Index::open(&md).expect("open");
    ix.expunge(&[2], false).expect("expunge");
    ix.store_flags(&[4], StoreOp::Add, Flags::FLAGGED, None)
        .expect("store");
    let before = uids_and_flags(&ix);
    let highest = ix.highest_modseq();
    drop(ix);

    // Flip bytes in the middle of the snapshot.
    let path = md.path().join("moat-index");
    let mut data = fs::read(&path).expect("read");
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 8] {
        *b ^= 0x5a;
    }
    fs::write(&path, &data).expect("write");
    let ix = Index::open(&md).expect("reopen");
    assert_eq!(uids_and_flags(&ix), before);
    assert!(ix.highest_modseq() > highest);
    assert!(ix.view().messages.iter().all(|m| m.modseq > highest));
    assert_eq!(ix.uid_next(), 6);
    drop(ix);

    // Garbage everywhere: still rebuilt, never a panic.
    for f in ["moat-index", "moat-index.log", "moat-index.cache"] {
        fs::write(md.path().join(f), b"\xff\x00garbage MOATIDX1 \x01\x02").expect("write");
    }
    assert_eq!(uids_and_flags(&Index::open(&md).expect("reopen")), before);
    // Missing files: rebuilt too.
    for f in ["moat-index", "moat-index.log", "moat-index.cache"] {
        fs::remove_file(md.path().join(f)).expect("rm");
    }
    assert_eq!(uids_and_flags(&Index::open(&md).expect("reopen")), before);
}

#[test]
fn a_torn_log_record_is_skipped_and_cut_by_the_next_writer() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    md.deliver(b"b").expect("deliver");
    let mut a = Index::open(&md).expect("open");
    // A writer that died in the middle of a record.
    let log = md.path().join("moat-index.log");
    OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log")
        .write_all(&[40, 0, 0, 0, 1, 2, 3])
        .expect("append");
    let mut b = Index::open(&md).expect("open with torn tail");
    assert_eq!(b.view().messages.len(), 2);
    a.store_flags(&[1], StoreOp::Add, Flags::SEEN, None)
        .expect("store");
    let ch = b.sync().expect("sync");
    assert_eq!(ch.flags.len(), 1, "records after the cut are read");
    assert_eq!(
        Index::open(&md).expect("open").message(1).expect("m").flags,
        Flags::SEEN
    );
}

#[test]
fn compaction_keeps_every_handle_in_step() {
    let (_d, md) = setup();
    for i in 0..20 {
        md.deliver(format!("m{i}").as_bytes()).expect("deliver");
    }
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let uids: Vec<u32> = (1..=20).collect();
    let generation = a.state.generation;
    // Enough flag changes for the log to outgrow the snapshot several times.
    for round in 0..60 {
        let op = if round % 2 == 0 {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        a.store_flags(&uids, op, Flags::FLAGGED, None)
            .expect("store");
    }
    a.store_flags(&[7], StoreOp::Add, Flags::SEEN, None)
        .expect("store");
    assert_ne!(a.state.generation, generation, "compacted");
    // Every message's MODSEQ moved (its flags went back and forth), so all are reported, with
    // the flags and MODSEQs the writer has.
    let ch = b.sync().expect("sync b");
    let expected: Vec<_> = a
        .view()
        .messages
        .iter()
        .map(|m| (m.uid, m.flags, m.modseq))
        .collect();
    assert_eq!(
        ch.flags
            .iter()
            .map(|c| (c.uid, c.flags, c.modseq))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(expected[6].1, Flags::SEEN);
    assert_eq!(ch.highest_modseq, a.highest_modseq());
    assert!(
        fs::metadata(md.path().join("moat-index.log"))
            .expect("log")
            .len()
            < 64 * 1024
    );
}

#[test]
fn dead_blobs_are_dropped_when_the_cache_is_rewritten() {
    let (_d, md) = setup();
    for i in 0..60 {
        md.deliver(format!("message {i}").as_bytes())
            .expect("deliver");
    }
    let mut ix = Index::open(&md).expect("open");
    let calls = Cell::new(0);
    let parse = counting_parser(&calls);
    let big = |b: &[u8]| {
        let mut v = parse(b);
        v.resize(40_000, b'.');
        v
    };
    let uids: Vec<u32> = (1..=60).collect();
    assert_eq!(ix.prepare_blobs(&uids, &big).expect("blobs"), 60);
    let cache = md.path().join("moat-index.cache");
    let full = fs::metadata(&cache).expect("cache").len();
    assert!(full > 2_000_000);
    ix.expunge(&uids[..50], false).expect("expunge");
    for round in 0..100 {
        let op = if round % 2 == 0 {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        ix.store_flags(&uids[50..], op, Flags::FLAGGED, None)
            .expect("store");
    }
    assert!(
        fs::metadata(&cache).expect("cache").len() < full / 2,
        "rewritten"
    );
    // The survivors' blobs moved with them: nothing is parsed again, in this handle or a new one.
    let mut fresh = Index::open(&md).expect("open");
    for ix in [&mut ix, &mut fresh] {
        for &uid in &uids[50..] {
            let blob = ix.blob(uid, &big).expect("blob").expect("present");
            assert!(blob.starts_with(format!("BLOB:message {}", uid - 1).as_bytes()));
        }
    }
    assert_eq!(calls.get(), 60);
}
