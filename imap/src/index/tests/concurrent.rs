//! Several sessions (threads, each with its own handle) and a deliverer at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use moat_maildir::Flags;

use super::setup;
use crate::index::{Index, StoreOp};

#[test]
fn concurrent_sessions_converge_with_the_maildir() {
    let (_d, md) = setup();
    for i in 0..10 {
        md.deliver(format!("first {i}").as_bytes())
            .expect("deliver");
    }
    let letters = ['S', 'F', 'R', 'D'];
    let barrier = Arc::new(Barrier::new(letters.len() + 1));
    let sessions: Vec<_> = letters
        .iter()
        .map(|&letter| {
            let (md, barrier) = (md.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut ix = Index::open(&md).expect("open");
                let mut known: BTreeMap<u32, (Flags, u64)> = ix
                    .view()
                    .messages
                    .iter()
                    .map(|m| (m.uid, (m.flags, m.modseq)))
                    .collect();
                barrier.wait();
                let own = Flags::parse(&letter.to_string()).expect("flag");
                for round in 0..15u32 {
                    let uids: Vec<u32> = known
                        .keys()
                        .copied()
                        .filter(|u| u % 4 == round % 4)
                        .collect();
                    let out = ix
                        .store_flags(&uids, StoreOp::Add, own, None)
                        .expect("store");
                    for c in out.changed.iter().chain(&out.unchanged) {
                        known.insert(c.uid, (c.flags, c.modseq));
                    }
                    let ch = ix.sync().expect("sync");
                    assert!(ch.expunged.is_empty());
                    for m in &ch.new {
                        assert!(
                            m.uid > *known.keys().next_back().unwrap_or(&0),
                            "UIDs ascend"
                        );
                        known.insert(m.uid, (m.flags, m.modseq));
                    }
                    for c in &ch.flags {
                        let old = known.insert(c.uid, (c.flags, c.modseq)).expect("known uid");
                        assert!(c.modseq >= old.1, "MODSEQ never goes back");
                    }
                }
                ix.sync().expect("final sync");
                ix
            })
        })
        .collect();
    barrier.wait();
    for i in 0..10 {
        md.deliver(format!("later {i}").as_bytes())
            .expect("deliver");
    }
    let mut handles: Vec<Index> = sessions
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let fresh = Index::open(&md).expect("open");
    let truth = fresh.view();
    assert_eq!(truth.messages.len(), 20);
    // The index agrees with the file names.
    let on_disk: BTreeMap<String, Flags> = md
        .list()
        .expect("list")
        .into_iter()
        .map(|e| (e.base, e.flags))
        .collect();
    for m in &truth.messages {
        assert_eq!(on_disk.get(m.base()), Some(&m.flags), "uid {}", m.uid);
    }
    // Every session ends with the same view.
    for ix in &mut handles {
        ix.sync().expect("sync");
        assert_eq!(ix.view(), truth);
    }
}
