//! The envelope of a queued message and its file format (`env/<id>`), plus the light address
//! checks the queue applies to everything it is given.
//!
//! The file is text, one field per line, each line a one-letter kind and its value (qmail's
//! style: too simple to mis-parse):
//!
//! ```text
//! V1                    format version (first line)
//! T1700000000           arrival, unix seconds
//! Osmtp                 origin (smtp, submission, sendmail, forward, bounce)
//! U1001                 uid of the process that injected it (SO_PEERCRED)
//! Z4096                 message size in bytes
//! C[192.0.2.1] mx.example  client description, for logs
//! Falice@example.test   envelope sender ("F" alone = null sender <>)
//! YFULL                 optional: RET= (FULL or HDRS)
//! Iabc123               optional: ENVID=, decoded
//! S                     optional: the MAIL FROM carried SMTPUTF8 (RFC 6531)
//! L                     optional: VERP, one envelope sender per recipient (`verp.rs`)
//! WURL KEY MAILTO       optional: a list post's RFC 8058 one-click attribute (`OneClick`)
//! Rbob@example.test     one line per recipient, in order (index 0, 1, ...)
//! NFAILURE,DELAY        optional, after its R line: NOTIFY= (NEVER or the words)
//! Prfc822;bob@b.test    optional, after its R line: ORCPT= (address type;decoded address)
//! E                     end (last line; a file without it is refused)
//! ```
//!
//! SECURITY: addresses and the client text come from other processes; they are checked (lengths,
//! no control characters, so no line can be smuggled into this file or a header) before they are
//! written, and checked again when read back. The DSN lines (RFC 3461) are optional, so files
//! written before they existed still load; their values are bounded and control-free. So is
//! the `S` and `L` lines. The `W` line is parsed again (`OneClick::decode`) when read.

use moat_common::client::one_click::OneClick;
use moat_common::client::queue::{
    Dsn, MAX_ADDR_TYPE, MAX_BULK_RECIPIENTS, MAX_DSN_RECIPIENTS, MAX_ORCPT, Notify, Orcpt, Origin,
    RcptDsn, Ret,
};

/// The longest address accepted (RFC 5321: 64 + 1 + 255, rounded to the usual 320).
pub const MAX_ADDRESS: usize = 320;
/// The most recipients in one envelope (file): a trusted local peer's limit, a list's whole
/// membership. The injection applies each peer's own limit (`inject.rs`: 1000 for the rest).
pub const MAX_RECIPIENTS: usize = MAX_BULK_RECIPIENTS;
/// The largest envelope file read back: every recipient at the longest address, the most
/// per-recipient DSN lines an injection can carry, and room for the message's own lines.
pub const MAX_FILE: usize = MAX_RECIPIENTS * (MAX_ADDRESS + 2)
    + MAX_DSN_RECIPIENTS * (MAX_ORCPT + MAX_ADDR_TYPE + 32)
    + 64 * 1024;
/// The longest client description kept (longer ones are cut).
pub const MAX_CLIENT: usize = 200;

/// Everything the queue knows about a message besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub arrival: u64,
    pub origin: Origin,
    pub uid: u32,
    pub size: u64,
    pub client: String,
    /// "" is the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The DSN request (RET, ENVID, per recipient NOTIFY and ORCPT), normalized.
    pub dsn: Dsn,
    /// The sender asked for SMTPUTF8 (moat-remote needs it when the header is not ASCII).
    pub smtputf8: bool,
    /// VERP asked (the injection's `V`): each recipient gets its own sender (`verp.rs`).
    pub verp: bool,
    /// A list post's RFC 8058 attribute (the injection's `W`): the delivery agents prepend each
    /// recipient's `List-Unsubscribe` URL (`moat_common::client::one_click`).
    pub one_click: Option<OneClick>,
}

fn check_address(addr: &str) -> Result<(), String> {
    if addr.len() > MAX_ADDRESS {
        return Err(format!("address longer than {MAX_ADDRESS} bytes"));
    }
    if addr.chars().any(char::is_control) {
        return Err("address contains a control character".into());
    }
    Ok(())
}

/// The envelope sender: "" (null) or an address without control characters.
pub fn check_sender(addr: &str) -> Result<(), String> {
    check_address(addr).map_err(|e| format!("bad sender: {e}"))
}

/// A recipient: like a sender, not empty, with exactly one `@` between a local part and a domain.
pub fn check_recipient(addr: &str) -> Result<(), String> {
    check_address(addr).map_err(|e| format!("bad recipient: {e}"))?;
    let mut parts = addr.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(format!(
            "bad recipient {:?}: not local@domain",
            clean(addr, 80)
        )),
    }
}

/// `text` with control characters replaced by `?` and cut to at most `max` bytes (on a character
/// boundary): safe for one line of a file, a header or a log.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

impl Envelope {
    /// Checks the addresses (the injection server and the file reader both call this).
    pub fn check(&self) -> Result<(), String> {
        check_sender(&self.sender)?;
        if self.recipients.is_empty() {
            return Err("no recipients".into());
        }
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(format!("more than {MAX_RECIPIENTS} recipients"));
        }
        self.recipients
            .iter()
            .try_for_each(|r| check_recipient(r))?;
        if let Some(oc) = &self.one_click {
            oc.check()?;
        }
        self.dsn.check(self.recipients.len())
    }

    /// The file contents.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "V1\nT{}\nO{}\nU{}\nZ{}\nC{}\nF{}\n",
            self.arrival,
            self.origin.as_str(),
            self.uid,
            self.size,
            clean(&self.client, MAX_CLIENT),
            self.sender
        );
        if let Some(ret) = self.dsn.ret {
            out.push_str(&format!("Y{}\n", ret.as_str()));
        }
        if let Some(envid) = &self.dsn.envid {
            out.push_str(&format!("I{envid}\n"));
        }
        if self.smtputf8 {
            out.push_str("S\n");
        }
        if self.verp {
            out.push_str("L\n");
        }
        if let Some(oc) = &self.one_click {
            out.push_str(&format!("W{}\n", oc.encode()));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            out.push('R');
            out.push_str(r);
            out.push('\n');
            let dsn = self.dsn.recipient(i);
            if let Some(n) = dsn.notify {
                out.push_str(&format!("N{}\n", n.to_text()));
            }
            if let Some(o) = &dsn.orcpt {
                out.push_str(&format!("P{};{}\n", o.addr_type, o.addr));
            }
        }
        out.push_str("E\n");
        out.into_bytes()
    }

    /// Parses a file written by `encode`; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "envelope is not UTF-8".to_string())?;
        let body = text
            .strip_suffix("E\n")
            .ok_or("envelope has no end line (truncated?)")?;
        let mut lines = body.split_terminator('\n');
        if lines.next() != Some("V1") {
            return Err("unknown envelope format version".into());
        }
        let (mut arrival, mut origin, mut uid, mut size, mut client, mut sender) =
            (None, None, None, None, None, None);
        let mut recipients = Vec::new();
        let mut dsn = Dsn::default();
        let mut smtputf8 = false;
        let mut verp = false;
        let mut one_click = None;
        for line in lines {
            let (kind, value) = line.split_at_checked(1).ok_or("empty envelope line")?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
            match kind {
                "T" => arrival = Some(number(value)?),
                "O" => origin = Some(Origin::parse(value).ok_or("unknown origin")?),
                "U" => uid = Some(u32::try_from(number(value)?).map_err(|_| "bad uid")?),
                "Z" => size = Some(number(value)?),
                "C" => client = Some(value.to_string()),
                "F" => sender = Some(value.to_string()),
                "R" => {
                    recipients.push(value.to_string());
                    dsn.recipients.push(RcptDsn::default());
                }
                "Y" if dsn.ret.is_none() => dsn.ret = Some(Ret::parse(value).ok_or("bad RET")?),
                "I" if dsn.envid.is_none() => dsn.envid = Some(value.to_string()),
                "S" if !smtputf8 && value.is_empty() => smtputf8 = true,
                "L" if !verp && value.is_empty() => verp = true,
                "W" if one_click.is_none() => one_click = Some(OneClick::decode(value)?),
                "N" | "P" => {
                    let last = dsn.recipients.last_mut().ok_or("DSN line before R")?;
                    if kind == "N" && last.notify.is_none() {
                        last.notify = Some(Notify::parse(value).ok_or("bad NOTIFY")?);
                    } else if kind == "P" && last.orcpt.is_none() {
                        let (t, a) = value.split_once(';').ok_or("bad ORCPT")?;
                        last.orcpt = Some(Orcpt {
                            addr_type: t.to_string(),
                            addr: a.to_string(),
                        });
                    } else {
                        return Err(format!("repeated envelope line kind {kind:?}"));
                    }
                }
                _ => return Err(format!("unknown envelope line kind {kind:?}")),
            }
        }
        let missing = |what: &str| format!("envelope has no {what}");
        let env = Envelope {
            arrival: arrival.ok_or_else(|| missing("arrival time"))?,
            origin: origin.ok_or_else(|| missing("origin"))?,
            uid: uid.ok_or_else(|| missing("uid"))?,
            size: size.ok_or_else(|| missing("size"))?,
            client: client.ok_or_else(|| missing("client"))?,
            sender: sender.ok_or_else(|| missing("sender"))?,
            recipients,
            dsn: {
                dsn.normalize();
                dsn
            },
            smtputf8,
            verp,
            one_click,
        };
        env.check()?;
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            arrival: 1_700_000_000,
            origin: Origin::Submission,
            uid: 1001,
            size: 4096,
            client: "[192.0.2.1] mx.example".into(),
            sender: "alice@example.test".into(),
            recipients: vec!["bob@example.test".into(), "\"c d\"@example.test".into()],
            dsn: Dsn::default(),
            smtputf8: false,
            verp: false,
            one_click: None,
        }
    }

    fn with_dsn() -> Envelope {
        Envelope {
            dsn: Dsn {
                ret: Some(Ret::Full),
                envid: Some("QQ314159".into()),
                recipients: vec![
                    RcptDsn {
                        notify: Some(Notify::NEVER),
                        orcpt: None,
                    },
                    RcptDsn {
                        notify: Some(Notify {
                            success: false,
                            failure: true,
                            delay: true,
                        }),
                        orcpt: Some(Orcpt {
                            addr_type: "rfc822".into(),
                            addr: "orig;x@example.test".into(),
                        }),
                    },
                ],
            },
            ..sample()
        }
    }

    #[test]
    fn dsn_round_trip_and_old_files() {
        let env = with_dsn();
        let bytes = env.encode();
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(text.contains("\nYFULL\nIQQ314159\nRbob@example.test\nNNEVER\nR\"c d\"@example.test\nNFAILURE,DELAY\nPrfc822;orig;x@example.test\nE\n"));
        assert_eq!(Envelope::decode(&bytes), Ok(env));
        for cut in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A file from before the DSN lines.
        let old = b"V1\nT1\nOsmtp\nU1\nZ1\nC\nFa@b\nRc@d\nE\n";
        let back = Envelope::decode(old).expect("old file loads");
        assert_eq!(back.dsn, Dsn::default());
        // Only one recipient asking: the others default.
        let mut one = sample();
        one.dsn.recipients = vec![RcptDsn::default(), with_dsn().dsn.recipients[1].clone()];
        assert_eq!(Envelope::decode(&one.encode()), Ok(one));
    }

    #[test]
    fn hostile_dsn_lines_are_refused() {
        let base = "V1\nT1\nOsmtp\nU1\nZ1\nC\nFa@b\n";
        for bad in [
            "NNEVER\nRc@d\n",
            "Rc@d\nNNEVER\nNNEVER\n",
            "Rc@d\nNnever\n",
            "Rc@d\nPrfc822\n",
            "Rc@d\nPrfc 822;a@b\n",
            "Rc@d\nPrfc822;\n",
            "YALL\nRc@d\n",
            "YFULL\nYHDRS\nRc@d\n",
            "I\nRc@d\n",
            "Ia\rb\nRc@d\n",
            "Ia\0b\nRc@d\n",
            "S\nS\nRc@d\n",
            "Sx\nRc@d\n",
            "L\nL\nRc@d\n",
            "Lverp\nRc@d\n",
        ] {
            let file = format!("{base}{bad}E\n");
            assert!(Envelope::decode(file.as_bytes()).is_err(), "{bad:?}");
        }
        let long = format!("{base}I{}\nRc@d\nE\n", "x".repeat(101));
        assert!(Envelope::decode(long.as_bytes()).is_err());
        let long = format!("{base}Rc@d\nPrfc822;{}\nE\n", "x".repeat(501));
        assert!(Envelope::decode(long.as_bytes()).is_err());
    }

    #[test]
    fn round_trip() {
        let env = sample();
        assert_eq!(Envelope::decode(&env.encode()), Ok(env.clone()));
        let utf8 = Envelope {
            smtputf8: true,
            recipients: vec!["ü@example.test".into()],
            ..env.clone()
        };
        assert!(String::from_utf8_lossy(&utf8.encode()).contains("\nS\nR"));
        assert_eq!(Envelope::decode(&utf8.encode()), Ok(utf8));
        let verp = Envelope {
            verp: true,
            ..env.clone()
        };
        assert!(String::from_utf8_lossy(&verp.encode()).contains("\nL\nR"));
        assert_eq!(Envelope::decode(&verp.encode()), Ok(verp));
        let oc = OneClick::for_list("https://l.test", "dev@x.test", &[3; 32]).expect("oc");
        let one_click = Envelope {
            verp: true,
            one_click: Some(oc.clone()),
            ..env.clone()
        };
        let text = String::from_utf8(one_click.encode()).expect("utf8");
        assert!(
            text.contains(&format!("\nL\nW{}\nR", oc.encode())),
            "{text}"
        );
        assert_eq!(Envelope::decode(&one_click.encode()), Ok(one_click));
        for bad in ["W", "Wx y z", "Whttps://l.test/u/ 00 a@b"] {
            let file = format!("V1\nT1\nOsmtp\nU1\nZ1\nC\nFa@b\n{bad}\nRc@d\nE\n");
            assert!(Envelope::decode(file.as_bytes()).is_err(), "{bad:?}");
        }
        let twice = format!(
            "V1\nT1\nOsmtp\nU1\nZ1\nC\nFa@b\nW{0}\nW{0}\nRc@d\nE\n",
            oc.encode()
        );
        assert!(Envelope::decode(twice.as_bytes()).is_err());
        // Files from before the `L` line load as plain (non-VERP) messages.
        let old = Envelope::decode(b"V1\nT1\nOsmtp\nU1\nZ1\nC\nFa@b\nRc@d\nE\n").expect("loads");
        assert!(!old.verp);
        let null = Envelope {
            sender: String::new(),
            ..env
        };
        assert_eq!(Envelope::decode(&null.encode()), Ok(null));
    }

    #[test]
    fn truncated_or_hostile_files_are_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Envelope::decode(b"V1\nT1\nOsmtp\nU1\nZ1\nC\nF\nE\n").is_err());
        assert!(Envelope::decode(b"V2\nE\n").is_err());
        let mut env = sample();
        env.client = "evil\nRextra@example.test".into();
        let back = Envelope::decode(&env.encode()).expect("client is cleaned");
        assert_eq!(back.recipients.len(), 2);
    }

    #[test]
    fn a_list_sized_envelope_round_trips_and_one_more_is_refused() {
        let mut env = Envelope {
            recipients: (0..MAX_RECIPIENTS)
                .map(|i| format!("member{i}@d{}.example", i % 10))
                .collect(),
            verp: true,
            ..sample()
        };
        let bytes = env.encode();
        assert!(bytes.len() <= MAX_FILE);
        assert_eq!(Envelope::decode(&bytes), Ok(env.clone()));
        env.recipients.push("one@more.example".into());
        assert!(env.check().is_err());
        assert!(Envelope::decode(&env.encode()).is_err());
    }

    #[test]
    fn address_checks() {
        assert!(check_recipient("a@b").is_ok());
        for bad in ["", "ab", "a@b@c", "@b", "a@", "a\r\n@b", "a\0@b"] {
            assert!(check_recipient(bad).is_err(), "{bad:?}");
        }
        assert!(check_recipient(&format!("{}@b", "a".repeat(400))).is_err());
        assert!(check_sender("").is_ok());
        assert!(check_sender("x\ny").is_err());
        assert_eq!(clean("a\r\nb", 10), "a??b");
        assert_eq!(clean("héllo", 2), "h");
    }
}
