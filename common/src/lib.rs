//! What every Moat process needs and nothing more.
//!
//! For now: finding and reading the configuration file (`config`). Privilege drop, the internal
//! wire format and logging setup join this crate as the processes that need them are built.

pub mod config;
