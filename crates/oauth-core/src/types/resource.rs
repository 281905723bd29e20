//! Resource indicators (RFC 8707): the URI of a protected resource that a
//! token is asked for, which becomes the token's `aud`.

use std::fmt;

use fluent_uri::Uri;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A resource indicator: an absolute URI without a fragment (RFC 8707 2). It
/// is compared character for character, like a redirect URI, so a look-alike
/// never names a configured resource.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceUri(String);

impl ResourceUri {
    /// Longest accepted resource URI, in bytes (the bound of a redirect URI).
    pub const MAX_LEN: usize = 2048;

    /// Validates a resource indicator. Every failure is `invalid_target`
    /// (RFC 8707 2: "an absolute URI ... MUST NOT include a fragment").
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() > Self::MAX_LEN {
            return Err(Error::InvalidTarget("the resource is over 2,048 bytes"));
        }
        let uri = Uri::parse(s).map_err(|_| Error::InvalidTarget("the resource must be an absolute URI"))?;
        if uri.fragment().is_some() {
            return Err(Error::InvalidTarget("the resource must not have a fragment"));
        }
        Ok(ResourceUri(s.to_owned()))
    }

    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceUri {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ResourceUri::parse(&s)
    }
}

impl From<ResourceUri> for String {
    fn from(r: ResourceUri) -> String {
        r.0
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceUri({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_an_absolute_uri_without_a_fragment() {
        assert!(ResourceUri::parse("https://api.example.com/mcp").is_ok());
        assert!(ResourceUri::parse("urn:example:resource").is_ok());
        for bad in ["/relative", "api.example.com", "https://api.example.com/#x", "", "https://a b/"] {
            assert!(matches!(ResourceUri::parse(bad), Err(Error::InvalidTarget(_))), "{bad:?}");
        }
        assert!(ResourceUri::parse(&format!("https://a.example/{}", "x".repeat(2100))).is_err());
    }
}
