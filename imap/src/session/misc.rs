//! ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342) and the quota commands (RFC 9208:
//! GETQUOTAROOT, GETQUOTA; SETQUOTA is the administrator's, `moat user quota`).
//!
//! The quota root is `""`, the whole Maildir++ `maildirsize` quota, reported in KiB (STORAGE)
//! and messages (MESSAGE) when it limits them. A user without a quota has no quota root.
//!
//! SECURITY: what a client says in ID is only logged, cut to `ID_LOG_PAIRS` pairs of at most
//! `ID_LOG_VALUE` bytes each, with control characters escaped.

use imap_codec::imap_types::core::{AString, IString, NString, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::mailbox::Mailbox;
use moat_common::info;
use moat_maildir::{QuotaLimit, QuotaUsage};

use super::parse::mailbox_bytes;
use super::{Flow, Session, blocking, capabilities, response};
use crate::mailbox::status::quota;
use crate::mailbox::store::StoreError;
use crate::wire;

const ID_LOG_PAIRS: usize = 30;
const ID_LOG_VALUE: usize = 128;

fn shown(bytes: &[u8]) -> String {
    let cut = bytes.get(..ID_LOG_VALUE).unwrap_or(bytes);
    String::from_utf8_lossy(cut).escape_debug().to_string()
}

/// `(STORAGE used limit MESSAGE used limit)` for the resources the quota limits.
fn resources(limit: QuotaLimit, usage: QuotaUsage) -> String {
    let mut parts = Vec::new();
    if limit.bytes > 0 {
        parts.push(format!(
            "STORAGE {} {}",
            usage.bytes.div_ceil(1024),
            limit.bytes / 1024
        ));
    }
    if limit.messages > 0 {
        parts.push(format!("MESSAGE {} {}", usage.messages, limit.messages));
    }
    format!("({})", parts.join(" "))
}

impl Session {
    pub(super) fn id(
        &mut self,
        tag: &str,
        parameters: Option<Vec<(IString<'static>, NString<'static>)>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        if let Some(params) = parameters.filter(|p| !p.is_empty()) {
            let said: Vec<String> = params
                .iter()
                .take(ID_LOG_PAIRS)
                .map(|(k, v)| {
                    let v =
                        v.0.as_ref()
                            .map_or("NIL".to_string(), |v| shown(v.as_ref()));
                    format!("{}={v}", shown(k.as_ref()))
                })
                .collect();
            info!("{}: client ID {}", self.config.who, said.join(", "));
        }
        response::untagged(out, b"ID (\"name\" \"Moat\")");
        response::ok(out, tag, "ID completed.");
        Flow::Continue
    }

    pub(super) fn enable(
        &mut self,
        tag: &str,
        capabilities: Vec1<CapabilityEnable<'static>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let mut enabled = Vec::new();
        for cap in capabilities.as_ref() {
            let name = cap.to_string();
            if capabilities::enableable(&name) {
                if name.eq_ignore_ascii_case("CONDSTORE") {
                    self.condstore = true;
                }
                enabled.push(name.to_ascii_uppercase());
            }
        }
        let mut line = b"ENABLED".to_vec();
        for name in enabled {
            line.push(b' ');
            line.extend_from_slice(name.as_bytes());
        }
        response::untagged(out, &line);
        response::ok(out, tag, "ENABLE completed.");
        Flow::Continue
    }

    pub(super) fn namespace(&mut self, tag: &str, out: &mut Vec<u8>) -> Flow {
        response::untagged(out, b"NAMESPACE ((\"\" \"/\")) NIL NIL");
        response::ok(out, tag, "NAMESPACE completed.");
        Flow::Continue
    }

    pub(super) async fn quota_root(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(name) = self.checked(tag, mailbox_bytes(&mailbox), out) else {
            return Flow::Continue;
        };
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        let imap = name.imap.clone();
        let result = blocking(move || {
            if !store.exists(&name) {
                return Err(StoreError::NonExistent);
            }
            quota(store.root())
        })
        .await;
        match result {
            Ok(q) => {
                let mut line = b"QUOTAROOT ".to_vec();
                wire::astring(&mut line, imap.as_bytes());
                if q.is_some() {
                    line.extend_from_slice(b" \"\"");
                }
                response::untagged(out, &line);
                if let Some((limit, usage)) = q {
                    let data = format!("QUOTA \"\" {}", resources(limit, usage));
                    response::untagged(out, data.as_bytes());
                }
                response::ok(out, tag, "GETQUOTAROOT completed.");
            }
            Err(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }

    pub(super) async fn quota(
        &mut self,
        tag: &str,
        root: AString<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        let asked_root = root.as_ref().is_empty();
        let result = blocking(move || quota(store.root())).await;
        match result {
            Ok(Some((limit, usage))) if asked_root => {
                let data = format!("QUOTA \"\" {}", resources(limit, usage));
                response::untagged(out, data.as_bytes());
                response::ok(out, tag, "GETQUOTA completed.");
            }
            Ok(_) => response::no(out, tag, "[NONEXISTENT] No such quota root."),
            Err(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_resources_in_kib() {
        let l = QuotaLimit {
            bytes: 10 * 1024 * 1024,
            messages: 0,
        };
        let u = QuotaUsage {
            bytes: 1500,
            messages: 3,
        };
        assert_eq!(resources(l, u), "(STORAGE 2 10240)");
        let l = QuotaLimit {
            bytes: 0,
            messages: 100,
        };
        assert_eq!(resources(l, u), "(MESSAGE 3 100)");
        assert_eq!(shown(b"a\nb"), "a\\nb");
    }
}
