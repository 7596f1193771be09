//! The sans-I/O SMTP server core: everything `moat-smtpd` needs to speak SMTP, without sockets,
//! TLS or an async runtime, so it can be unit-tested and fuzzed byte by byte.
//!
//! | file | job |
//! |---|---|
//! | `reply.rs` | [`Reply`]: code, enhanced status code, multi-line wire format |
//! | `line.rs` | [`LineReader`]: CRLF command lines, bounded, bare CR/LF refused |
//! | `path.rs` | mailboxes and paths (RFC 5321 4.1.2, lengths of 4.5.3.1) |
//! | `params.rs` | MAIL/RCPT parameters: SIZE, BODY, SMTPUTF8, DSN, AUTH= |
//! | `command.rs` | one command line → [`Command`], or a [`ParseError`] with its reply |
//! | `auth.rs` | SASL PLAIN and LOGIN, [`Secret`] |
//! | `content.rs` | message content checks (bare CR/LF, NUL, line length, size) and the sink |
//! | `data.rs` | DATA body: end at CRLF.CRLF only, dot-unstuffing |
//! | `bdat.rs` | BDAT chunk accounting |
//! | `config.rs` | [`SessionConfig`] and [`Limits`] |
//! | `event.rs` | [`Event`]s for the driver, the verdicts it answers with, [`Envelope`] |
//! | `session.rs` | [`Session`]: the state machine that ties it together |
//!
//! SECURITY: this is the code that reads what the internet sends to port 25. It holds no
//! privilege and no secret, buffers at most one command line and no message body, and only CRLF
//! ends a line or (as CRLF.CRLF) a message; each file says what it defends against.
//!
//! A driver's loop, in outline:
//!
//! ```text
//! write(session.greeting())
//! loop {
//!     match session.next_event(&mut body) {           // body: Vec<u8> drained after each call
//!         Reply(r)            => out.push(r),           // batch; flush on NeedInput/StartTls/Close
//!         NeedInput           => { flush(out); session.receive(read()) }
//!         CheckSender(from)   => session.sender_verdict(ask_moat_auth(from)),
//!         CheckRecipient(r)   => session.recipient_verdict(ask_moat_auth(r)),
//!         Authenticate(c)     => session.auth_verdict(ask_moat_auth(c)),
//!         MessageStart        => open_injection(),
//!         MessageEnd(env)     => session.message_verdict(commit(env)),
//!         MessageAbort        => abort_injection(),
//!         StartTls            => { flush(out); handshake(); session.tls_established() }
//!         Close               => { flush(out); return }
//!     }
//!     inject(body.drain(..))
//! }
//! ```

pub mod auth;
pub mod bdat;
pub mod command;
pub mod config;
pub mod content;
pub mod data;
pub mod event;
pub mod line;
pub mod params;
pub mod path;
pub mod reply;
pub mod session;

pub use auth::{Credentials, Mechanism, Secret};
pub use command::{Command, ParseError};
pub use config::{Limits, SessionConfig};
pub use event::{
    AuthVerdict, Envelope, Event, MessageVerdict, RcptVerdict, Recipient, SenderVerdict,
};
pub use line::{LineEvent, LineReader};
pub use params::{BodyType, MailAuth, MailParams, Notify, Orcpt, RcptParams, Ret};
pub use path::{Domain, ForwardPath, LocalPart, Path, PathError, ReversePath};
pub use reply::Reply;
pub use session::{Phase, Session};
