//! `sendmail`'s command line, the way Postfix's sendmail reads it: POSIX getopt (flags may be
//! bundled, `-fsender` or `-f sender`, options end at the first recipient or `--`), with the
//! common flags of other sendmails accepted and ignored.
//!
//! Used: `-t` (recipients from To/Cc/Bcc too), `-i`/`-oi` (a lone `.` does not end the message),
//! `-f`/`-r` sender (`<>` or "" = null sender), `-F` full name, `-v` (print the queue id).
//! Ignored: `-A -B -C -h -L -N -O -p -R -V -X -e` (with their argument), `-c -G -I -m -n -U -x`,
//! `-o<anything>` but `-oi`, `-bm`. Refused (EX_USAGE): other `-b` modes, `-q`.
//!
//! SECURITY: sendmail runs as the invoking user with no privilege; the queue trusts none of this
//! (it records the user's uid and checks every address itself).

/// What the command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub extract: bool,
    pub ignore_dots: bool,
    /// `Some("")` is the null sender.
    pub sender: Option<String>,
    pub full_name: Option<String>,
    pub verbose: bool,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Send(Options),
    Help,
}

pub const USAGE: &str = "\
usage: sendmail [-t] [-i] [-oi] [-f sender] [-F fullname] [-v] [--] [recipient...]

Reads a message from standard input and queues it with moat-queue.

  -t            also send to the addresses in the To, Cc and Bcc headers (Bcc is removed)
  -i, -oi       a line with a single '.' does not end the message
  -f sender     the envelope sender ('<>' for none); default: your login @ the host name
  -F fullname   the name in the From header added when the message has none
  -v            print the queue id

Recipients without '@' get '@' and the host name. The queue socket is $MOAT_QUEUE_SOCKET or
/run/moat/queue.sock; the host name is $MOAT_HOSTNAME or the system's.
Exit status: 0 queued; 64 usage; 65 refused by the queue (too large, bad address);
74 cannot read the message; 75 try again later (queue unreachable or temporary failure).

example: printf 'Subject: hi\\n\\nhello\\n' | sendmail -f me@example.test you@example.test";

/// Options that take an argument (Postfix's getopt string, less the ones with special meaning).
const WITH_ARGUMENT: &[u8] = b"ABCFLNORVXbefhopqr";

/// `<a@b>` → `a@b`; `<>` → "".
pub fn strip_angles(addr: &str) -> String {
    let t = addr.trim();
    t.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(t)
        .to_string()
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut opts = Options::default();
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "--help") {
        return Ok(Command::Help);
    }
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            opts.recipients.push(arg);
            break;
        };
        let bytes = flags.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let flag = bytes[at];
            at += 1;
            if !WITH_ARGUMENT.contains(&flag) {
                match flag {
                    b't' => opts.extract = true,
                    b'i' => opts.ignore_dots = true,
                    b'v' => opts.verbose = true,
                    b'c' | b'G' | b'I' | b'm' | b'n' | b'U' | b'x' => {}
                    other => return Err(format!("unknown option -{}", other as char)),
                }
                continue;
            }
            let value = if at < bytes.len() {
                flags[at..].to_string()
            } else {
                args.next()
                    .ok_or_else(|| format!("option -{} needs a value", flag as char))?
            };
            at = bytes.len();
            match flag {
                b'f' | b'r' => opts.sender = Some(strip_angles(&value)),
                b'F' => opts.full_name = Some(value),
                b'o' if value == "i" => opts.ignore_dots = true,
                b'b' if value == "m" => {}
                b'b' => return Err(format!("mode -b{value} is not supported (only -bm)")),
                b'q' => return Err("-q is not supported: use `moat queue flush`".into()),
                _ => {}
            }
        }
    }
    opts.recipients.extend(args);
    Ok(Command::Send(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Command::Send(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn flags_the_way_getopt_reads_them() {
        let o = send(&["-ti", "-fme@x.test", "-F", "Me Myself", "a@x.test", "-b"]);
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.sender.as_deref(), Some("me@x.test"));
        assert_eq!(o.full_name.as_deref(), Some("Me Myself"));
        assert_eq!(o.recipients, vec!["a@x.test", "-b"]);
        let o = send(&[
            "-oi",
            "-oem",
            "-f",
            "<>",
            "-B",
            "8BITMIME",
            "--",
            "-odd@x.test",
        ]);
        assert!(o.ignore_dots && !o.extract);
        assert_eq!(o.sender.as_deref(), Some(""));
        assert_eq!(o.recipients, vec!["-odd@x.test"]);
        assert_eq!(send(&["-bm", "-r", "a@b"]).sender.as_deref(), Some("a@b"));
    }

    #[test]
    fn usage_errors() {
        for bad in [&["-f"][..], &["-bp"], &["-q"], &["-Z"]] {
            assert!(parse(bad.iter().map(|s| s.to_string())).is_err(), "{bad:?}");
        }
        assert_eq!(parse(["--help".to_string()]), Ok(Command::Help));
    }
}
