//! Where mail for a domain goes: a static route (host, or an IP, at its port) or the MX records
//! (RFC 5321 §5.1): lowest preference first; no MX records (NOERROR, no data) → the domain
//! itself is the implicit MX; a null MX (RFC 7505: one MX with the root as exchange) or a domain
//! that does not exist → permanent failure; lookup failures → temporary. Each host's A and AAAA
//! addresses are tried in turn by the caller.
//!
//! SECURITY: DNS answers are untrusted: at most `MAX_HOSTS` hosts and `MAX_ADDRESSES` addresses
//! are used, so a hostile zone cannot make one delivery open thousands of connections.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use moat_common::config::Route;

/// The most MX hosts tried per delivery.
pub const MAX_HOSTS: usize = 10;
/// The most addresses tried per delivery.
pub const MAX_ADDRESSES: usize = 16;

/// One host to try, with the name its certificate should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: u16,
}

/// Why no destination was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    Permanent(String),
    Temporary(String),
}

pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    pub fn new(nameserver: SocketAddr) -> Result<Dns, String> {
        let mut udp = ConnectionConfig::udp();
        udp.port = nameserver.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = nameserver.port();
        let mut server = NameServerConfig::udp_and_tcp(nameserver.ip());
        server.connections = vec![udp, tcp];
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        builder.options_mut().timeout = Duration::from_secs(5);
        builder.options_mut().attempts = 2;
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Dns { resolver })
    }

    /// The hosts for `domain` in the order to try them.
    pub async fn hosts(
        &self,
        domain: &str,
        route: Option<&Route>,
        port: u16,
    ) -> Result<Vec<Host>, LookupError> {
        if let Some(r) = route {
            return Ok(vec![Host {
                name: r.host.clone(),
                port: r.port,
            }]);
        }
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut mx: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if mx.is_empty() {
                    return Ok(implicit(domain, port));
                }
                if mx.len() == 1 && mx[0].1.trim_end_matches('.').is_empty() {
                    return Err(LookupError::Permanent(format!(
                        "5.1.10 {domain} accepts no mail (null MX)"
                    )));
                }
                mx.sort_by_key(|(p, _)| *p);
                Ok(mx
                    .into_iter()
                    .filter(|(_, h)| !h.trim_end_matches('.').is_empty())
                    .take(MAX_HOSTS)
                    .map(|(_, h)| Host {
                        name: h.trim_end_matches('.').to_ascii_lowercase(),
                        port,
                    })
                    .collect())
            }
            Err(e) if e.is_nx_domain() => Err(LookupError::Permanent(format!(
                "5.1.2 {domain} does not exist (DNS)"
            ))),
            Err(e) if e.is_no_records_found() => Ok(implicit(domain, port)),
            Err(e) => Err(LookupError::Temporary(format!(
                "4.4.3 MX lookup for {domain} failed: {e}"
            ))),
        }
    }

    /// The addresses of one host (an IP literal is its own address).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips.iter().take(MAX_ADDRESSES).collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Err(LookupError::Permanent(
                format!("5.4.4 {host} has no address"),
            )),
            Err(e) => Err(LookupError::Temporary(format!(
                "4.4.3 address lookup for {host} failed: {e}"
            ))),
        }
    }
}

fn implicit(domain: &str, port: u16) -> Vec<Host> {
    vec![Host {
        name: domain.to_string(),
        port,
    }]
}
