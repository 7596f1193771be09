//! The blob cache: one parse per message, none on reopening.

use std::cell::Cell;
use std::fs;

use moat_maildir::Subdir;

use super::{age_dirs, counting_parser, message_reads, setup};
use crate::index::Index;

#[test]
fn reopening_parses_nothing_and_a_delivery_is_parsed_once() {
    let (_d, md) = setup();
    for i in 0..3 {
        md.deliver(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
            .expect("deliver");
    }
    let calls = Cell::new(0);
    let parse = counting_parser(&calls);
    let mut ix = Index::open(&md).expect("open");
    assert_eq!(ix.prepare_blobs(&[1, 2, 3], &parse).expect("prepare"), 3);
    assert_eq!(
        ix.blob(2, &parse).expect("blob").expect("some"),
        b"BLOB:Subject: 1\r\n\r\nbo"
    );
    assert_eq!(calls.get(), 3);
    drop(ix);

    age_dirs(&md);
    let reads = message_reads();
    let mut ix = Index::open(&md).expect("reopen");
    let mut other = Index::open(&md).expect("second handle");
    for uid in 1..=3 {
        assert!(ix.blob(uid, &parse).expect("blob").is_some());
        assert!(other.blob(uid, &parse).expect("blob").is_some());
    }
    assert_eq!(calls.get(), 3, "reopening parses nothing");
    assert_eq!(message_reads(), reads, "and opens no message file");

    md.deliver(b"Subject: new\r\n\r\n").expect("deliver");
    let ch = ix.sync().expect("sync");
    assert_eq!(ch.new.len(), 1);
    assert_eq!(other.sync().expect("sync").new.len(), 1);
    assert!(ix.blob(4, &parse).expect("blob").is_some());
    assert!(other.blob(4, &parse).expect("blob").is_some());
    assert_eq!(ix.prepare_blobs(&[1, 2, 3, 4], &parse).expect("prepare"), 0);
    assert_eq!(calls.get(), 4, "the new delivery is parsed exactly once");
    assert_eq!(message_reads(), reads + 1);
}

#[test]
fn damaged_blob_is_recomputed_and_set_blob_stores_the_callers() {
    let (_d, md) = setup();
    md.deliver(b"hello").expect("deliver");
    md.deliver(b"world").expect("deliver");
    let calls = Cell::new(0);
    let parse = counting_parser(&calls);
    let mut ix = Index::open(&md).expect("open");
    assert!(ix.set_blob(2, b"from APPEND").expect("set"));
    assert!(!ix.set_blob(9, b"no such message").expect("set"));
    ix.blob(1, &parse).expect("blob");
    assert_eq!(calls.get(), 1);
    // Damage the cache bytes of message 1's blob.
    let path = md.path().join("moat-index.cache");
    let mut data = fs::read(&path).expect("read");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&path, &data).expect("write");
    let mut ix = Index::open(&md).expect("reopen");
    assert_eq!(
        ix.blob(1, &parse).expect("blob").expect("some"),
        b"BLOB:hello"
    );
    assert_eq!(calls.get(), 2, "recomputed");
    assert_eq!(
        ix.blob(2, &parse).expect("blob").expect("some"),
        b"from APPEND"
    );
    // An expunged message has no blob, and the session gets None rather than an error.
    let m = ix.message(1).expect("m").clone();
    fs::remove_file(m.path(&md)).expect("rm");
    let mut fresh = Index::open(&md).expect("open");
    assert_eq!(fresh.blob(1, &parse).expect("blob"), None);
    assert_eq!(m.subdir, Subdir::New);
}

#[test]
fn foreign_files_without_sizes_are_measured_once() {
    let (_d, md) = setup();
    // Another deliverer's name: no ,S= or ,W=.
    fs::write(
        md.subdir(Subdir::Cur).join("1600000000.123.otherhost:2,S"),
        b"a\nb\n",
    )
    .expect("write");
    let reads = message_reads();
    let ix = Index::open(&md).expect("open");
    let m = ix.message(1).expect("message");
    assert_eq!((m.file_size, m.size), (4, 6));
    assert_eq!(message_reads(), reads + 1);
    drop(ix);
    age_dirs(&md);
    Index::open(&md).expect("reopen");
    assert_eq!(message_reads(), reads + 1, "the size is remembered");
}
