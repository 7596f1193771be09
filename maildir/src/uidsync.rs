//! Assigning UIDs: the sync that brings the UID list in line with new/ and cur/.
//!
//! Under the lock (see lock.rs): read the list; scan new/ and cur/; keep the records whose base names
//! are present; give the next UIDs to unseen base names in delivery-time order (from the name); write a
//! temp file, fdatasync, rename over `dovecot-uidlist`, fsync the directory; unlock. Readers never lock:
//! they read whichever complete file the last rename installed.
//!
//! Two guarantees need care because `readdir` is not a snapshot: an entry created or renamed while a
//! directory is being read may or may not be returned.
//!
//! * **A moving message keeps its UID.** A record is dropped only if its base name is missing from two
//!   consecutive scans (a flag rename racing with both is needed to fool it; Dovecot re-scans likewise).
//! * **UIDs follow delivery order.** If message X was committed before message Y's delivery started,
//!   then uid(X) < uid(Y). The first scan (A) may miss X (linked while A ran) yet see Y. So the sync
//!   assigns UIDs to the new names of A, plus the new names of a second scan (B) whose delivery time is
//!   not later than the latest new name in A; names only B saw and later than that wait for the next
//!   sync. Proof sketch: if Y is in A, X was linked before A ended, so B (which starts after A ends) sees
//!   X, and time(X) < time(Y) ≤ max(A), so X is assigned in the same sync and sorts first. If Y was only
//!   in B and assigned, then time(Y) ≤ time(Z) for some Z in A, but Y started after X was linked and
//!   after A ended (else it would be in A), while Z started before it was linked, before A ended: a
//!   contradiction. This relies on the wall clock not stepping backwards.
//!
//! UIDVALIDITY is the creation time in seconds. It changes only if the file is lost or corrupt (then the
//! list is rebuilt and clients must resync, as with Dovecot); a rebuild uses max(now, old + 1) when the old
//! header is still readable, so a rebuilt list never reuses the previous UIDVALIDITY.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, io_err};
use crate::fsutil::{read_if_exists, replace_file};
use crate::lock::UidListLock;
use crate::maildir::{Maildir, Subdir};
use crate::name::{DeliveryKey, delivery_order, is_message_file_name, split_info};
use crate::uidlist::{UIDLIST_FILE, UidList, parse_header_only};

/// How long a sync waits for the lock before failing with `LockTimeout`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// Temp file for the rewrite (Dovecot uses the same name, also only under the lock).
const UIDLIST_TMP: &str = "dovecot-uidlist.tmp";

impl Maildir {
    /// Path of this maildir's UID list.
    pub fn uidlist_path(&self) -> PathBuf {
        self.path().join(UIDLIST_FILE)
    }

    /// Reads the UID list without locking (never blocks a writer). `None` if there is none yet;
    /// `Error::Corrupt` if it is damaged (a sync rebuilds it).
    pub fn read_uidlist(&self) -> Result<Option<UidList>> {
        let path = self.uidlist_path();
        match read_if_exists(&path)? {
            None => Ok(None),
            Some(data) => UidList::parse(&data, &path).map(Some),
        }
    }

    /// Brings the UID list up to date with the messages on disk and returns it (see the module header).
    pub fn sync_uidlist(&self) -> Result<UidList> {
        let path = self.uidlist_path();
        let _lock = UidListLock::acquire(self.path(), &path, LOCK_TIMEOUT)?;

        let (mut list, mut dirty) = match read_if_exists(&path)? {
            None => (fresh_list(None), true),
            Some(data) => match UidList::parse(&data, &path) {
                Ok(list) => {
                    let rewrite = list.needs_rewrite;
                    (list, rewrite)
                }
                Err(Error::Corrupt { .. }) => (fresh_list(parse_header_only(&data)), true),
                Err(e) => return Err(e),
            },
        };
        if let Some(partial) = list.partial_uid.take() {
            // Under the lock an unterminated line is a crashed writer's; its UID may have been seen.
            if partial >= list.next_uid {
                list.next_uid = partial.saturating_add(1);
            }
            dirty = true;
        }

        let known: HashSet<String> = list.records().iter().map(|r| r.base.clone()).collect();
        let scan_a = self.scan_bases()?;
        let needs_second_scan =
            scan_a.iter().any(|b| !known.contains(b)) || known.iter().any(|b| !scan_a.contains(b));
        let scan_b = if needs_second_scan {
            Some(self.scan_bases()?)
        } else {
            None
        };
        let (present, mut new_bases) = select(&known, scan_a, scan_b);

        let before = list.records().len();
        list.retain(|r| present.contains(&r.base));
        dirty |= list.records().len() != before;

        if list
            .next_uid
            .saturating_add(u32::try_from(new_bases.len()).unwrap_or(u32::MAX))
            == u32::MAX
        {
            // UID space exhausted (2^32 deliveries): start over with a new UIDVALIDITY, as Dovecot would.
            let old = list.uid_validity;
            let mut all: Vec<String> = list.records().iter().map(|r| r.base.clone()).collect();
            all.append(&mut new_bases);
            list = fresh_list(Some(old));
            new_bases = all;
        }
        for base in new_bases {
            list.push_new(base);
            dirty = true;
        }

        if dirty {
            replace_file(self.path(), UIDLIST_TMP, UIDLIST_FILE, &list.to_bytes())?;
        }
        Ok(list)
    }

    /// Base names in new/ and cur/ (one readdir each).
    fn scan_bases(&self) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for sub in [Subdir::New, Subdir::Cur] {
            let dir = self.subdir(sub);
            for entry in fs::read_dir(&dir).map_err(io_err("readdir", &dir))? {
                let entry = entry.map_err(io_err("readdir", &dir))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = entry.file_name();
                if let Some(name) = name.to_str().filter(|n| is_message_file_name(n)) {
                    out.insert(split_info(name).0.to_owned());
                }
            }
        }
        Ok(out)
    }
}

/// Decides, from the known base names and one or two scans, which names are present (records to keep)
/// and which new names get UIDs now, sorted in delivery order (the rule in the module header).
fn select(
    known: &HashSet<String>,
    scan_a: HashSet<String>,
    scan_b: Option<HashSet<String>>,
) -> (HashSet<String>, Vec<String>) {
    let mut new_bases: Vec<String> = scan_a
        .iter()
        .filter(|b| !known.contains(*b))
        .cloned()
        .collect();
    let latest_a = new_bases.iter().map(|b| DeliveryKey::parse(b).time()).max();
    let mut present = scan_a;
    if let Some(scan_b) = scan_b {
        for base in &scan_b {
            if !known.contains(base)
                && !present.contains(base)
                && latest_a.is_some_and(|t| DeliveryKey::parse(base).time() <= t)
            {
                new_bases.push(base.clone());
            }
        }
        present.extend(scan_b);
    }
    new_bases.sort_by(|a, b| delivery_order(a, b));
    (present, new_bases)
}

/// A new empty list: UIDVALIDITY from the clock, strictly above the previous one if known.
fn fresh_list(previous_validity: Option<u32>) -> UidList {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let mut validity = u32::try_from(now).unwrap_or(u32::MAX).max(1);
    if let Some(prev) = previous_validity
        && validity <= prev
    {
        validity = prev.saturating_add(1);
    }
    UidList::new(validity, rand::random())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Flags;

    use crate::test_support::setup;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn second_scan_fills_in_earlier_deliveries_only() {
        // Known: k. Scan A saw y (t=20) but missed x (t=10), linked while A ran. Scan B saw x, y and
        // z (t=30), delivered after A: x is assigned with y (and first); z waits for the next sync.
        let (k, x, y, z) = ("5.M0P1.h", "10.M0P1.h", "20.M0P1.h", "30.M0P1.h");
        let (present, new) = select(&set(&[k]), set(&[k, y]), Some(set(&[k, x, y, z])));
        assert_eq!(new, vec![x.to_owned(), y.to_owned()]);
        assert_eq!(present, set(&[k, x, y, z]));
        // Nothing new in A: nothing from B is assigned (no bound to compare with).
        let (_, new) = select(&set(&[k]), set(&[]), Some(set(&[k, x])));
        assert!(new.is_empty());
        // A record missing from A (being renamed) but present in B is kept.
        let (present, _) = select(&set(&[k, x]), set(&[x]), Some(set(&[k, x])));
        assert!(present.contains(k));
        // Same second: microseconds decide.
        let (_, new) = select(
            &set(&[]),
            set(&["10.M500P1.h"]),
            Some(set(&["10.M499P2.h", "10.M501P3.h"])),
        );
        assert_eq!(
            new,
            vec!["10.M499P2.h".to_owned(), "10.M500P1.h".to_owned()]
        );
    }

    #[test]
    fn first_sync_creates_list_and_assigns_in_delivery_order() {
        let (_d, md) = setup();
        assert_eq!(md.read_uidlist().expect("read"), None);
        let bases: Vec<String> = (0..5)
            .map(|i| md.deliver(format!("{i}").as_bytes()).expect("deliver"))
            .collect();
        let list = md.sync_uidlist().expect("sync");
        assert_eq!(list.next_uid, 6);
        for (i, base) in bases.iter().enumerate() {
            assert_eq!(list.uid_of(base), Some(i as u32 + 1));
        }
        assert_eq!(md.read_uidlist().expect("read"), Some(list.clone()));
        let text = fs::read_to_string(md.uidlist_path()).expect("read");
        assert!(text.starts_with(&format!(
            "3 V{} N6 G{}\n1 :{}\n",
            list.uid_validity,
            list.guid_hex(),
            bases[0]
        )));
        assert!(!md.path().join(UIDLIST_TMP).exists());
        assert!(!md.path().join(crate::lock::DOTLOCK_FILE).exists());
    }

    #[test]
    fn uids_survive_flag_changes_and_are_never_reused() {
        let (_d, md) = setup();
        let a = md.deliver(b"a").expect("a");
        let b = md.deliver(b"b").expect("b");
        let first = md.sync_uidlist().expect("sync");
        md.set_flags(&a, Flags::SEEN).expect("flag");
        md.expunge(&b).expect("expunge");
        let c = md.deliver(b"c").expect("c");
        let second = md.sync_uidlist().expect("sync");
        assert_eq!(second.uid_validity, first.uid_validity);
        assert_eq!(second.guid, first.guid);
        assert_eq!(second.uid_of(&a), Some(1));
        assert_eq!(second.uid_of(&b), None);
        assert_eq!(second.uid_of(&c), Some(3), "uid 2 is not reused");
        assert_eq!(second.next_uid, 4);
        // Expunging the newest message must not lower UIDNEXT.
        md.expunge(&c).expect("expunge");
        assert_eq!(md.sync_uidlist().expect("sync").next_uid, 4);
    }

    #[test]
    fn unchanged_maildir_does_not_rewrite() {
        let (_d, md) = setup();
        md.deliver(b"a").expect("a");
        md.sync_uidlist().expect("sync");
        let ino = |p: &std::path::Path| {
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).expect("stat"))
        };
        let before = ino(&md.uidlist_path());
        md.sync_uidlist().expect("sync");
        assert_eq!(ino(&md.uidlist_path()), before);
    }

    #[test]
    fn corrupt_list_is_rebuilt_with_a_new_uidvalidity() {
        let (_d, md) = setup();
        let a = md.deliver(b"a").expect("a");
        let old = md.sync_uidlist().expect("sync");
        let far_future = u32::MAX - 10;
        fs::write(
            md.uidlist_path(),
            format!("3 V{far_future} N9 G{}\n5 :x\n3 :y\n", old.guid_hex()),
        )
        .expect("corrupt");
        assert!(matches!(md.read_uidlist(), Err(Error::Corrupt { .. })));
        let rebuilt = md.sync_uidlist().expect("rebuild");
        assert_eq!(
            rebuilt.uid_validity,
            far_future + 1,
            "never reuses the old UIDVALIDITY"
        );
        assert_eq!(rebuilt.uid_of(&a), Some(1));
        fs::write(md.uidlist_path(), b"\0\0\0 total garbage \xff").expect("garbage");
        let rebuilt2 = md.sync_uidlist().expect("rebuild");
        assert_eq!(rebuilt2.uid_of(&a), Some(1));
        assert!(md.read_uidlist().expect("readable").is_some());
    }

    #[test]
    fn adopts_a_dovecot_list_and_keeps_its_uids() {
        let (_d, md) = setup();
        // A Dovecot-written list for two messages already on disk (one with flags), N ahead of them.
        fs::write(
            md.subdir(Subdir::New).join("1600000000.M1P1.old,S=1,W=1"),
            b"x",
        )
        .expect("msg");
        fs::write(
            md.subdir(Subdir::Cur)
                .join("1600000001.M2P1.old,S=1,W=1:2,S"),
            b"y",
        )
        .expect("msg");
        fs::write(
            md.uidlist_path(),
            "3 V1600000000 N100 G000102030405060708090a0b0c0d0e0f\n\
             17 :1600000000.M1P1.old,S=1,W=1\n\
             42 GXYZ :1600000001.M2P1.old,S=1,W=1\n",
        )
        .expect("list");
        let n = md.deliver(b"new").expect("deliver");
        let list = md.sync_uidlist().expect("sync");
        assert_eq!(
            (list.uid_validity, list.guid_hex().as_str()),
            (1_600_000_000, "000102030405060708090a0b0c0d0e0f")
        );
        assert_eq!(list.uid_of("1600000000.M1P1.old,S=1,W=1"), Some(17));
        assert_eq!(
            list.get(42).map(|r| r.extensions.clone()),
            Some(vec!["GXYZ".to_owned()])
        );
        assert_eq!(list.uid_of(&n), Some(100));
        // A v1 (Courier-era) list is upgraded to v3 in place.
        fs::write(md.uidlist_path(), format!("1 77 200\n150 {n}:2,S\n")).expect("v1");
        let list = md.sync_uidlist().expect("sync");
        assert_eq!((list.uid_validity, list.uid_of(&n)), (77, Some(150)));
        assert!(
            fs::read_to_string(md.uidlist_path())
                .expect("read")
                .starts_with("3 V77 N")
        );
    }

    #[test]
    fn partial_last_line_bumps_next_uid_under_lock() {
        let (_d, md) = setup();
        md.sync_uidlist().expect("create");
        let list = md.read_uidlist().expect("read").expect("exists");
        let mut text = String::from_utf8(list.to_bytes()).expect("utf8");
        text.push_str("7 :crashed-writ");
        fs::write(md.uidlist_path(), text).expect("write");
        let a = md.deliver(b"a").expect("a");
        let synced = md.sync_uidlist().expect("sync");
        assert_eq!(synced.uid_of(&a), Some(8));
    }
}
