//! A folder of 50,000 messages: reopening it reads no message file and parses nothing.
//!
//! Run in release for timings: `cargo test -p moat-imap --release index::tests::big -- --ignored
//! --nocapture`.

use std::cell::Cell;
use std::fs;
use std::time::Instant;

use moat_maildir::Subdir;

use super::{age_dirs, counting_parser, message_reads, setup};
use crate::index::{Index, StoreOp};

const COUNT: u32 = 50_000;

#[test]
#[ignore = "50,000 files: a few seconds in release, longer in debug"]
fn fifty_thousand_messages_reopen_without_reading_them() {
    let (_d, md) = setup();
    let body = b"Subject: x\r\n\r\nbody\r\n";
    let t = Instant::now();
    for i in 0..COUNT {
        // Names as our deliveries write them; every other message already seen.
        let base = format!(
            "1700000000.M{i}P1Q{i}R{:016x}.host,S={},W={}",
            i,
            body.len(),
            body.len()
        );
        let path = if i % 2 == 0 {
            md.subdir(Subdir::New).join(base)
        } else {
            md.subdir(Subdir::Cur).join(format!("{base}:2,S"))
        };
        fs::write(path, body).expect("write");
    }
    age_dirs(&md);
    eprintln!("create {COUNT} files: {:?}", t.elapsed());

    let t = Instant::now();
    let mut ix = Index::open(&md).expect("open");
    eprintln!("first open (UID list + index built): {:?}", t.elapsed());
    assert_eq!(ix.view().messages.len(), COUNT as usize);
    let calls = Cell::new(0);
    let parse = counting_parser(&calls);
    let uids: Vec<u32> = (1..=COUNT).collect();
    let t = Instant::now();
    assert_eq!(
        ix.prepare_blobs(&uids, &parse).expect("blobs"),
        COUNT as usize
    );
    eprintln!("first blobs for all: {:?}", t.elapsed());
    drop(ix);

    let reads = message_reads();
    let t = Instant::now();
    let mut ix = Index::open(&md).expect("reopen");
    let reopen = t.elapsed();
    let t = Instant::now();
    for &uid in &uids {
        assert!(ix.blob(uid, &parse).expect("blob").is_some());
    }
    let fetch = t.elapsed();
    let t = Instant::now();
    let ch = ix.sync().expect("sync");
    let idle_sync = t.elapsed();
    assert!(ch.is_empty());
    eprintln!(
        "reopen: {reopen:?}; all {COUNT} blobs from the cache: {fetch:?}; sync: {idle_sync:?}"
    );
    assert_eq!(calls.get(), COUNT as usize, "nothing parsed again");
    assert_eq!(message_reads(), reads, "no message file opened");

    let t = Instant::now();
    ix.store_flags(&[COUNT], StoreOp::Add, moat_maildir::Flags::FLAGGED, None)
        .expect("store");
    let ch = ix.sync().expect("sync after store");
    eprintln!("store one + sync (a rescan of cur/): {:?}", t.elapsed());
    assert!(ch.is_empty());
    // cur/ changed less than STABLE_AFTER ago: every sync lists it until it is quiet.
    let t = Instant::now();
    let ch = ix.sync().expect("sync again");
    eprintln!("sync again, cur/ still unstable: {:?}", t.elapsed());
    assert!(ch.is_empty());
    md.deliver(body).expect("deliver");
    let t = Instant::now();
    let ch = ix.sync().expect("sync after delivery");
    eprintln!("sync after one delivery: {:?}", t.elapsed());
    assert_eq!(ch.new.len(), 1);
}
