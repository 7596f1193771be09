//! Whether a poster's domain asks receivers to quarantine or reject mail that fails DMARC
//! (RFC 7489): a list post keeps the poster's From: but not their DKIM signature's validity
//! (the subject prefix and footer change the signed text) nor SPF (it comes from our IP), so
//! such a post would be refused: its From: is rewritten instead (`rewrite.rs`, Mailman's
//! munge_from).
//!
//! The lookup: `_dmarc.<from domain>` TXT; when that holds no DMARC record, `_dmarc.<org>` where
//! org is the last two labels of the domain, and then its `sp=` (else `p=`) applies. This is a
//! simplification of RFC 7489 §3.2 (the organizational domain is found with the Public Suffix
//! List): under a multi-label public suffix (`example.co.uk`) the second query asks `co.uk`,
//! which publishes no DMARC record, so a subdomain of such a domain without its own record is
//! judged by no policy. Domains that publish for themselves (the common case) are exact.
//!
//! A lookup that fails (SERVFAIL, timeout) counts as "might reject": the From: is rewritten,
//! which is always safe, and the failure is logged. Answers (not failures) are cached for
//! `CACHE_SECS` per domain, at most `CACHE_MAX` domains.
//!
//! SECURITY: DNS answers are untrusted: at most `MAX_RECORDS` TXT records of at most
//! `MAX_RECORD` bytes each are read, and only the `p`/`sp` tags are looked at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use moat_common::config::{parse_nameserver, system_nameserver};
use moat_common::{info, warn};

/// How long an answer is kept.
pub const CACHE_SECS: u64 = 600;
/// The most domains cached.
pub const CACHE_MAX: usize = 10_000;
/// The most TXT records looked at per name.
const MAX_RECORDS: usize = 20;
/// The longest TXT record (its strings joined) looked at.
const MAX_RECORD: usize = 4096;

/// What a domain's DMARC policy means for a list post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// p= (or sp=) is quarantine or reject, or the lookup failed: rewrite the From:.
    Munge(String),
    /// No record, or p=none: leave the From: alone.
    Leave,
}

/// One name's answer: its DMARC record's (p, sp), or none.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Found { p: String, sp: Option<String> },
    None,
}

struct Checker {
    resolver: Option<TokioResolver>,
    server: SocketAddr,
    cache: Mutex<HashMap<String, (Instant, Verdict)>>,
}

static CHECKER: OnceLock<Checker> = OnceLock::new();

/// The verdict for From: domain `domain` (lower-case), asking `nameserver` (`IP[:PORT]`;
/// `None` = the first `nameserver` of /etc/resolv.conf).
pub async fn check(nameserver: Option<&str>, qid: &str, domain: &str) -> Verdict {
    let checker = CHECKER.get_or_init(|| Checker::new(nameserver));
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if let Some(v) = checker.cached(&domain) {
        return v;
    }
    let Some(resolver) = checker.resolver.as_ref() else {
        return Verdict::Munge("no DNS resolver".into());
    };
    let own = match lookup(resolver, &domain).await {
        Ok(r) => r,
        Err(e) => {
            warn!(id = qid; "DMARC lookup for {domain} at {} failed: {e}: From: rewritten to be \
                safe", checker.server);
            return Verdict::Munge(format!("DMARC lookup failed: {e}"));
        }
    };
    let verdict = match own {
        Record::Found { p, .. } => judge(&domain, &p),
        Record::None => match organizational(&domain) {
            Some(org) => match lookup(resolver, org).await {
                Ok(Record::Found { p, sp }) => judge(org, sp.as_deref().unwrap_or(&p)),
                Ok(Record::None) => Verdict::Leave,
                Err(e) => {
                    warn!(id = qid; "DMARC lookup for {org} at {} failed: {e}: From: rewritten \
                        to be safe", checker.server);
                    return Verdict::Munge(format!("DMARC lookup failed: {e}"));
                }
            },
            None => Verdict::Leave,
        },
    };
    info!(id = qid; "DMARC policy of {domain}: {}", match &verdict {
        Verdict::Munge(why) => why.as_str(),
        Verdict::Leave => "none (From: kept)",
    });
    checker.store(domain, verdict.clone());
    verdict
}

fn judge(domain: &str, policy: &str) -> Verdict {
    if policy == "quarantine" || policy == "reject" {
        Verdict::Munge(format!("{domain} publishes p={policy}"))
    } else {
        Verdict::Leave
    }
}

/// Whether a post with From: domain `from` surely passes DMARC as it is when it goes from the
/// list's domain `list` (SPF of `list-return-…@list`, DKIM `d=list`): relaxed alignment
/// (RFC 7489 §3.1) needs the same organizational domain, which without the Public Suffix List
/// is known only when one domain is the other or under it (`lists.x.co.uk` and `x.co.uk`;
/// never two registrations under `co.uk`). The parent must have two labels at least (a bare
/// TLD is never anyone's organization) and must not look like a country's public suffix
/// (`co.uk`, `com.au`: `likely_suffix`). Anything else is looked up.
pub fn aligned_with_list(from: &str, list: &str) -> bool {
    let from = from.trim_end_matches('.').to_ascii_lowercase();
    let list = list.trim_end_matches('.').to_ascii_lowercase();
    let under = |child: &str, parent: &str| {
        parent.contains('.')
            && !parent.starts_with('.')
            && !likely_suffix(parent)
            && child
                .strip_suffix(parent)
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
    };
    !from.is_empty() && (from == list || under(&from, &list) || under(&list, &from))
}

/// Whether a two-label domain looks like a public suffix under a country code (`co.uk`,
/// `com.au`, `ac.jp`): a guess without the Public Suffix List, used only to look up more.
fn likely_suffix(domain: &str) -> bool {
    const SECOND: [&str; 12] = [
        "co", "com", "net", "org", "ac", "edu", "gov", "gob", "go", "ne", "or", "ltd",
    ];
    match domain.split_once('.') {
        Some((second, tld)) => tld.len() == 2 && !tld.contains('.') && SECOND.contains(&second),
        None => true,
    }
}

/// The simplified organizational domain: the last two labels, when that is not `domain`.
fn organizational(domain: &str) -> Option<&str> {
    let mut dots = domain.rmatch_indices('.');
    dots.next()?;
    let (at, _) = dots.next()?;
    Some(&domain[at + 1..])
}

impl Checker {
    fn new(nameserver: Option<&str>) -> Checker {
        let server = nameserver
            .and_then(parse_nameserver)
            .unwrap_or_else(system_nameserver);
        let resolver = match build(server) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!("DMARC: cannot set up the DNS resolver for {server}: {e}");
                None
            }
        };
        Checker {
            resolver,
            server,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, domain: &str) -> Option<Verdict> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(domain)
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(CACHE_SECS))
            .map(|(_, v)| v.clone())
    }

    fn store(&self, domain: String, verdict: Verdict) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(CACHE_SECS));
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(domain, (Instant::now(), verdict));
    }
}

fn build(server: SocketAddr) -> Result<TokioResolver, String> {
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = server.port();
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    ns.connections = vec![udp, tcp];
    let config = ResolverConfig::from_name_servers(vec![ns]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().timeout = Duration::from_secs(5);
    builder.options_mut().attempts = 1;
    builder.build().map_err(|e| e.to_string())
}

/// `_dmarc.<domain>`'s DMARC record; `Err` for a failed lookup (not for "no such name").
async fn lookup(resolver: &TokioResolver, domain: &str) -> Result<Record, String> {
    let name = format!("_dmarc.{domain}.");
    let texts: Vec<String> = match resolver.txt_lookup(name.as_str()).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => {
                    let mut joined = Vec::new();
                    for s in t.txt_data.iter() {
                        joined.extend_from_slice(s);
                    }
                    (joined.len() <= MAX_RECORD)
                        .then(|| String::from_utf8_lossy(&joined).into_owned())
                }
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect(),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    Ok(parse(&texts))
}

/// The DMARC record among `texts`: exactly one starting `v=DMARC1` (RFC 7489 §6.6.3: several
/// mean none) with a `p=` tag.
fn parse(texts: &[String]) -> Record {
    let records: Vec<&String> = texts
        .iter()
        .filter(|t| {
            let t = t.trim_start();
            t.len() >= 8 && t.is_char_boundary(8) && t[..8].eq_ignore_ascii_case("v=DMARC1") && {
                let rest = t[8..].trim_start();
                rest.is_empty() || rest.starts_with(';')
            }
        })
        .collect();
    let [record] = records.as_slice() else {
        return Record::None;
    };
    let mut p = None;
    let mut sp = None;
    for tag in record.split(';') {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => p = Some(value),
            "sp" => sp = Some(value),
            _ => {}
        }
    }
    match p {
        Some(p) => Record::Found { p, sp },
        None => Record::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: &[&str]) -> Record {
        parse(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn records() {
        assert_eq!(
            rec(&["v=DMARC1; p=reject; rua=mailto:x@y"]),
            Record::Found {
                p: "reject".into(),
                sp: None
            }
        );
        assert_eq!(
            rec(&["spf stuff", "v=DMARC1;p=None ; sp=Quarantine"]),
            Record::Found {
                p: "none".into(),
                sp: Some("quarantine".into())
            }
        );
        assert_eq!(
            rec(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]),
            Record::None
        );
        assert_eq!(rec(&["v=DMARC10; p=reject"]), Record::None);
        assert_eq!(rec(&["v=DMARC1; rua=x"]), Record::None);
        assert_eq!(rec(&[]), Record::None);
        assert_eq!(rec(&["v=DMAé"]), Record::None);
    }

    #[test]
    fn organizational_domain() {
        assert_eq!(organizational("mail.example.org"), Some("example.org"));
        assert_eq!(organizational("a.b.example.org"), Some("example.org"));
        assert_eq!(organizational("example.org"), None);
        assert_eq!(organizational("localhost"), None);
        assert!(aligned_with_list("lists.example.org", "Example.org"));
        assert!(aligned_with_list("example.org", "lists.example.org."));
        assert!(!aligned_with_list("example.org", "example.com"));
        assert_eq!(
            judge("x", "reject"),
            Verdict::Munge("x publishes p=reject".into())
        );
        assert_eq!(judge("x", "none"), Verdict::Leave);
    }

    #[test]
    fn alignment_under_multi_label_suffixes() {
        let list = "lists.x.co.uk";
        // The list's own domain, its organization and its subdomains: no lookup needed.
        for from in ["lists.x.co.uk", "x.co.uk", "X.Co.UK", "a.lists.x.co.uk"] {
            assert!(aligned_with_list(from, list), "{from}");
        }
        // Other registrations under co.uk, look-alikes, and the suffix itself: looked up.
        for from in [
            "y.co.uk",
            "mail.y.co.uk",
            "evil-x.co.uk",
            "xx.co.uk",
            "co.uk",
            "uk",
            "other.x.co.uk",
            "",
        ] {
            assert!(!aligned_with_list(from, list), "{from}");
        }
        assert!(!aligned_with_list("example.org", "org"));
        assert!(aligned_with_list("example.org", "lists.example.org"));
        assert!(aligned_with_list("example.de", "lists.example.de"));
        assert!(!aligned_with_list("com.au", "lists.x.com.au"));
    }
}
