//! STORE, EXPUNGE, \Recent and keywords, across handles.

use std::fs;

use moat_maildir::{Flags, Subdir};

use super::setup;
use crate::index::{FlagChange, Index, KEYWORDS_FILE, StoreOp};

#[test]
fn two_handles_see_each_others_changes() {
    let (_d, md) = setup();
    for i in 0..3 {
        md.deliver(format!("m{i}").as_bytes()).expect("deliver");
    }
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let out = a
        .store_flags(&[1, 2, 99], StoreOp::Add, Flags::SEEN, None)
        .expect("store");
    assert_eq!(
        out.changed.iter().map(|c| c.uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(out.failed.is_empty() && out.unchanged.is_empty());
    let modseq = out.changed[0].modseq;
    assert!(modseq > b.highest_modseq());
    let f = md.list().expect("list");
    assert!(f[0].flags.has('S') && f[0].subdir == Subdir::Cur);

    let ch = b.sync().expect("sync b");
    assert_eq!(ch.flags, out.changed);
    assert_eq!(ch.highest_modseq, modseq);
    // The writer does not hear its own change back.
    assert!(a.sync().expect("sync a").is_empty());

    // b expunges, a learns it.
    assert_eq!(b.expunge(&[3], false).expect("expunge"), vec![3]);
    assert!(b.sync().expect("sync b").is_empty());
    let ch = a.sync().expect("sync a");
    assert_eq!(ch.expunged, vec![3]);
    assert_eq!(md.list().expect("list").len(), 2);

    // Storing flags a message already has changes nothing.
    let out = b
        .store_flags(&[1], StoreOp::Add, Flags::SEEN, None)
        .expect("store");
    assert_eq!(
        out.unchanged,
        vec![FlagChange {
            uid: 1,
            flags: Flags::SEEN,
            modseq
        }]
    );
    assert!(a.sync().expect("sync a").is_empty());
}

#[test]
fn unchangedsince_conflict_fails_the_changed_messages_only() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    md.deliver(b"b").expect("deliver");
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let seen_by_b = b.view().highest_modseq;
    let first = a
        .store_flags(&[1], StoreOp::Add, Flags::FLAGGED, None)
        .expect("store a");
    // b still believes the folder is at `seen_by_b`.
    let out = b
        .store_flags(&[1, 2], StoreOp::Add, Flags::TRASHED, Some(seen_by_b))
        .expect("conditional store");
    assert_eq!(out.failed, vec![1]);
    assert_eq!(
        out.changed.iter().map(|c| c.uid).collect::<Vec<_>>(),
        vec![2]
    );
    assert!(
        !md.find(a.message(1).expect("m").base())
            .expect("find")
            .flags
            .has('T')
    );
    // With the current MODSEQ it succeeds.
    let out = b
        .store_flags(
            &[1],
            StoreOp::Add,
            Flags::TRASHED,
            Some(first.changed[0].modseq),
        )
        .expect("conditional store");
    assert!(out.failed.is_empty());
    assert_eq!(out.changed[0].flags, Flags::FLAGGED | Flags::TRASHED);
    // UNCHANGEDSINCE 0 always fails.
    let out = b
        .store_flags(&[1, 2], StoreOp::Remove, Flags::TRASHED, Some(0))
        .expect("store");
    assert_eq!(out.failed, vec![1, 2]);
    // An external rename not yet synced counts too: the conditional store scans first.
    let m2 = b.message(2).expect("m2").clone();
    let known = m2.modseq;
    fs::rename(
        m2.path(&md),
        md.subdir(Subdir::Cur).join(format!("{}:2,ST", m2.base())),
    )
    .expect("rename");
    let out = b
        .store_flags(&[2], StoreOp::Add, Flags::DRAFT, Some(known))
        .expect("store");
    assert_eq!(out.failed, vec![2]);
}

#[test]
fn expunge_only_deleted_and_replace_keeps_hidden_letters() {
    let (_d, md) = setup();
    for i in 0..3 {
        md.deliver(format!("m{i}").as_bytes()).expect("deliver");
    }
    let mut ix = Index::open(&md).expect("open");
    ix.store_flags(&[1, 3], StoreOp::Add, Flags::TRASHED | Flags::PASSED, None)
        .expect("store");
    let out = ix
        .store_flags(&[3], StoreOp::Replace, Flags::SEEN, None)
        .expect("replace");
    assert_eq!(out.changed[0].flags, Flags::SEEN | Flags::PASSED);
    assert_eq!(ix.expunge(&[1, 2, 3], true).expect("expunge"), vec![1]);
    assert_eq!(ix.view().messages.len(), 2);
    assert_eq!(md.list().expect("list").len(), 2);
}

#[test]
fn recent_goes_to_the_first_session_only() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    md.deliver(b"b").expect("deliver");
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let modseq = a.highest_modseq();
    assert_eq!(a.move_new_to_cur().expect("move"), vec![1, 2]);
    assert_eq!(b.move_new_to_cur().expect("move"), Vec::<u32>::new());
    assert!(
        md.list()
            .expect("list")
            .iter()
            .all(|e| e.subdir == Subdir::Cur)
    );
    assert_eq!(a.highest_modseq(), modseq, "a move is not a flag change");
    assert!(b.sync().expect("sync").is_empty());
}

#[test]
fn keywords_round_trip_through_dovecot_keywords() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let f = a
        .flags_from_imap(&[
            "$Forwarded",
            "\\Seen",
            "Work",
            "bad(word",
            "\\Recent",
            "work",
        ])
        .expect("flags");
    assert_eq!(f.flags.to_string(), "Sab");
    assert_eq!(
        f.refused,
        vec!["bad(word".to_owned(), "\\Recent".to_owned()]
    );
    assert_eq!(
        fs::read_to_string(md.path().join(KEYWORDS_FILE)).expect("read"),
        "0 $Forwarded\n1 Work\n"
    );
    a.store_flags(&[1], StoreOp::Add, f.flags, None)
        .expect("store");
    assert!(
        md.list().expect("list")[0]
            .path
            .to_string_lossy()
            .ends_with(":2,Sab")
    );
    let ch = b.sync().expect("sync b");
    assert!(ch.keywords_changed);
    assert_eq!(
        b.keywords().imap_flags(ch.flags[0].flags),
        vec!["\\Seen", "$Forwarded", "Work"]
    );
    // A keyword Dovecot added is picked up too, and an existing one keeps its letter.
    fs::write(
        md.path().join(KEYWORDS_FILE),
        "0 $Forwarded\n1 Work\n2 $Junk\n",
    )
    .expect("write");
    assert!(a.sync().expect("sync a").keywords_changed);
    assert_eq!(a.keywords().letter("$junk"), Some('c'));
    let f = a.flags_from_imap(&["$Junk", "Later"]).expect("flags");
    assert_eq!(f.flags.to_string(), "cd");
    assert_eq!(
        Index::open(&md).expect("open").keywords().name('d'),
        Some("Later")
    );
}

#[test]
fn more_new_keywords_than_free_letters_are_refused_whole() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    let mut a = Index::open(&md).expect("open");
    a.flags_from_imap(&["Kept"]).expect("one keyword");
    let many: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    let mut names: Vec<&str> = vec!["\\Seen", "kept"];
    names.extend(many.iter().map(String::as_str));
    let f = a.flags_from_imap(&names).expect("flags");
    // 26 new ones where 25 letters are free: none is given a letter, known flags still map.
    assert_eq!(f.flags.to_string(), "Sa");
    assert_eq!(f.refused, many);
    assert_eq!(
        fs::read_to_string(md.path().join(KEYWORDS_FILE)).expect("read"),
        "0 Kept\n"
    );
    // 25 fit (a name twice counts once).
    let f = a
        .flags_from_imap(
            &many[..25]
                .iter()
                .chain(&many[..2])
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .expect("flags");
    assert!(f.refused.is_empty(), "{:?}", f.refused);
    assert!(a.keywords().is_full());
}

#[test]
fn removing_unknown_keywords_takes_no_letter() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    let mut a = Index::open(&md).expect("open a");
    let mut b = Index::open(&md).expect("open b");
    let names: Vec<String> = (0..40).map(|i| format!("never{i}")).collect();
    let mut refs: Vec<&str> = vec!["\\Seen", "bad(word", "\\Bogus"];
    refs.extend(names.iter().map(String::as_str));
    let f = a.known_flags_from_imap(&refs).expect("flags");
    assert_eq!(f.flags.to_string(), "S");
    // Unknown keywords are left out silently; what can never be a flag is still refused.
    assert_eq!(f.refused, vec!["bad(word".to_owned(), "\\Bogus".to_owned()]);
    assert!(!md.path().join(KEYWORDS_FILE).exists(), "no letter given");
    assert_eq!(a.keywords().free(), 26);

    // A keyword another handle gave a letter (and set) is known without a sync first, so
    // -FLAGS clears it.
    let set = b.flags_from_imap(&["Work"]).expect("assign");
    b.store_flags(&[1], StoreOp::Add, set.flags, None)
        .expect("set");
    let f = a.known_flags_from_imap(&["work", "Other"]).expect("flags");
    assert_eq!(f.flags.to_string(), "a");
    assert!(f.refused.is_empty(), "{:?}", f.refused);
    let out = a
        .store_flags(&[1], StoreOp::Remove, f.flags, None)
        .expect("remove");
    assert_eq!(out.changed.len(), 1);
    assert!(!out.changed[0].flags.has('a'));
    assert_eq!(
        fs::read_to_string(md.path().join(KEYWORDS_FILE)).expect("read"),
        "0 Work\n"
    );
}
