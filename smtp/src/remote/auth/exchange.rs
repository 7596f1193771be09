//! Running AUTH on an open session (after EHLO, and after STARTTLS and the second EHLO when TLS
//! is in use): PLAIN with an initial response, else LOGIN's two challenges. 235 is success;
//! anything else is a temporary failure of this host, as Postfix treats "SASL authentication
//! failed": a refused login is the relay's or the admin's to fix (a changed password, a locked
//! account, a relay having trouble), so the mail waits in the queue, and the next host of the
//! route is tried, rather than bouncing.
//!
//! SECURITY: the password is refused outright on a session without TLS unless the route allows
//! it (`sasl::may_send`); the AUTH lines are sent under the name `AUTH PLAIN`/`AUTH LOGIN`, so a
//! timeout or a broken reply never quotes them; every text returned is passed through
//! `sasl::redact`, since a hostile server may echo what it received.

use std::net::IpAddr;

use super::super::client::Session;
use super::Credentials;
use super::sasl::{self, Mechanism, Offered};

/// Authenticates `creds` on `s`; `Err` is the deferral text (a 4.7.0 status, redacted).
pub(in crate::remote) async fn authenticate(
    s: &mut Session,
    offered: &Offered,
    creds: &Credentials,
    addr: IpAddr,
) -> Result<(), String> {
    sasl::may_send(creds, s.encrypted(), addr, &s.peer)?;
    let Some(mechanism) = offered.choose() else {
        let what = if offered.any {
            "offers neither AUTH PLAIN nor AUTH LOGIN"
        } else {
            "does not offer AUTH"
        };
        return Err(format!(
            "4.7.0 {} {what}, and the route has credentials: not sending without them",
            s.peer
        ));
    };
    exchange(s, mechanism, creds)
        .await
        .map_err(|text| sasl::redact(creds, &text))
}

async fn exchange(
    s: &mut Session,
    mechanism: Mechanism,
    creds: &Credentials,
) -> Result<(), String> {
    let what = format!("AUTH {}", mechanism.name());
    let reply = match mechanism {
        Mechanism::Plain => s.command_named(&sasl::plain_command(creds), &what).await?,
        Mechanism::Login => {
            let r = s.command_named("AUTH LOGIN", &what).await?;
            if r.code != 334 {
                r
            } else {
                let r = s.command_named(&sasl::login_user(creds), &what).await?;
                if r.code != 334 {
                    r
                } else {
                    s.command_named(&sasl::login_password(creds), &what).await?
                }
            }
        }
    };
    match reply.code {
        235 => Ok(()),
        334 => {
            // A challenge more than the mechanism has: cancel (RFC 4954 §4), then give up.
            s.command_named("*", &what).await?;
            Err(format!(
                "4.7.0 {} asked for more than {what} sends (SASL authentication failed)",
                s.peer
            ))
        }
        _ => Err(format!(
            "4.7.0 {} said: {} (SASL authentication failed)",
            s.peer,
            reply.text()
        )),
    }
}
