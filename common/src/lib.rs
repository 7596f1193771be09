//! What every Moat process needs and nothing more: the configuration file (`config`), the
//! internal record format (`wire`), descriptor passing and peer credentials (`fdpass`), the
//! irrevocable privilege drop (`privilege`), the supervisor-to-child setup channel (`child`) and
//! qmail-style log lines with queue ids (`log`).

pub mod child;
pub mod client;
pub mod config;
pub mod conn;
pub mod fdpass;
pub mod log;
pub mod privilege;
pub mod wire;
