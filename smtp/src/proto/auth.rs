//! SASL for SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms, base64 decoding of
//! client responses, and `Secret`, the password holder.
//!
//! SECURITY:
//! - The password never appears in `Debug` output or logs: it lives in [`Secret`], whose
//!   `Debug` prints a placeholder and which is overwritten (best effort) when dropped.
//! - PLAIN with an authorization identity different from the authentication identity is
//!   refused here (535): Moat has no proxy-authorization, and allowing it would let one
//!   account speak as another.
//! - Base64 must be canonical (padding required, no whitespace); names and passwords must be
//!   UTF-8 without NUL (RFC 4616 forbids NUL inside them).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::reply::Reply;

/// A password. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The password itself, for the one place that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// A user name and password to check with moat-auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// The SASL mechanisms this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// Case-insensitive; None for a mechanism we do not implement.
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Why an AUTH exchange failed before the credentials could be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The client sent `*` (RFC 4954 4): 501.
    Cancelled,
    /// Not canonical base64: 501 5.5.2.
    BadBase64,
    /// PLAIN message without exactly two NUL separators, or an empty name: 501 5.5.2.
    Malformed,
    /// PLAIN authzid given and different from the authcid: 535 5.7.8.
    AuthzidMismatch,
    /// Name or password not UTF-8, or with NUL: 535 5.7.8.
    BadCredentials,
}

impl AuthError {
    pub fn reply(self) -> Reply {
        match self {
            AuthError::Cancelled => Reply::new(501, Some((5, 0, 0)), "Authentication cancelled"),
            AuthError::BadBase64 => Reply::new(501, Some((5, 5, 2)), "Invalid base64 data"),
            AuthError::Malformed => {
                Reply::new(501, Some((5, 5, 2)), "Malformed authentication data")
            }
            AuthError::AuthzidMismatch => Reply::new(
                535,
                Some((5, 7, 8)),
                "Authorization identity must be empty or equal the login name",
            ),
            AuthError::BadCredentials => {
                Reply::new(535, Some((5, 7, 8)), "Authentication credentials invalid")
            }
        }
    }
}

/// Decodes one client response line: `*` cancels, `=` is the empty initial response.
pub fn decode_response(line: &str) -> Result<Vec<u8>, AuthError> {
    match line {
        "*" => Err(AuthError::Cancelled),
        "=" => Ok(Vec::new()),
        _ => STANDARD.decode(line).map_err(|_| AuthError::BadBase64),
    }
}

/// Decodes a PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616).
pub fn decode_plain(message: &[u8]) -> Result<Credentials, AuthError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    if authcid.is_empty() {
        return Err(AuthError::Malformed);
    }
    let username = utf8(authcid)?;
    if !authzid.is_empty() && authzid != authcid {
        return Err(AuthError::AuthzidMismatch);
    }
    Ok(Credentials {
        username,
        password: Secret(utf8(passwd)?),
    })
}

/// Decodes a LOGIN user name or password (one base64 line each).
pub fn decode_login_field(bytes: Vec<u8>) -> Result<String, AuthError> {
    if bytes.contains(&0) {
        return Err(AuthError::BadCredentials);
    }
    String::from_utf8(bytes).map_err(|_| AuthError::BadCredentials)
}

fn utf8(bytes: &[u8]) -> Result<String, AuthError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| AuthError::BadCredentials)
}

/// The base64 challenges of LOGIN: "Username:" and "Password:".
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn plain() {
        let c = decode_plain(b"\0bob@example.test\0s3cret").expect("plain");
        assert_eq!(c.username, "bob@example.test");
        assert_eq!(c.password.expose(), "s3cret");
        let c = decode_plain(b"bob\0bob\0pw").expect("same authzid");
        assert_eq!(c.username, "bob");
        assert_eq!(
            decode_plain(b"alice\0bob\0pw"),
            Err(AuthError::AuthzidMismatch)
        );
        assert_eq!(decode_plain(b"\0\0pw"), Err(AuthError::Malformed));
        assert_eq!(decode_plain(b"bob\0pw"), Err(AuthError::Malformed));
        assert_eq!(decode_plain(b"\0bob\0pw\0x"), Err(AuthError::Malformed));
        assert_eq!(
            decode_plain(b"\0b\xffob\0pw"),
            Err(AuthError::BadCredentials)
        );
    }

    #[test]
    fn responses() {
        assert_eq!(decode_response("*"), Err(AuthError::Cancelled));
        assert_eq!(decode_response("="), Ok(Vec::new()));
        assert_eq!(decode_response(&b64(b"hi")), Ok(b"hi".to_vec()));
        assert_eq!(decode_response("aGk"), Err(AuthError::BadBase64));
        assert_eq!(decode_response("aGk= "), Err(AuthError::BadBase64));
        assert_eq!(decode_response("!!!!"), Err(AuthError::BadBase64));
        assert_eq!(
            decode_response(LOGIN_USERNAME_CHALLENGE),
            Ok(b"Username:".to_vec())
        );
        assert_eq!(
            decode_response(LOGIN_PASSWORD_CHALLENGE),
            Ok(b"Password:".to_vec())
        );
    }

    #[test]
    fn login_fields() {
        assert_eq!(decode_login_field(b"bob".to_vec()), Ok("bob".into()));
        assert_eq!(
            decode_login_field(b"b\0b".to_vec()),
            Err(AuthError::BadCredentials)
        );
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(..)");
        let c = Credentials {
            username: "u".into(),
            password: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn mechanisms() {
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("LOGIN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }
}
