//! What every Moat process needs and nothing more: the configuration file (`config`), the
//! internal record format (`wire`), descriptor passing and peer credentials (`fdpass`), the
//! irrevocable privilege drop (`privilege`), the supervisor-to-child setup channel (`child`),
//! qmail-style log lines with queue ids (`log`), UTC dates (`date`) and the plumbing the daemons
//! share (`daemon`: TLS files, stop signals, connection limits, accept loops, settings parsing).

pub mod child;
pub mod client;
pub mod config;
pub mod confine;
pub mod conn;
pub mod daemon;
pub mod date;
pub mod fdpass;
pub mod handoff;
pub mod log;
pub mod privilege;
pub mod seccomp;
pub mod wire;
