//! A small blocking POP3 client for the benchmark: login, RETR (counting octets), QUIT.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub struct Pop {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
}

impl Pop {
    pub fn connect(port: u16) -> Result<Pop> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut p = Pop {
            reader: BufReader::with_capacity(256 * 1024, stream),
            writer,
            line: Vec::with_capacity(1024),
        };
        p.ok("greeting")?;
        Ok(p)
    }

    fn read_line(&mut self) -> Result<&[u8]> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(&self.line)
    }

    fn ok(&mut self, what: &str) -> Result<String> {
        let line = String::from_utf8_lossy(self.read_line()?)
            .trim_end()
            .to_string();
        if !line.starts_with("+OK") {
            bail!("{what}: {line}");
        }
        Ok(line)
    }

    pub fn cmd(&mut self, line: &str) -> Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.ok(line)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.cmd(&format!("USER {user}"))?;
        self.cmd(&format!("PASS {password}"))?;
        Ok(())
    }

    /// RETR n; returns the octets of the answer body.
    pub fn retr(&mut self, n: usize) -> Result<u64> {
        self.cmd(&format!("RETR {n}"))?;
        let mut octets = 0u64;
        loop {
            let line = self.read_line()?;
            if line == b".\r\n" {
                return Ok(octets);
            }
            octets += line.len() as u64;
        }
    }
}
