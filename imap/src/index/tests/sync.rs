//! Opening, and noticing what others did to the Maildir.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moat_maildir::{DeliverOptions, Flags, Subdir};

use super::setup;
use crate::index::Index;

#[test]
fn open_indexes_deliveries_with_uids_sizes_and_dates() {
    let (_d, md) = setup();
    let bodies: [&[u8]; 3] = [
        b"Subject: one\r\n\r\nbody\r\n",
        b"Subject: two\n\nbare LF body\n",
        b"Subject: three\r\n\r\n",
    ];
    let bases: Vec<String> = bodies
        .iter()
        .map(|b| md.deliver(b).expect("deliver"))
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let ix = Index::open(&md).expect("open");
    let v = ix.view();
    assert_eq!(v.messages.len(), 3);
    assert_eq!(v.uid_next, 4);
    assert_eq!(
        v.uid_validity,
        md.read_uidlist().expect("read").expect("list").uid_validity
    );
    for (i, m) in v.messages.iter().enumerate() {
        assert_eq!(m.uid, i as u32 + 1);
        assert_eq!(m.base(), bases[i]);
        assert_eq!(m.subdir, Subdir::New);
        assert_eq!(m.file_size, bodies[i].len() as u64);
        assert!((m.internal_date - now).abs() <= 2, "{}", m.internal_date);
        assert!(m.modseq > 0 && m.modseq <= v.highest_modseq);
        assert!(!m.has_blob());
    }
    // RFC822.SIZE counts bare LFs as CRLF.
    assert_eq!(v.messages[0].size, bodies[0].len() as u64);
    assert_eq!(v.messages[1].size, bodies[1].len() as u64 + 3);
    // APPEND's internal date is the file's mtime.
    let when = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let appended = md
        .deliver_with(b"x", &DeliverOptions::new().flags(Flags::SEEN).mtime(when))
        .expect("append");
    let mut ix = ix;
    let ch = ix.sync().expect("sync");
    assert_eq!(ix.find_base(&appended).map(|m| m.uid), Some(4));
    assert_eq!(ch.new.len(), 1);
    assert_eq!(
        (ch.new[0].uid, ch.new[0].internal_date, ch.new[0].flags),
        (4, 1_500_000_000, Flags::SEEN)
    );
    assert_eq!(ch.uid_next, 5);
    assert!(ch.new[0].modseq > v.highest_modseq);
}

#[test]
fn external_flag_rename_is_a_change_with_a_higher_modseq() {
    let (_d, md) = setup();
    let base = md.deliver(b"a").expect("deliver");
    md.deliver(b"b").expect("deliver");
    let mut ix = Index::open(&md).expect("open");
    let before = ix.view();
    // Another program (a Dovecot, a mail client on the file system) marks it seen.
    fs::rename(
        md.subdir(Subdir::New).join(&base),
        md.subdir(Subdir::Cur).join(format!("{base}:2,FS")),
    )
    .expect("rename");
    let ch = ix.sync().expect("sync");
    assert_eq!(ch.flags.len(), 1);
    let c = ch.flags[0];
    assert_eq!((c.uid, c.flags), (1, Flags::SEEN | Flags::FLAGGED));
    assert!(c.modseq > before.highest_modseq);
    assert_eq!(ch.highest_modseq, c.modseq);
    assert!(ch.new.is_empty() && ch.expunged.is_empty());
    let m = ix.message(1).expect("message");
    assert_eq!(
        (m.subdir, m.file_name.clone()),
        (Subdir::Cur, format!("{base}:2,FS"))
    );
    // A new/ → cur/ move without flags is not a change.
    let other = ix.message(2).expect("message").file_name.clone();
    fs::rename(
        md.subdir(Subdir::New).join(&other),
        md.subdir(Subdir::Cur).join(format!("{other}:2,")),
    )
    .expect("rename");
    assert!(ix.sync().expect("sync").is_empty());
    assert_eq!(ix.message(2).expect("message").subdir, Subdir::Cur);
}

#[test]
fn external_delete_is_an_expunge() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    let b = md.deliver(b"b").expect("deliver");
    let mut ix = Index::open(&md).expect("open");
    fs::remove_file(md.subdir(Subdir::New).join(&b)).expect("rm");
    let ch = ix.sync().expect("sync");
    assert_eq!(ch.expunged, vec![2]);
    assert_eq!(ix.view().messages.len(), 1);
    assert!(ch.highest_modseq > 0);
    // And a delivery after that gets the next UID, never 2 again.
    md.deliver(b"c").expect("deliver");
    let ch = ix.sync().expect("sync");
    assert_eq!(ch.new.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn a_rebuilt_uid_list_ends_the_session() {
    let (_d, md) = setup();
    md.deliver(b"a").expect("deliver");
    let mut ix = Index::open(&md).expect("open");
    let mut other = Index::open(&md).expect("open other");
    let old = ix.uid_validity();
    // A damaged list whose header is still readable: rebuilt with UIDVALIDITY old + 1.
    fs::write(
        md.uidlist_path(),
        format!("3 V{old} N2 G000102030405060708090a0b0c0d0e0f\nbroken record\n"),
    )
    .expect("corrupt the uid list");
    let ch = ix.sync().expect("sync");
    assert!(ch.uid_validity_changed);
    assert!(ix.uid_validity() > old);
    assert_eq!(ch.new.len(), 1);
    assert_eq!(ch.expunged, vec![1]);
    // A fresh handle agrees.
    assert_eq!(
        Index::open(&md).expect("open").uid_validity(),
        ix.uid_validity()
    );
    // A handle that has not synced yet refuses to act on its old UIDs (they name other
    // messages now) until its session has seen the change.
    assert!(other.expunge(&[1], false).is_err());
    assert!(other.blob(1, &|b: &[u8]| b.to_vec()).is_err());
    assert_eq!(md.list().expect("list").len(), 1, "nothing deleted");
    assert!(other.sync().expect("sync").uid_validity_changed);
    assert!(
        other
            .blob(1, &|b: &[u8]| b.to_vec())
            .expect("blob")
            .is_some()
    );
}

#[test]
fn empty_folder_opens_and_files_are_private() {
    let (_d, md) = setup();
    let ix = Index::open(&md).expect("open");
    let v = ix.view();
    assert!(v.messages.is_empty());
    assert_eq!(v.uid_next, 1);
    assert!(v.highest_modseq > 0);
    use std::os::unix::fs::PermissionsExt;
    for f in ["moat-index", "moat-index.log", "moat-index.cache"] {
        let mode = fs::metadata(md.path().join(f))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}
