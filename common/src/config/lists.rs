//! The `[lists]` section: moat-lists' policies (bounces, held posts, digests) and its one-click
//! unsubscribe endpoint (RFC 8058).
//!
//! ```toml
//! [lists]
//! bounce_threshold = 5          # bounces within bounce_window before a probe is sent
//! bounce_window = "30d"         # older bounces are forgotten; an unanswered probe clears
//! held_expiry = "5d"            # held (moderated) posts are dropped after this
//! digest_posts = 30             # a digest goes when this many posts wait...
//! digest_interval = "1d"        # ...or this long after the last one, if any wait
//! web_listen = "0.0.0.0:8443"   # the HTTPS one-click endpoint; "" (default) = off
//! web_url = "https://lists.example.org:8443"  # how subscribers reach it
//! ```

use serde::Deserialize;

use super::parse_duration;

pub const DEFAULT_BOUNCE_THRESHOLD: u32 = 5;
pub const DEFAULT_BOUNCE_WINDOW_SECS: u64 = 30 * 86_400;
pub const DEFAULT_HELD_EXPIRY_SECS: u64 = 5 * 86_400;
pub const DEFAULT_DIGEST_POSTS: u32 = 30;
pub const DEFAULT_DIGEST_INTERVAL_SECS: u64 = 86_400;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLists {
    bounce_threshold: Option<u32>,
    bounce_window: Option<String>,
    held_expiry: Option<String>,
    digest_posts: Option<u32>,
    digest_interval: Option<String>,
    web_listen: Option<String>,
    web_url: Option<String>,
}

/// The parsed `[lists]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lists {
    /// Bounces from one member within `bounce_window_secs` before moat-lists probes it (≥ 1).
    pub bounce_threshold: u32,
    pub bounce_window_secs: u64,
    /// Held posts older than this are dropped (their poster is not told: ezmlm's way).
    pub held_expiry_secs: u64,
    /// A digest goes out when this many posts wait (≥ 1)...
    pub digest_posts: u32,
    /// ...or when this long has passed since the last digest and at least one post waits.
    pub digest_interval_secs: u64,
    /// `IP:PORT` of the HTTPS one-click unsubscribe endpoint; `None` = not served.
    pub web_listen: Option<String>,
    /// The endpoint's public base URL (`https://host[:port]`), without a trailing `/`; set
    /// whenever `web_listen` is.
    pub web_url: Option<String>,
}

impl Default for Lists {
    fn default() -> Self {
        Lists {
            bounce_threshold: DEFAULT_BOUNCE_THRESHOLD,
            bounce_window_secs: DEFAULT_BOUNCE_WINDOW_SECS,
            held_expiry_secs: DEFAULT_HELD_EXPIRY_SECS,
            digest_posts: DEFAULT_DIGEST_POSTS,
            digest_interval_secs: DEFAULT_DIGEST_INTERVAL_SECS,
            web_listen: None,
            web_url: None,
        }
    }
}

impl RawLists {
    pub(super) fn parse(self) -> Result<Lists, String> {
        let d = Lists::default();
        let duration = |name: &str, v: Option<String>, default: u64| -> Result<u64, String> {
            match v {
                None => Ok(default),
                Some(text) => parse_duration(&text).filter(|s| *s > 0).ok_or_else(|| {
                    format!("lists.{name} {text:?} is not a duration such as \"5d\" or \"12h\"")
                }),
            }
        };
        let at_least_one = |name: &str, v: Option<u32>, default: u32| match v {
            Some(0) => Err(format!("lists.{name} must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let web_listen = self.web_listen.filter(|s| !s.trim().is_empty());
        if let Some(addr) = &web_listen
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "lists.web_listen {addr:?} is not IP:PORT (e.g. \"0.0.0.0:8443\")"
            ));
        }
        let web_url = self
            .web_url
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        if let Some(url) = &web_url {
            let host = url.strip_prefix("https://").unwrap_or("");
            if host.is_empty() || host.contains(['/', '?', '#', ' ', '"', '<', '>']) {
                return Err(format!(
                    "lists.web_url {url:?} is not an https://HOST[:PORT] address"
                ));
            }
        }
        if web_listen.is_some() != web_url.is_some() {
            return Err(
                "lists.web_listen and lists.web_url go together: set both or neither".into(),
            );
        }
        Ok(Lists {
            bounce_threshold: at_least_one(
                "bounce_threshold",
                self.bounce_threshold,
                d.bounce_threshold,
            )?,
            bounce_window_secs: duration(
                "bounce_window",
                self.bounce_window,
                d.bounce_window_secs,
            )?,
            held_expiry_secs: duration("held_expiry", self.held_expiry, d.held_expiry_secs)?,
            digest_posts: at_least_one("digest_posts", self.digest_posts, d.digest_posts)?,
            digest_interval_secs: duration(
                "digest_interval",
                self.digest_interval,
                d.digest_interval_secs,
            )?,
            web_listen,
            web_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Lists, String> {
        let raw: RawLists = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        raw.parse()
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse("").expect("defaults"), Lists::default());
        let l = parse(
            "bounce_threshold = 2\nbounce_window = \"1h\"\nheld_expiry = \"2d\"\n\
             digest_posts = 5\ndigest_interval = \"12h\"\n\
             web_listen = \"127.0.0.1:8443\"\nweb_url = \"https://lists.example.org:8443/\"",
        )
        .expect("parsed");
        assert_eq!(l.bounce_threshold, 2);
        assert_eq!(l.bounce_window_secs, 3600);
        assert_eq!(l.held_expiry_secs, 2 * 86_400);
        assert_eq!(l.digest_posts, 5);
        assert_eq!(l.digest_interval_secs, 12 * 3600);
        assert_eq!(l.web_url.as_deref(), Some("https://lists.example.org:8443"));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            parse("bounce_threshold = 0")
                .expect_err("refused")
                .contains("bounce_threshold")
        );
        assert!(
            parse("held_expiry = \"soon\"")
                .expect_err("refused")
                .contains("held_expiry")
        );
        assert!(
            parse("web_listen = \"nowhere\"")
                .expect_err("refused")
                .contains("web_listen")
        );
        assert!(
            parse("web_listen = \"127.0.0.1:1\"")
                .expect_err("refused")
                .contains("together")
        );
        assert!(
            parse("web_listen = \"127.0.0.1:1\"\nweb_url = \"http://x\"")
                .expect_err("refused")
                .contains("https://")
        );
    }
}
