//! Done-when #1: 8 OS processes deliver 500 messages each into one Maildir while 2 other processes
//! run the UID sync in a loop (and this process reads the UID list lock-free all the while). At the end:
//! no message lost or damaged, no UID given twice, UIDs increase with each deliverer's order,
//! UIDVALIDITY never changed.
//!
//! Children are this test binary re-executed with `--exact <test name>` and an environment variable
//! that selects the role, so no extra binary target is needed.

use std::collections::{HashMap, HashSet};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use moat_maildir::{Maildir, Subdir};

const TEST_NAME: &str = "eight_processes_deliver_while_two_sync";
const ROLE_VAR: &str = "MOAT_MAILDIR_TEST_ROLE";
const DIR_VAR: &str = "MOAT_MAILDIR_TEST_DIR";
const OUT_VAR: &str = "MOAT_MAILDIR_TEST_OUT";
const DELIVERERS: usize = 8;
const PER_DELIVERER: usize = 500;
const SYNCERS: usize = 2;

/// The message deliverer `d` sends as its `i`-th: self-describing, with a pseudo-random length.
fn message(d: usize, i: usize) -> Vec<u8> {
    let mut seed = (d as u64 + 1) * 1_000_003 + i as u64 * 7919;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let len = 50 + (next() % 3000) as usize;
    let mut out = format!(
        "From: deliverer{d}@example.org\r\nSubject: message {i}\r\nX-Test: {d}/{i}\r\n\r\n"
    )
    .into_bytes();
    out.extend((0..len).map(|_| b"abcdefghij\n"[(next() % 11) as usize]));
    out
}

fn spawn(role: &str, dir: &Path, out: &Path) -> Child {
    Command::new(env::current_exe().expect("current_exe"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .env(OUT_VAR, out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

fn deliverer(d: usize, md: &Maildir, out: &Path) {
    let mut lines = String::new();
    for i in 0..PER_DELIVERER {
        let base = md.deliver(&message(d, i)).expect("deliver");
        lines.push_str(&format!("{i} {base}\n"));
    }
    fs::write(out.join(format!("deliver-{d}.txt")), lines).expect("write result");
}

fn syncer(k: usize, md: &Maildir, out: &Path) {
    let stop = out.join("stop");
    let mut validity = None;
    let mut by_uid: HashMap<u32, String> = HashMap::new();
    let mut by_base: HashMap<String, u32> = HashMap::new();
    let mut syncs = 0u64;
    loop {
        // Check the flag before syncing so the last sync happens after all deliveries finished.
        let last = stop.exists();
        let list = md.sync_uidlist().expect("sync");
        syncs += 1;
        assert_eq!(
            *validity.get_or_insert(list.uid_validity),
            list.uid_validity,
            "UIDVALIDITY changed"
        );
        for r in list.records() {
            let prev = by_uid.insert(r.uid, r.base.clone());
            assert!(
                prev.is_none_or(|p| p == r.base),
                "uid {} given to two messages",
                r.uid
            );
            let prev = by_base.insert(r.base.clone(), r.uid);
            assert!(prev.is_none_or(|p| p == r.uid), "{} changed uid", r.base);
        }
        if last {
            break;
        }
    }
    let mut text = format!("{} {}\n", validity.unwrap_or(0), syncs);
    for (uid, base) in &by_uid {
        text.push_str(&format!("{uid} {base}\n"));
    }
    fs::write(out.join(format!("sync-{k}.txt")), text).expect("write result");
}

fn run_child(role: &str) {
    let dir = PathBuf::from(env::var(DIR_VAR).expect("dir"));
    let out = PathBuf::from(env::var(OUT_VAR).expect("out"));
    let md = Maildir::open(&dir).expect("open");
    match role.split_once(':') {
        Some(("deliver", n)) => deliverer(n.parse().expect("index"), &md, &out),
        Some(("sync", n)) => syncer(n.parse().expect("index"), &md, &out),
        _ => panic!("unknown role {role}"),
    }
}

fn wait_ok(mut child: Child, what: &str) {
    let status = child.wait().expect("wait");
    assert!(status.success(), "{what} failed: {status}");
}

#[test]
fn eight_processes_deliver_while_two_sync() {
    if let Ok(role) = env::var(ROLE_VAR) {
        run_child(&role);
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("Maildir");
    let out = tmp.path().join("out");
    fs::create_dir(&out).expect("out dir");
    let md = Maildir::create(&dir).expect("create");

    let syncers: Vec<Child> = (0..SYNCERS)
        .map(|k| spawn(&format!("sync:{k}"), &dir, &out))
        .collect();
    let mut deliverers: Vec<Child> = (0..DELIVERERS)
        .map(|d| spawn(&format!("deliver:{d}"), &dir, &out))
        .collect();

    // Meanwhile: lock-free readers must always see a complete, parseable list with one UIDVALIDITY.
    let mut reads = 0;
    let mut validity = None;
    while deliverers
        .iter_mut()
        .any(|c| c.try_wait().expect("try_wait").is_none())
    {
        if let Some(list) = md
            .read_uidlist()
            .expect("lock-free read sees a complete list")
        {
            assert_eq!(
                *validity.get_or_insert(list.uid_validity),
                list.uid_validity
            );
            reads += 1;
        }
        thread::sleep(Duration::from_millis(2));
    }
    for (d, child) in deliverers.into_iter().enumerate() {
        wait_ok(child, &format!("deliverer {d}"));
    }
    fs::write(out.join("stop"), b"").expect("stop flag");
    for (k, child) in syncers.into_iter().enumerate() {
        wait_ok(child, &format!("syncer {k}"));
    }

    // Every message is there, intact, exactly once.
    let mut expected: HashMap<String, (usize, usize)> = HashMap::new();
    for d in 0..DELIVERERS {
        let text =
            fs::read_to_string(out.join(format!("deliver-{d}.txt"))).expect("deliverer output");
        for line in text.lines() {
            let (i, base) = line.split_once(' ').expect("line");
            assert!(
                expected
                    .insert(base.to_owned(), (d, i.parse().expect("i")))
                    .is_none(),
                "duplicate name"
            );
        }
    }
    assert_eq!(expected.len(), DELIVERERS * PER_DELIVERER);
    let files = fs::read_dir(md.subdir(Subdir::New)).expect("new").count()
        + fs::read_dir(md.subdir(Subdir::Cur)).expect("cur").count();
    assert_eq!(files, DELIVERERS * PER_DELIVERER, "files in new/ + cur/");
    assert_eq!(
        fs::read_dir(dir.join("tmp")).expect("tmp").count(),
        0,
        "tmp/ is empty"
    );
    let listed = md.list().expect("list");
    assert_eq!(listed.len(), expected.len());
    for entry in &listed {
        let &(d, i) = expected
            .get(&entry.base)
            .expect("listed message was delivered");
        assert_eq!(
            fs::read(&entry.path).expect("read"),
            message(d, i),
            "content of {d}/{i}"
        );
    }

    // UIDs: the final list covers everything once; no UID was ever handed out twice.
    let final_list = md.sync_uidlist().expect("final sync");
    assert_eq!(
        Some(final_list.uid_validity),
        validity.or(Some(final_list.uid_validity))
    );
    assert_eq!(final_list.records().len(), expected.len());
    assert_eq!(
        final_list.next_uid as usize,
        expected.len() + 1,
        "no UID wasted or reused"
    );
    let uids: HashSet<u32> = final_list.records().iter().map(|r| r.uid).collect();
    assert_eq!(uids.len(), expected.len());
    let mut total_syncs = 0;
    for k in 0..SYNCERS {
        let text = fs::read_to_string(out.join(format!("sync-{k}.txt"))).expect("syncer output");
        let mut lines = text.lines();
        let (v, syncs) = lines
            .next()
            .and_then(|l| l.split_once(' '))
            .expect("header");
        assert_eq!(
            v.parse::<u32>().expect("v"),
            final_list.uid_validity,
            "syncer {k} saw another UIDVALIDITY"
        );
        total_syncs += syncs.parse::<u64>().expect("syncs");
        for line in lines {
            let (uid, base) = line.split_once(' ').expect("line");
            let uid: u32 = uid.parse().expect("uid");
            assert_eq!(
                final_list.get(uid).map(|r| r.base.as_str()),
                Some(base),
                "syncer {k}: uid {uid} moved"
            );
        }
    }
    assert!(
        total_syncs > 2,
        "the syncers ran concurrently with delivery ({total_syncs} syncs)"
    );

    // Per deliverer, UIDs increase with delivery order.
    let mut per: Vec<Vec<(usize, u32)>> = vec![Vec::new(); DELIVERERS];
    for r in final_list.records() {
        let &(d, i) = expected.get(&r.base).expect("uid for a delivered message");
        per[d].push((i, r.uid));
    }
    for (d, mut v) in per.into_iter().enumerate() {
        v.sort();
        assert!(
            v.windows(2).all(|w| w[0].1 < w[1].1),
            "deliverer {d}: UIDs out of delivery order"
        );
    }
    eprintln!(
        "{} messages, {total_syncs} syncs, {reads} lock-free reads in {:.1?}",
        expected.len(),
        started.elapsed()
    );
}
