//! Web origins (RFC 6454): the scheme, host and port a browser names in its
//! `Origin` header, and the origins a client's pages are served from.
//!
//! A client's origins are those of its redirect URIs, plus the ones it lists
//! in `allowed_cors_origins`. The front end lets a page on one of them call the
//! endpoints a browser app needs (CORS); the core only keeps the list and
//! answers whether an origin is on it.
//!
//! Origins are compared in their ASCII serialization, lowercased and without
//! the scheme's default port, which is the form browsers send. The comparison
//! is not constant time: origins are public.

use fluent_uri::Uri;
use serde::{Deserialize, Serialize};

/// A web origin: `http` or `https`, a host, and a port unless it is the
/// scheme's default, as `https://app.example` or `http://127.0.0.1:5173`.
/// `http` only on a loopback host, as for redirect URIs (RFC 9700 2.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebOrigin(String);

/// Why a string is not a web origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// Not `scheme://host[:port]` with an `http` or `https` scheme and nothing
    /// after the authority (no path, query or fragment; no userinfo).
    #[error("not an origin: write scheme://host or scheme://host:port, with no path")]
    NotAnOrigin,
    /// `http` on a host that is not loopback.
    #[error("uses http on a host that is not loopback")]
    HttpNotLoopback,
}

impl WebOrigin {
    /// Parses an origin as written in configuration or sent in an `Origin`
    /// header: `scheme://host[:port]`, nothing more. Scheme and host are
    /// lowercased and a default port is dropped.
    pub fn parse(s: &str) -> Result<Self, OriginError> {
        let uri = Uri::parse(s).map_err(|_| OriginError::NotAnOrigin)?;
        if !uri.path().as_str().is_empty() || uri.query().is_some() || uri.fragment().is_some() {
            return Err(OriginError::NotAnOrigin);
        }
        Self::of(&uri)
    }

    /// The origin of an absolute URI (a redirect URI), if it has one: `None`
    /// for a private-use scheme such as `com.example.app:/cb`.
    pub(crate) fn of_uri(s: &str) -> Option<Self> {
        Self::of(&Uri::parse(s).ok()?).ok()
    }

    /// The origin as a browser writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of(uri: &Uri<&str>) -> Result<Self, OriginError> {
        let scheme = uri.scheme().as_str().to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(OriginError::NotAnOrigin),
        };
        let authority = uri.authority().ok_or(OriginError::NotAnOrigin)?;
        let host = authority.host().to_ascii_lowercase();
        if authority.userinfo().is_some() || host.is_empty() {
            return Err(OriginError::NotAnOrigin);
        }
        let port = match authority.port() {
            None => None,
            Some(p) if p.as_str().is_empty() => return Err(OriginError::NotAnOrigin),
            Some(_) => Some(authority.port_to_u16().ok().flatten().ok_or(OriginError::NotAnOrigin)?),
        };
        if scheme == "http" && !matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost") {
            return Err(OriginError::HttpNotLoopback);
        }
        Ok(WebOrigin(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }
}

impl TryFrom<String> for WebOrigin {
    type Error = OriginError;
    fn try_from(s: String) -> Result<Self, OriginError> {
        WebOrigin::parse(&s)
    }
}

impl From<WebOrigin> for String {
    fn from(o: WebOrigin) -> String {
        o.0
    }
}

impl std::fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn origins_are_lowercased_without_the_default_port() {
        for (raw, origin) in [
            ("https://app.example", "https://app.example"),
            ("HTTPS://App.Example:443", "https://app.example"),
            ("https://app.example:8443", "https://app.example:8443"),
            ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
            ("http://localhost:80", "http://localhost"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(WebOrigin::parse(raw).unwrap().as_str(), origin, "{raw}");
        }
    }

    #[test]
    fn anything_beyond_scheme_host_and_port_is_not_an_origin() {
        for bad in [
            "https://app.example/",
            "https://app.example/cb",
            "https://app.example?x",
            "https://app.example#x",
            "https://user@app.example",
            "https://app.example:",
            "https://app.example:99999",
            "ftp://app.example",
            "com.example.app:/cb",
            "null",
            "",
            "app.example",
        ] {
            assert_eq!(WebOrigin::parse(bad), Err(OriginError::NotAnOrigin), "{bad}");
        }
        assert_eq!(WebOrigin::parse("http://app.example"), Err(OriginError::HttpNotLoopback));
    }

    #[test]
    fn a_redirect_uri_has_the_origin_of_its_scheme_host_and_port() {
        let of = |u: &str| WebOrigin::of_uri(u).map(|o| o.to_string());
        assert_eq!(of("https://app.example/cb?x=1").as_deref(), Some("https://app.example"));
        assert_eq!(of("https://app.example:443/cb").as_deref(), Some("https://app.example"));
        assert_eq!(of("http://127.0.0.1:9000/callback").as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(of("com.example.app:/oauth2redirect"), None);
    }

    proptest! {
        #[test]
        fn origin_parsing_never_panics(s in "\\PC{0,60}") {
            let _ = WebOrigin::parse(&s);
            let _ = WebOrigin::of_uri(&s);
        }
    }
}
