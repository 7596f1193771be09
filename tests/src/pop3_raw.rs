//! A raw POP3 client for tests where exact answers matter: exact bytes out (a whole pipelined
//! conversation in one write if need be), the server's exact lines back.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The greeting of every POP3 port of the harness's stack (hostname mx.example.test).
pub const GREETING: &str = "+OK mx.example.test Moat POP3 server ready";

/// One connection.
pub struct Pop {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Pop {
    /// Connects and reads the greeting (which must be `GREETING`).
    pub fn connect(port: u16) -> Pop {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut p = Pop {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = p.line();
        assert_eq!(greeting, GREETING);
        p
    }

    /// The client's port, to find which process holds the server's end.
    pub fn port(&self) -> u16 {
        self.writer.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// One line, without its line end.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        line.trim_end().to_string()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends `line` and CRLF; returns the answer's first line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.line()
    }

    /// The lines of a multi-line answer after its `+OK`, up to the `.`, dot-unstuffed.
    pub fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return rest;
            }
            rest.push(l.strip_prefix('.').map(str::to_string).unwrap_or(l));
        }
    }

    /// Sends a command with a multi-line answer: its first line, and the rest when it is `+OK`.
    pub fn multi(&mut self, line: &str) -> (String, Vec<String>) {
        let first = self.cmd(line);
        let rest = if first.starts_with("+OK") {
            self.rest()
        } else {
            Vec::new()
        };
        (first, rest)
    }

    /// CAPA's capabilities.
    pub fn capa(&mut self) -> Vec<String> {
        assert_eq!(self.cmd("CAPA"), "+OK capability list follows");
        self.rest()
    }

    /// USER (which must be answered `+OK send PASS`), then PASS; returns PASS's answer.
    pub fn login(&mut self, user: &str, password: &str) -> String {
        assert_eq!(self.cmd(&format!("USER {user}")), "+OK send PASS");
        self.cmd(&format!("PASS {password}"))
    }

    /// True when the server closed the connection (end of file, or a reset); a line that
    /// still comes fails the test.
    pub fn closed(&mut self) -> bool {
        let mut rest = String::new();
        match self.reader.read_line(&mut rest) {
            Ok(0) => true,
            Ok(_) => panic!("expected the end, got {rest:?}"),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}
