//! Log lines for humans, qmail style: `moat-queue[812]: 1TW2KQ8F0A3C: delivered to a@b.test`.
//!
//! Every line of a message's life carries its queue id right after the program name, so
//! `grep QUEUEID` tells the whole story. Lines go to standard error, which the supervisor passes
//! on to its own (the terminal under `moat up`, the journal under systemd).

use std::fmt::Arguments;
use std::io::Write;
use std::sync::OnceLock;

static PROGRAM: OnceLock<String> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Names the program in every line; call once at start.
pub fn init(program: &str) {
    let _ = PROGRAM.set(format!("{program}[{}]", std::process::id()));
}

/// Writes one line; control characters from untrusted text are escaped so a peer cannot forge
/// log lines.
pub fn write(level: Level, queue_id: Option<&str>, args: Arguments<'_>) {
    let program = PROGRAM.get().map(String::as_str).unwrap_or("moat");
    let level = match level {
        Level::Info => "",
        Level::Warn => "warning: ",
        Level::Error => "error: ",
    };
    let text = escape(&args.to_string());
    let line = match queue_id {
        Some(id) => format!("{program}: {id}: {level}{text}\n"),
        None => format!("{program}: {level}{text}\n"),
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `info!("text {}", x)` or `info!(id = qid; "text {}", x)`.
#[macro_export]
macro_rules! info {
    (id = $id:expr; $($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, Some($id), format_args!($($arg)*)) };
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, None, format_args!($($arg)*)) };
}

/// `warn!("text")` or `warn!(id = qid; "text")`.
#[macro_export]
macro_rules! warn {
    (id = $id:expr; $($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, Some($id), format_args!($($arg)*)) };
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, None, format_args!($($arg)*)) };
}

/// `error!("text")` or `error!(id = qid; "text")`.
#[macro_export]
macro_rules! error {
    (id = $id:expr; $($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, Some($id), format_args!($($arg)*)) };
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, None, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(super::escape("a\r\nmoat: fake"), "a\\r\\nmoat: fake");
        assert_eq!(super::escape("plain ünïcode"), "plain ünïcode");
    }
}
