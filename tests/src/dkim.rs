//! DKIM checks for the tests: dkimpy (Debian's python3-dkim, PyNaCl for Ed25519) verifies every
//! DKIM-Signature of a message against the TXT records `moat domain dns` printed, so the
//! signatures are judged by a verifier nobody here wrote.

use std::collections::BTreeMap;
use std::process::Command;

use crate::peer::PYTHON;

/// Per DKIM-Signature, topmost first, one line: `d= domain`, algorithm, `True`/`False`.
const VERIFY: &str = r#"
import json, re, sys
import dkim
records = json.loads(sys.argv[1])
message = open(sys.argv[2], "rb").read()
def dns(name, timeout=5):
    value = records.get(name.decode().rstrip(".").lower())
    return value.encode() if value is not None else None
d = dkim.DKIM(message)
for i, (k, v) in enumerate(h for h in d.headers if h[0].lower() == b"dkim-signature"):
    algorithm = re.search(rb"a=([a-z0-9-]+)", v).group(1).decode()
    domain = re.search(rb"d=([^;\s]+)", v).group(1).decode()
    try:
        ok = d.verify(idx=i, dnsfunc=dns)
    except dkim.ValidationError as e:
        # A changed body: dkimpy raises "body hash mismatch" instead of returning False.
        print(e, file=sys.stderr)
        ok = False
    print(domain, algorithm, ok)
"#;

/// dkimpy's verdict on each signature: (d= domain, algorithm, verified).
fn verify(records: &BTreeMap<String, String>, message: &[u8]) -> Vec<(String, String, bool)> {
    let tmp = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(tmp.path(), message).expect("write message");
    let json = serde_json::to_string(records).expect("json");
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(VERIFY)
        .arg(json)
        .arg(tmp.path())
        .output()
        .expect("run dkimpy (apt-get install python3-dkim python3-nacl)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dkimpy: {stderr}");
    if !stderr.trim().is_empty() {
        eprintln!("dkimpy: {stderr}");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.to_string(),
                w.next()?.to_string(),
                w.next()? == "True",
            ))
        })
        .collect()
}

fn python_bool(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// Every signature's verdict, topmost first: `rsa-sha256=True ed25519-sha256=True`.
pub fn verdicts(records: &BTreeMap<String, String>, message: &[u8]) -> String {
    verify(records, message)
        .iter()
        .map(|(_, a, ok)| format!("{a}={}", python_bool(*ok)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same with each signature's domain: `example.test:rsa-sha256=True ...`.
pub fn verdicts_with_domains(records: &BTreeMap<String, String>, message: &[u8]) -> String {
    verify(records, message)
        .iter()
        .map(|(d, a, ok)| format!("{d}:{a}={}", python_bool(*ok)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One zone-file line: name (no trailing dot), type, data.
pub type ZoneLine = (String, String, String);

/// The TXT records of `moat domain dns` output, name (no trailing dot) → joined strings; and
/// every line.
pub fn parse_zone(text: &str) -> (BTreeMap<String, String>, Vec<ZoneLine>) {
    let mut txt = BTreeMap::new();
    let mut all = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
    {
        let fields: Vec<&str> = line.splitn(5, '\t').collect();
        let [name, _ttl, "IN", kind, data] = fields.as_slice() else {
            panic!("not a zone line: {line:?}");
        };
        let name = name.trim_end_matches('.').to_string();
        if *kind == "TXT" {
            let joined: String = data.split('"').skip(1).step_by(2).collect();
            txt.insert(name.clone(), joined);
        }
        all.push((name, kind.to_string(), data.to_string()));
    }
    (txt, all)
}
