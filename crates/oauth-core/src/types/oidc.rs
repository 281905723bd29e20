//! The OpenID Connect parameters of an authorization request (OpenID Connect
//! Core 1.0 3.1.2.1): `nonce`, `prompt`, `max_age`, `login_hint` and
//! `ui_locales`.
//!
//! Each has a parse constructor that refuses what the SPEC refuses, with an
//! `invalid_request` the authorization flow redirects with `state` and `iss`.

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::error::{Error, Result};

/// A client's `nonce`: the `state` syntax, 1 to 512 characters of `%x20-7E`,
/// echoed into the ID token byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(String);

impl Nonce {
    /// Longest accepted `nonce`, in characters.
    pub const MAX_LEN: usize = 512;

    /// Validates a `nonce`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !super::is_vschar(s) {
            return Err(Error::InvalidRequest("nonce must be 1 to 512 characters of %x20-7E"));
        }
        Ok(Nonce(s.to_owned()))
    }

    /// The value exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nonce {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Nonce::parse(&s)
    }
}

impl From<Nonce> for String {
    fn from(n: Nonce) -> String {
        n.0
    }
}

/// The `prompt` values the server honours. `none` stands alone; `login` and
/// `consent` may come together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: answer without showing any page.
    pub none: bool,
    /// `login`: show the login page even to a signed-in browser.
    pub login: bool,
    /// `consent`: show the consent page even when consent is remembered or
    /// skipped.
    pub consent: bool,
}

impl Prompt {
    /// Parses a space-separated `prompt`. An unknown value, or `none` with any
    /// other value, is `invalid_request`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut p = Prompt::default();
        for value in s.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                _ => return Err(Error::InvalidRequest("prompt must be none, login or consent")),
            }
        }
        if p.none && (p.login || p.consent) {
            return Err(Error::InvalidRequest("prompt=none cannot be combined with another value"));
        }
        if p == Prompt::default() {
            return Err(Error::InvalidRequest("prompt must be none, login or consent"));
        }
        Ok(p)
    }

    /// The space-separated form, for a request rebuilt from a session.
    pub fn as_param(&self) -> String {
        let mut out = Vec::new();
        for (on, name) in [(self.none, "none"), (self.login, "login"), (self.consent, "consent")] {
            if on {
                out.push(name);
            }
        }
        out.join(" ")
    }
}

/// `max_age`: how many seconds ago the user may have logged in, at most. A
/// non-negative decimal integer; `0` asks for a fresh login, as `prompt=login`
/// does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxAge(u32);

impl MaxAge {
    /// Parses decimal digits, at most ten of them (larger values mean "any
    /// age" in practice and are capped at `u32::MAX` seconds).
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidRequest("max_age must be a non-negative integer"));
        }
        let n: u64 = s.parse().map_err(|_| Error::InvalidRequest("max_age must be a non-negative integer"))?;
        Ok(MaxAge(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The age as a duration.
    pub fn duration(self) -> Duration {
        Duration::seconds(i64::from(self.0))
    }

    /// The seconds, as sent.
    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// A `login_hint` (what to fill in the username field) or a `ui_locales`:
/// free text, at most 256 bytes, without control characters. It is only ever
/// shown back to the user, escaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hint(String);

impl Hint {
    /// Longest accepted hint, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates `login_hint` or `ui_locales`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(Error::InvalidRequest("login_hint and ui_locales are at most 256 bytes of text"));
        }
        Ok(Hint(s.to_owned()))
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Hint {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Hint::parse(&s)
    }
}

impl From<Hint> for String {
    fn from(h: Hint) -> String {
        h.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_follows_the_state_syntax() {
        assert!(Nonce::parse(&"n".repeat(512)).is_ok());
        assert_eq!(Nonce::parse(" n~ ").map(|n| n.as_str().to_owned()), Ok(" n~ ".to_owned()));
        for bad in [String::new(), "n".repeat(513), "tab\t".into(), "é".into()] {
            assert!(matches!(Nonce::parse(&bad), Err(Error::InvalidRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn prompt_none_stands_alone_and_unknown_values_are_refused() {
        assert_eq!(Prompt::parse("none"), Ok(Prompt { none: true, ..Prompt::default() }));
        assert_eq!(Prompt::parse("login consent"), Ok(Prompt { login: true, consent: true, none: false }));
        for bad in ["none login", "consent none", "select_account", "LOGIN", " ", "login x"] {
            assert!(matches!(Prompt::parse(bad), Err(Error::InvalidRequest(_))), "{bad:?}");
        }
        assert_eq!(Prompt::parse("consent login").unwrap().as_param(), "login consent");
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(MaxAge::parse("0").map(MaxAge::seconds), Ok(0));
        assert_eq!(MaxAge::parse("3600").map(MaxAge::seconds), Ok(3600));
        assert_eq!(MaxAge::parse("9999999999").map(MaxAge::seconds), Ok(u32::MAX));
        for bad in ["-1", "1.5", "", "+3", "10000000000", "1e3", " 1"] {
            assert!(matches!(MaxAge::parse(bad), Err(Error::InvalidRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn hints_are_bounded_text() {
        assert!(Hint::parse("alice@example.org").is_ok());
        assert!(Hint::parse("nl-NL en").is_ok());
        assert!(Hint::parse(&"a".repeat(257)).is_err());
        assert!(Hint::parse("a\nb").is_err());
    }
}
