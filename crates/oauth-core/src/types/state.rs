//! The `state` parameter (RFC 6749 4.1.1, appendix A.5).

use crate::error::{Error, Result};

/// An opaque client `state`: 1 to 512 characters of `%x20-7E`, echoed back byte
/// for byte. The 512 bound is ours; the RFC sets none, and a bound keeps the
/// redirect URL and the stored session small.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct State(String);

impl State {
    /// Longest accepted `state`, in characters.
    pub const MAX_LEN: usize = 512;

    /// Validates a `state` value.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !super::is_vschar(s) {
            return Err(Error::InvalidRequest("state must be 1 to 512 characters of %x20-7E"));
        }
        Ok(State(s.to_owned()))
    }

    /// The value exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for State {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        State::parse(&s)
    }
}

impl From<State> for String {
    fn from(s: State) -> String {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_kept_byte_for_byte() {
        let raw = " a~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ";
        assert_eq!(State::parse(raw).map(|s| s.as_str().to_owned()), Ok(raw.to_owned()));
    }

    #[test]
    fn state_must_be_1_to_512_visible_characters() {
        assert!(State::parse(&"x".repeat(512)).is_ok());
        for bad in [String::new(), "x".repeat(513), "tab\t".into(), "é".into(), "\u{7f}".into()] {
            assert!(matches!(State::parse(&bad), Err(Error::InvalidRequest(_))), "{bad:?}");
        }
    }
}
