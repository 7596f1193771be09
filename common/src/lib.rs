//! What every Moat process needs and nothing more.
//!
//! For now: finding and reading the configuration file (`config`) and the internal record format
//! (`wire`). Privilege drop, fd passing and logging setup join this crate as the processes that
//! need them are built.

pub mod config;
pub mod fdpass;
pub mod privilege;
pub mod wire;
