//! The queue's promise under fire: during a bounded load of 1,000 messages, moat-queue and
//! moat-local are killed with SIGKILL at random moments (the supervisor restarts them). Every
//! message that got a 250 must end up delivered — duplicates are allowed (at-least-once) and
//! counted — nothing we did not send may appear, and no Maildir may hold a partial message.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_tests::Stack;
use moat_tests::smtp_client::Client;
use rand::Rng as _;

const MESSAGES: usize = 1000;
const SESSIONS: usize = 10;
const KILLS_PER_PROGRAM: usize = 3;

fn message(n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: load@sender.example\r\nTo: user@example.test\r\nSubject: durability {n}\r\n\
         Message-ID: <durability-{n}@sender.example>\r\n\r\n"
    );
    while m.len() < 4000 {
        m.push_str("The quick brown fox jumps over the lazy dog, again and again.\r\n");
    }
    m.push_str(&format!("END-OF-{n}\r\n"));
    m.into_bytes()
}

#[test]
fn kill9_of_queue_and_local_loses_no_acknowledged_message() {
    let stack = Arc::new(Stack::start());
    stack.add_domain("example.test");
    stack.add_user("user@example.test", "pw");

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let (stack, acked) = (stack.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut client: Option<Client> = None;
                for n in (s..MESSAGES).step_by(SESSIONS) {
                    if client.is_none() {
                        client = Client::connect(stack.smtp)
                            .and_then(|mut c| c.ehlo("load.example").map(|_| c))
                            .ok();
                    }
                    let Some(c) = client.as_mut() else {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    match c.send_mail("load@sender.example", &["user@example.test"], &message(n)) {
                        Ok((250, _)) => {
                            acked.lock().expect("lock").insert(n);
                        }
                        Ok(_) => {}
                        Err(_) => client = None,
                    }
                }
            })
        })
        .collect();

    let killer = {
        let (stack, done) = (stack.clone(), done.clone());
        std::thread::spawn(move || {
            let mut kills = BTreeMap::from([("moat-queue", 0), ("moat-local", 0)]);
            let mut rng = rand::rng();
            while !done.load(std::sync::atomic::Ordering::Relaxed)
                && kills.values().any(|k| *k < KILLS_PER_PROGRAM)
            {
                std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));
                let program = if rng.random_bool(0.5) {
                    "moat-queue"
                } else {
                    "moat-local"
                };
                let count = kills.get_mut(program).expect("program");
                if *count >= KILLS_PER_PROGRAM {
                    continue;
                }
                if let Some(pid) = stack.pid_of(program) {
                    moat_tests::signal(pid, rustix::process::Signal::KILL);
                    *count += 1;
                    eprintln!("killed {program} (pid {pid})");
                }
            }
            kills
        })
    };
    for s in senders {
        s.join().expect("sender");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.join().expect("killer");
    let acked = acked.lock().expect("lock").clone();
    eprintln!(
        "{} of {MESSAGES} messages acknowledged; kills: {kills:?}",
        acked.len()
    );
    assert!(
        acked.len() >= MESSAGES / 2,
        "too few messages got through:\n{}",
        stack.log()
    );

    // Everything acknowledged must arrive, whatever was killed when.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (delivered, duplicates) = loop {
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        for m in stack.messages("user@example.test") {
            let n: usize = m
                .split("Subject: durability ")
                .nth(1)
                .and_then(|rest| rest.split("\r\n").next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a message we never sent:\n{m}"));
            assert!(
                m.ends_with(&format!("END-OF-{n}\r\n")),
                "partial message {n} in the Maildir ({} bytes)",
                m.len()
            );
            *seen.entry(n).or_default() += 1;
        }
        let missing: Vec<&usize> = acked.iter().filter(|n| !seen.contains_key(n)).collect();
        if missing.is_empty() && stack.queued() == 0 {
            let dups = seen.values().filter(|c| **c > 1).count();
            break (seen, dups);
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged messages never delivered (e.g. {:?}); {} still queued\n{}",
            missing.len(),
            &missing[..missing.len().min(10)],
            stack.queued(),
            stack.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(delivered.keys().all(|n| *n < MESSAGES));
    eprintln!(
        "delivered {} distinct messages ({} acknowledged), {duplicates} delivered more than once",
        delivered.len(),
        acked.len()
    );
    let tmp_leftovers = std::fs::read_dir(stack.maildir("user@example.test").join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    eprintln!("{tmp_leftovers} interrupted deliveries left in tmp/ (swept after 36 h)");
}
