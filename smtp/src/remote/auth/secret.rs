//! The password file of a route with credentials (`[remote.routes] … auth = { password_file }`):
//! the password alone, one trailing newline ignored. Read from an open descriptor with
//! positioned reads, by the supervisor (to refuse a bad file before moat-remote starts) and by
//! moat-remote (which never opens the file itself).
//!
//! SECURITY: the size is bounded before anything is kept, an error never quotes the file, and
//! `Password` prints as `***` (`Debug`) and has no `Display`, so it cannot slip into a log line
//! through a format string.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

/// A password file is a line; anything bigger is some other file.
pub const MAX_SECRET_FILE: usize = 4096;

/// A route's password. Only `sasl` reads it, to build the AUTH responses.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Password {
    pub(in crate::remote) fn expose(&self) -> &str {
        &self.0
    }
}

/// Reads and checks the password from `file`, from offset 0 whatever its offset is.
pub fn read(file: &File) -> Result<Password, String> {
    let mut buf = vec![0u8; MAX_SECRET_FILE + 1];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    parse(&buf[..got])
}

/// The password in a file's bytes: one trailing LF or CRLF dropped; it must then be non-empty
/// UTF-8 (RFC 4616) on one line, without NUL (PLAIN's separator).
pub fn parse(bytes: &[u8]) -> Result<Password, String> {
    if bytes.len() > MAX_SECRET_FILE {
        return Err(format!(
            "is larger than {MAX_SECRET_FILE} bytes: it should hold only the password"
        ));
    }
    let line = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if line.is_empty() {
        return Err("is empty: write the password into it (one line)".into());
    }
    if line.iter().any(|b| *b == b'\n' || *b == b'\r') {
        return Err("holds more than one line: it should hold only the password".into());
    }
    if line.contains(&0) {
        return Err("holds a NUL byte, which SMTP AUTH cannot carry".into());
    }
    match std::str::from_utf8(line) {
        Ok(text) => Ok(Password(text.to_string())),
        Err(_) => Err("is not UTF-8 text (SMTP AUTH sends passwords as UTF-8)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek as _, Write as _};

    #[test]
    fn one_line_with_or_without_its_newline() {
        for (bytes, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret", "s3cret"),
            (b" spaced pass \n", " spaced pass "),
            ("pässwörd\n".as_bytes(), "pässwörd"),
        ] {
            assert_eq!(parse(bytes).expect("valid").expose(), want);
        }
        for (bytes, needle) in [
            (&b""[..], "empty"),
            (b"\n", "empty"),
            (b"a\nb\n", "more than one line"),
            (b"a\n\n", "more than one line"),
            (b"a\rb", "more than one line"),
            (b"a\0b", "NUL"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let err = parse(bytes).expect_err("refused");
            assert!(err.contains(needle), "{err}");
        }
        let big = vec![b'x'; MAX_SECRET_FILE + 1];
        assert!(parse(&big).expect_err("too big").contains("larger"));
    }

    #[test]
    fn read_ignores_the_offset_and_never_prints_the_password() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"hunter2\n").expect("write");
        file.seek(std::io::SeekFrom::End(0)).expect("seek");
        let password = read(&file).expect("read");
        assert_eq!(password.expose(), "hunter2");
        assert_eq!(format!("{password:?}"), "***");
        let mut big = tempfile::tempfile().expect("tempfile");
        big.write_all(&vec![b'x'; 3 * MAX_SECRET_FILE])
            .expect("write");
        assert!(read(&big).expect_err("too big").contains("larger"));
    }
}
