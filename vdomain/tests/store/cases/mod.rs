//! Test cases, each an `async fn(Ctx)` run against both backends.

mod aliases;
mod domains;
mod lists;
mod misc;
mod resolve;
mod users;

pub use aliases::*;
pub use domains::*;
pub use lists::*;
pub use misc::*;
pub use resolve::*;
pub use users::*;

use moat_vdomain::Address;

/// Parses a test address (test inputs are valid by construction).
pub fn addr(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("test address {s:?}: {e}"))
}

/// Owned strings for `add_alias` targets.
pub fn targets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
