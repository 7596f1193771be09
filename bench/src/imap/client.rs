//! A small async IMAP client for the benchmark: raw commands over tokio TCP (plaintext, loopback),
//! each answer read up to its tagged line. Literals are skipped unread, so the client's cost is
//! about a line scan per response line, the same for both servers.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// No answer (or no further line of one) for this long fails the benchmark.
const PATIENCE: Duration = Duration::from_secs(600);

pub struct Imap {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    tag: u32,
    line: Vec<u8>,
    more: Vec<u8>,
}

/// What an answer held.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reply {
    /// `* n FETCH` responses.
    pub fetches: usize,
    /// Numbers in `* SEARCH` responses.
    pub found: usize,
    /// Bytes received, literals included.
    pub octets: u64,
}

impl Imap {
    /// Connects and reads the greeting. `buffer` is the read buffer: large for bulk FETCHes,
    /// small for the thousands of idle connections (the client's memory is not measured, but it
    /// must fit).
    pub async fn connect(port: u16, buffer: usize) -> Result<Imap> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .context("connect")?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        let mut imap = Imap {
            reader: BufReader::with_capacity(buffer, read),
            writer,
            tag: 0,
            line: Vec::new(),
            more: Vec::new(),
        };
        read_line(&mut imap.reader, &mut imap.line).await?;
        if !imap.line.starts_with(b"* OK") {
            bail!(
                "greeting: {}",
                String::from_utf8_lossy(&imap.line).trim_end()
            );
        }
        Ok(imap)
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.run(&format!("LOGIN \"{user}\" \"{password}\""))
            .await
            .map(|_| ())
    }

    /// Sends `command` with the next tag and reads every response up to the tagged one, which
    /// must be OK.
    pub async fn run(&mut self, command: &str) -> Result<Reply> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let mut reply = Reply::default();
        loop {
            self.read_response(&mut reply).await?;
            let line = &self.line;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let status = &line[tag.len() + 1..];
                if !status.starts_with(b"OK") {
                    bail!("{command}: {}", String::from_utf8_lossy(line).trim_end());
                }
                return Ok(reply);
            }
            if let Some(rest) = line.strip_prefix(b"* SEARCH") {
                reply.found += rest.split(|b| *b == b' ').filter(|w| !w.is_empty()).count();
            } else if is_fetch(line) {
                reply.fetches += 1;
            }
        }
    }

    /// Reads one response: its first line into `self.line` (only the start is looked at), then
    /// every literal it announces and the line after each into `self.more`, skipped.
    async fn read_response(&mut self, reply: &mut Reply) -> Result<()> {
        reply.octets += read_line(&mut self.reader, &mut self.line).await?;
        let mut literal = literal_size(&self.line);
        while let Some(size) = literal {
            let mut limited = (&mut self.reader).take(size);
            let mut sink = tokio::io::sink();
            let skipped = tokio::time::timeout(PATIENCE, tokio::io::copy(&mut limited, &mut sink))
                .await
                .context("timed out reading a literal")??;
            if skipped != size {
                bail!("the server closed the connection inside a literal");
            }
            reply.octets += size + read_line(&mut self.reader, &mut self.more).await?;
            literal = literal_size(&self.more);
        }
        Ok(())
    }
}

/// Reads one line (LF included) into `line`; returns its length.
async fn read_line(reader: &mut BufReader<OwnedReadHalf>, line: &mut Vec<u8>) -> Result<u64> {
    line.clear();
    let n = tokio::time::timeout(PATIENCE, reader.read_until(b'\n', line))
        .await
        .context("timed out waiting for the server")??;
    if n == 0 {
        bail!("the server closed the connection");
    }
    Ok(n as u64)
}

/// `* <number> FETCH`.
fn is_fetch(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(b" FETCH")
}

/// The size of the literal a line ends with (`{123}\r\n`, or `~{123}` for literal8).
fn literal_size(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let body = body.strip_suffix(b"}")?;
    let open = body.iter().rposition(|b| *b == b'{')?;
    let digits = body.get(open + 1..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_fetch_lines() {
        assert_eq!(
            literal_size(b"* 1 FETCH (ENVELOPE (\"x\" {12}\r\n"),
            Some(12)
        );
        assert_eq!(literal_size(b"* 1 FETCH (BINARY[] ~{7}\r\n"), Some(7));
        assert_eq!(literal_size(b"* 1 FETCH (FLAGS (\\Seen))\r\n"), None);
        assert_eq!(literal_size(b"* OK {x}\r\n"), None);
        assert!(is_fetch(b"* 12 FETCH (FLAGS ())\r\n"));
        assert!(!is_fetch(b"* 12 EXISTS\r\n"));
        assert!(!is_fetch(b"* SEARCH 1 2\r\n"));
    }
}
