//! What we advertise in CAPABILITY, the greeting and the OK after a login: only what works.
//!
//! The selected state adds its extensions in `SELECTED_STATE` (one place), e.g. `IDLE`,
//! `UNSELECT`, `UIDPLUS`, `MOVE`, `ESEARCH`, `CONDSTORE`, `BINARY` and `APPENDLIMIT=<n>`
//! (`appendlimit` below, the site's `max_message_size`); ENABLE follows the list (CONDSTORE can be enabled once listed).
//!
//! SECURITY: before TLS on the plain port, logins are only offered where they are allowed
//! (loopback with `plaintext_on_loopback`); elsewhere `LOGINDISABLED` and no `AUTH=` (RFC 3501
//! §6.2.3, RFC 9051 §6.2.3), and STARTTLS when a certificate is loaded.

/// Offered in every state.
const BASE: &[&str] = &[
    "IMAP4rev1",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "NAMESPACE",
    "CHILDREN",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "QUOTA",
];

/// The selected-state extensions, added here as they are implemented (`APPENDLIMIT=` is
/// added by `list`).
const SELECTED_STATE: &[&str] = &[
    "IDLE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CONDSTORE",
    "ESEARCH",
    // FETCH BINARY[]/BINARY.PEEK/BINARY.SIZE and APPEND of a `~{n}` literal8 (RFC 3516).
    "BINARY",
];

/// `APPENDLIMIT=<n>` once APPEND exists (RFC 7889), from the site's message size limit.
pub fn appendlimit(max_message_size: u64) -> String {
    format!("APPENDLIMIT={max_message_size}")
}

/// Where the connection stands, as far as capabilities go.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub authenticated: bool,
    pub tls: bool,
    pub tls_available: bool,
    /// Plaintext logins are allowed on this connection (loopback + setting).
    pub plaintext_allowed: bool,
    /// APPENDLIMIT.
    pub append_limit: u64,
}

/// The capability list, space-separated.
pub fn list(f: Facts) -> String {
    let mut caps: Vec<&str> = BASE.to_vec();
    let limit = appendlimit(f.append_limit);
    if f.authenticated {
        caps.extend_from_slice(SELECTED_STATE);
        caps.push(&limit);
    } else {
        if f.tls_available && !f.tls {
            caps.push("STARTTLS");
        }
        if f.tls || f.plaintext_allowed {
            caps.push("AUTH=PLAIN");
        } else {
            caps.push("LOGINDISABLED");
        }
    }
    caps.join(" ")
}

/// True if ENABLE may turn this extension on: it is advertised and ENABLE-able (RFC 5161).
pub fn enableable(name: &str) -> bool {
    name.eq_ignore_ascii_case("CONDSTORE") && SELECTED_STATE.contains(&"CONDSTORE")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(authenticated: bool, tls: bool, plaintext_allowed: bool) -> Facts {
        Facts {
            authenticated,
            tls,
            tls_available: true,
            plaintext_allowed,
            append_limit: 10,
        }
    }

    #[test]
    fn logins_only_where_allowed() {
        let plain = list(facts(false, false, false));
        assert!(plain.contains("STARTTLS") && plain.contains("LOGINDISABLED"));
        assert!(!plain.contains("AUTH="));
        let local = list(facts(false, false, true));
        assert!(local.contains("AUTH=PLAIN") && !local.contains("LOGINDISABLED"));
        let tls = list(facts(false, true, false));
        assert!(tls.contains("AUTH=PLAIN") && !tls.contains("STARTTLS"));
        let after = list(facts(true, true, false));
        assert!(after.starts_with("IMAP4rev1 ") && !after.contains("AUTH="));
        assert!(enableable("CONDSTORE") && after.contains(" APPENDLIMIT=10"));
        assert!(after.contains(" BINARY ") && !tls.contains("BINARY"));
        assert_eq!(appendlimit(10), "APPENDLIMIT=10");
    }
}
