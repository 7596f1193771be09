//! The `[security]` section: what the supervisor accepts about the children's confinement.
//!
//! ```toml
//! [security]
//! allow_unconfined = false   # true: run on a kernel without Landlock (no file-system sandbox)
//! self_test = []             # tests only: paths every child tries to read and write once
//!                            # confined, logging "confinement self-test PATH: ..."
//! ```

use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecurity {
    allow_unconfined: Option<bool>,
    self_test: Option<Vec<String>>,
}

/// The parsed `[security]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// Start the children even when the kernel has no Landlock (they log that they are not
    /// confined); by default they refuse to start.
    pub allow_unconfined: bool,
    /// Paths each child tries to open after its confinement (the confinement tests).
    pub self_test: Vec<String>,
}

impl RawSecurity {
    pub(super) fn parse(self) -> Result<Security, String> {
        let self_test = self.self_test.unwrap_or_default();
        if let Some(bad) = self_test
            .iter()
            .find(|p| !p.starts_with('/') || p.contains('\n'))
        {
            return Err(format!(
                "security.self_test {bad:?} must be an absolute path on one line"
            ));
        }
        Ok(Security {
            allow_unconfined: self.allow_unconfined.unwrap_or(false),
            self_test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_refuse_unconfined_and_self_test_paths_are_absolute() {
        let d = RawSecurity::default().parse().expect("defaults");
        assert_eq!(d, Security::default());
        assert!(!d.allow_unconfined);
        let bad = RawSecurity {
            allow_unconfined: Some(true),
            self_test: Some(vec!["queue".into()]),
        };
        assert!(bad.parse().is_err());
        let good = RawSecurity {
            allow_unconfined: Some(true),
            self_test: Some(vec!["/srv/moat/queue".into()]),
        };
        assert_eq!(
            good.parse(),
            Ok(Security {
                allow_unconfined: true,
                self_test: vec!["/srv/moat/queue".into()],
            })
        );
    }
}
