//! Property: how the input is split into reads never changes the outcome. Each script is fed
//! all at once, byte by byte, and in many pseudo-random splits; the reply bytes, the queued
//! messages and the aborts must be identical.

mod proto_harness;

use proto_harness::{Harness, config};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

type Outcome = (Vec<u8>, Vec<(String, Vec<u8>)>, usize, bool);

fn run(script: &[u8], splits: &[usize]) -> Outcome {
    let mut cfg = config();
    cfg.limits.message_size = 300;
    cfg.limits.recipients = 3;
    cfg.binarymime = true;
    let mut h = Harness::new(cfg, false);
    h.feed_split(script, splits);
    let queued = h
        .queued
        .iter()
        .map(|q| (format!("{:?}", q.envelope), q.body.clone()))
        .collect();
    (h.wire.clone(), queued, h.aborted, h.closed)
}

const SCRIPTS: &[&[u8]] = &[
    b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n..x\r\n..\r\n.\r\n\r\n.\r\nQUIT\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\n.\nMAIL FROM:<e@f>\r\n.\r\nNOOP\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r.\r\n.\r\nRSET\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 7\r\nab\r\n.\r\nBDAT 4 LAST\r\nc\r\n\r\nNOOP\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\n\0\r\rQUIT\r\n",
    b"EHLO c\r\nBDAT 5\r\nQUIT\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@d>\r\nRCPT TO:<2@d>\r\nRCPT TO:<3@d>\r\nRCPT TO:<4@d>\r\nDATA\r\n.\r\n",
    b"NOOP\nQUIT\r\nEHLO \0x\r\nEHLO c\r\nVRFY x\r\nHELP\r\nBOGUS\r\nMAIL FROM:<\"q d\"@x> SIZE=5\r\nRCPT TO:<Postmaster>\r\nDATA\r\nabc\r\n.\r\nQUIT\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
];

fn big_script() -> Vec<u8> {
    let mut s = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec();
    for i in 0..40 {
        s.extend_from_slice(format!(".line {i} with some text\r\n").as_bytes());
    }
    s.extend_from_slice(b".\r\n");
    s.extend_from_slice(&[b'x'; 3000]);
    s.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nok\r\n.\r\n");
    s
}

#[test]
fn splits_do_not_change_the_outcome() {
    let big = big_script();
    let mut scripts: Vec<&[u8]> = SCRIPTS.to_vec();
    scripts.push(&big);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for script in scripts {
        let whole = run(script, &[script.len()]);
        assert!(!whole.0.is_empty());
        assert_eq!(
            run(script, &[1]),
            whole,
            "byte by byte: {:?}",
            String::from_utf8_lossy(script)
        );
        for _ in 0..200 {
            let splits: Vec<usize> = (0..8).map(|_| 1 + rng.below(16)).collect();
            assert_eq!(
                run(script, &splits),
                whole,
                "splits {splits:?}: {:?}",
                String::from_utf8_lossy(script)
            );
        }
    }
}

#[test]
fn outcomes_are_what_we_expect() {
    // Sanity check of a few scripts, so the property above is not vacuous.
    let (wire, queued, aborted, closed) = run(SCRIPTS[0], &[1]);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1, b".x\r\n.\r\n");
    assert!(closed);
    assert!(
        String::from_utf8_lossy(&wire)
            .ends_with("221 2.0.0 mx.example.test closing connection\r\n")
    );
    let (_, queued, aborted2, _) = run(SCRIPTS[1], &[1]);
    assert!(queued.is_empty());
    assert_eq!((aborted, aborted2), (0, 1));
    let (_, queued, _, _) = run(SCRIPTS[4], &[1]);
    assert_eq!(queued[0].1, b"\0\r\r");
    let (_, queued, _, _) = run(&big_script(), &[3]);
    assert_eq!(
        queued.len(),
        1,
        "the first message is too big, the 3000-octet line is refused, the last is fine"
    );
}
