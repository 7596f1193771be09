//! RFC 8058 one-click unsubscribe: the per-recipient `List-Unsubscribe` URL of a list post.
//!
//! A post is queued once for all its members, so moat-lists cannot write a per-member URL into
//! it. It gives the queue a [`OneClick`] attribute instead: the list's base URL
//! (`<web_url>/u/<list>/`), the list's one-click key K = HMAC-SHA256(list secret, "one-click")
//! in hex, and the list's `mailto:` unsubscribe address. The queue keeps it in the envelope and
//! passes it to moat-local and moat-remote with each delivery; they prepend, per recipient,
//!
//! ```text
//! List-Unsubscribe: <BASE user=host/MAC>,
//!  <mailto:LIST-unsubscribe@DOMAIN>
//! List-Unsubscribe-Post: List-Unsubscribe=One-Click
//! ```
//!
//! where `user=host` is the recipient with its last `@` turned into `=`, percent-encoded, and
//! MAC the first 16 bytes (32 hex digits) of HMAC-SHA256(K, recipient lower-cased). moat-lists'
//! HTTPS endpoint recomputes the MAC to check a request ([`check_mac`]).
//!
//! SECURITY: K lets its holder unsubscribe members of that one list only (it is derived from the
//! list's secret, which never leaves moat-lists and moat-auth). The attribute crosses three
//! sockets and sits in the queue's files, so every holder parses it again (`decode`): an https
//! URL of printable ASCII without blanks, brackets or commas, a 64-hex-digit key, a plain
//! address; nothing that can end a header line.

use ring::hmac;

/// The longest base URL accepted.
pub const MAX_URL: usize = 512;
/// The longest `mailto:` address accepted.
pub const MAX_MAILTO: usize = 320;
/// Bytes of the MAC in the URL (128 bits: not guessable).
pub const MAC_BYTES: usize = 16;

/// The one-click attribute of a queued list post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneClick {
    /// `https://host[:port]/u/<list>/`: the recipient's token is appended.
    pub url: String,
    /// K, 64 lower-case hex digits.
    pub key: String,
    /// `LIST-unsubscribe@DOMAIN`, for the `mailto:` form beside the URL.
    pub mailto: String,
}

/// K for a list: HMAC-SHA256(list secret, "one-click").
pub fn list_key(secret: &[u8; 32]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, b"one-click");
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The MAC for `recipient` under K (`key`), as 32 lower-case hex digits.
pub fn mac(key: &[u8], recipient: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, recipient.to_lowercase().as_bytes());
    hex(&tag.as_ref()[..MAC_BYTES])
}

/// Whether `given` is the MAC of `recipient` under K, compared in constant time.
pub fn check_mac(key: &[u8], recipient: &str, given: &str) -> bool {
    let want = mac(key, recipient);
    if given.len() != want.len() {
        return false;
    }
    want.bytes()
        .zip(given.to_ascii_lowercase().bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Percent-encodes `text` for one URL path segment: only `A-Z a-z 0-9 - . _ ~ @ =` stay.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded path segment; `None` for a bad escape, a `/`, a control character
/// or text that is not UTF-8.
pub fn decode_segment(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = text.get(i + 1..i + 3)?;
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(pair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('/') && !s.chars().any(char::is_control)).then_some(s)
}

/// The URL form of a recipient: `user=host` (its last `@` made `=`), percent-encoded.
pub fn encode_recipient(recipient: &str) -> Option<String> {
    let (local, domain) = recipient.rsplit_once('@')?;
    Some(encode_segment(&format!("{local}={domain}")))
}

/// The inverse of `encode_recipient`: split at the last `=` (a domain holds none).
pub fn decode_recipient(segment: &str) -> Option<String> {
    let text = decode_segment(segment)?;
    let (local, domain) = text.rsplit_once('=')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

impl OneClick {
    /// The attribute of a list: `web_url` is `https://host[:port]` without a trailing `/`.
    pub fn for_list(web_url: &str, list: &str, secret: &[u8; 32]) -> Result<OneClick, String> {
        let (local, domain) = list.rsplit_once('@').ok_or("list address without @")?;
        let oc = OneClick {
            url: format!(
                "{}/u/{}/",
                web_url.trim_end_matches('/'),
                encode_segment(list)
            ),
            key: hex(&list_key(secret)),
            mailto: format!("{local}-unsubscribe@{domain}"),
        };
        oc.check()?;
        Ok(oc)
    }

    /// Checks every part (see the module's SECURITY note).
    pub fn check(&self) -> Result<(), String> {
        let url_ok = self.url.len() <= MAX_URL
            && self.url.starts_with("https://")
            && self.url.ends_with('/')
            && self
                .url
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>,\"\\".contains(&b));
        if !url_ok {
            return Err("bad one-click URL".into());
        }
        if self.key.len() != 64 || !self.key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("bad one-click key".into());
        }
        let mailto_ok = self.mailto.len() <= MAX_MAILTO
            && self
                .mailto
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>,\"\\".contains(&b))
            && self
                .mailto
                .rsplit_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
        if !mailto_ok {
            return Err("bad one-click mailto address".into());
        }
        Ok(())
    }

    /// One text field: `URL KEY MAILTO` (none of them holds a blank).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.url, self.key, self.mailto)
    }

    /// The inverse of `encode`, checked.
    pub fn decode(text: &str) -> Result<OneClick, String> {
        let mut parts = text.split(' ');
        let (Some(url), Some(key), Some(mailto), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("one-click attribute is not URL KEY MAILTO".into());
        };
        let oc = OneClick {
            url: url.to_string(),
            key: key.to_ascii_lowercase(),
            mailto: mailto.to_string(),
        };
        oc.check()?;
        Ok(oc)
    }

    /// The recipient's URL.
    pub fn url_for(&self, recipient: &str) -> Result<String, String> {
        let key = unhex(&self.key).ok_or("bad one-click key")?;
        let who = encode_recipient(recipient).ok_or("recipient without @")?;
        Ok(format!("{}{who}/{}", self.url, mac(&key, recipient)))
    }

    /// The two header fields for `recipient`, each line ended with `eol`.
    pub fn headers(&self, recipient: &str, eol: &[u8]) -> Result<Vec<u8>, String> {
        self.check()?;
        let url = self.url_for(recipient)?;
        let mut out = Vec::with_capacity(url.len() + self.mailto.len() + 100);
        out.extend_from_slice(format!("List-Unsubscribe: <{url}>,").as_bytes());
        out.extend_from_slice(eol);
        out.extend_from_slice(format!(" <mailto:{}>", self.mailto).as_bytes());
        out.extend_from_slice(eol);
        out.extend_from_slice(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click");
        out.extend_from_slice(eol);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_macs() {
        let oc = OneClick::for_list("https://lists.example:8443", "dev@x.test", &[7; 32])
            .expect("attribute");
        assert_eq!(oc.url, "https://lists.example:8443/u/dev@x.test/");
        assert_eq!(oc.mailto, "dev-unsubscribe@x.test");
        assert_eq!(OneClick::decode(&oc.encode()), Ok(oc.clone()));
        let url = oc.url_for("Bob+x@Far.example").expect("url");
        let token = url.strip_prefix(&oc.url).expect("base");
        let (who, mac) = token.split_once('/').expect("two parts");
        assert_eq!(who, "Bob%2Bx=Far.example");
        assert_eq!(decode_recipient(who).as_deref(), Some("Bob+x@Far.example"));
        let key = list_key(&[7; 32]);
        assert!(check_mac(&key, "bob+x@far.example", mac));
        assert!(!check_mac(&key, "eve@far.example", mac));
        assert!(!check_mac(&list_key(&[8; 32]), "bob+x@far.example", mac));
        assert!(!check_mac(&key, "bob+x@far.example", &mac[1..]));
        let h = String::from_utf8(oc.headers("a@b.test", b"\r\n").expect("h")).expect("utf8");
        assert!(
            h.starts_with("List-Unsubscribe: <https://lists.example:8443/u/dev@x.test/a=b.test/")
        );
        assert!(h.ends_with(",\r\n <mailto:dev-unsubscribe@x.test>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    }

    #[test]
    fn hostile_attributes_are_refused() {
        let good = OneClick::for_list("https://h", "l@d", &[1; 32]).expect("ok");
        let key = good.key.clone();
        for bad in [
            format!("http://h/u/l@d/ {key} l-unsubscribe@d"),
            format!("https://h/u/l@d {key} l-unsubscribe@d"),
            format!("https://h/u/l@d/ {} l-unsubscribe@d", &key[1..]),
            format!("https://h/u/l@d/ {key} l-unsubscribe"),
            format!("https://h/u/l@d/ {key} l>@d"),
            format!("https://h/u/<l@d/ {key} l@d"),
            format!("https://h/u/l@d/ {key}"),
            format!("https://h/u/l@d/ {key} a@b c"),
            format!("https://h/\r\nX:/ {key} a@b"),
        ] {
            assert!(OneClick::decode(&bad).is_err(), "{bad:?}");
        }
        for bad in ["a%2Fb=c", "a%zz=c", "abc", "=c", "a=", "a%0D=c", "a=b@c"] {
            assert_eq!(decode_recipient(bad), None, "{bad:?}");
        }
    }
}
