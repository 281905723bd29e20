//! Redirect URI registration and matching (RFC 6749 3.1.2, RFC 9700 2.1,
//! RFC 8252 7.3).
//!
//! Matching is on the raw string, character for character. The two exceptions
//! (the loopback port, and the host-bound rule for MedMij-style clients) split
//! the raw string as RFC 3986 does, using `fluent-uri`, and never through a
//! WHATWG parser: a WHATWG parser lowercases, percent-decodes and applies IDNA,
//! which turns look-alike URIs into matches.
//!
//! None of these comparisons is constant time: a redirect URI is public
//! (it sits in every authorization request), so its timing reveals nothing.

use fluent_uri::Uri;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A registered redirect URI: absolute, without a fragment, and `http` only on a
/// loopback host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    /// For `http://127.0.0.1…` and `http://[::1]…`: the host and the text after the
    /// authority, which a request must repeat exactly while its port is free.
    loopback: Option<(String, String)>,
}

/// Why a URI cannot be registered. Returned by [`RedirectUri::parse`] so
/// configuration errors can say which rule failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriError {
    /// Not an absolute URI by RFC 3986.
    #[error("not an absolute URI")]
    NotAbsolute,
    /// It has a `#fragment` (RFC 6749 3.1.2).
    #[error("has a fragment")]
    Fragment,
    /// It is `http` and its host is not loopback (RFC 9700 2.1).
    #[error("uses http on a host that is not loopback")]
    HttpNotLoopback,
}

impl RedirectUri {
    /// Validates a URI for registration.
    pub fn parse(s: &str) -> std::result::Result<Self, RedirectUriError> {
        let uri = Uri::parse(s).map_err(|_| RedirectUriError::NotAbsolute)?;
        if uri.fragment().is_some() {
            return Err(RedirectUriError::Fragment);
        }
        let scheme = uri.scheme().as_str();
        let authority = uri.authority();
        if scheme.eq_ignore_ascii_case("http") {
            let host = authority.as_ref().map(|a| a.host()).unwrap_or("");
            if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
                return Err(RedirectUriError::HttpNotLoopback);
            }
        }
        // The port exception applies to literal loopback addresses only:
        // `localhost` can be resolved elsewhere, so it is an ordinary host.
        let loopback = match (scheme, authority) {
            ("http", Some(a)) if a.userinfo().is_none() && matches!(a.host(), "127.0.0.1" | "[::1]") => {
                let rest = &s["http://".len() + a.as_str().len()..];
                Some((a.host().to_owned(), rest.to_owned()))
            }
            _ => None,
        };
        Ok(RedirectUri { raw: s.to_owned(), loopback })
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The web origin of the URI, if it has one (`http` and `https` URIs): the
    /// origin a browser app served at this address calls from.
    pub fn origin(&self) -> Option<super::WebOrigin> {
        super::WebOrigin::of_uri(&self.raw)
    }

    /// True when `requested` may be redirected to under this registration:
    /// exactly equal, or for a loopback IP registration, equal but for the port.
    pub fn matches(&self, requested: &str) -> bool {
        if requested == self.raw {
            return true;
        }
        let Some((host, rest)) = &self.loopback else {
            return false;
        };
        let Ok(uri) = Uri::parse(requested) else {
            return false;
        };
        let (Some(auth), "http") = (uri.authority(), uri.scheme().as_str()) else {
            return false;
        };
        let port_ok = match auth.port() {
            None => true,
            Some(p) => !p.as_str().is_empty() && matches!(auth.port_to_u16(), Ok(Some(_))),
        };
        auth.userinfo().is_none()
            && auth.host() == host
            && port_ok
            && requested["http://".len() + auth.as_str().len()..] == **rest
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = RedirectUriError;
    fn try_from(s: String) -> std::result::Result<Self, RedirectUriError> {
        RedirectUri::parse(&s)
    }
}

impl From<RedirectUri> for String {
    fn from(u: RedirectUri) -> String {
        u.raw
    }
}

/// How a client's redirect URIs are decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectPolicy {
    /// The URI must match one of these registrations.
    Registered(Vec<RedirectUri>),
    /// The MedMij rule, a deliberate departure from RFC 9700 2.1 for clients on an
    /// OAuth Client List: any `https` URI whose raw authority is exactly this host
    /// (ASCII case ignored), optionally with `:443`, and with no fragment. Path and
    /// query are free.
    HttpsHost(String),
}

/// Proof that a `redirect_uri` passed the client's policy. It holds the URI as
/// requested, which is where responses go. Only [`RedirectPolicy::check`] makes
/// one; the authorization session keeps it, so every response the session sends
/// (the code, a denial, a resource-check refusal) goes to a checked URI.
///
/// It is serialized as the plain string, so a store can keep the session; a
/// session read back from a store holds what the check produced when it was
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUriMatched(String);

impl RedirectUriMatched {
    /// The URI to redirect to, exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of the server's own pages (`{issuer}/device`), for a session no
    /// client redirect ends: no client input reaches it.
    pub(crate) fn own_page(url: String) -> Self {
        RedirectUriMatched(url)
    }
}

impl RedirectPolicy {
    /// Checks a requested `redirect_uri`. A mismatch is
    /// [`Error::InvalidRedirectUri`], which is never redirected. So is a URI
    /// whose own query carries a response parameter (`code`, `state`, `iss`,
    /// `error`, `error_description`, `error_uri`): the client would read the
    /// URI's value before ours, which defeats the RFC 9207 mix-up defence.
    pub fn check(&self, requested: &str) -> Result<RedirectUriMatched> {
        let ok = match self {
            RedirectPolicy::Registered(uris) => uris.iter().any(|u| u.matches(requested)),
            RedirectPolicy::HttpsHost(host) => https_host_matches(host, requested),
        };
        if ok && !carries_response_parameter(requested) {
            Ok(RedirectUriMatched(requested.to_owned()))
        } else {
            Err(Error::InvalidRedirectUri)
        }
    }
}

/// The parameters an authorization response adds to the redirect URI.
const RESPONSE_PARAMETERS: [&str; 6] = ["code", "state", "iss", "error", "error_description", "error_uri"];

/// True when the query of `uri` names a response parameter, percent-encoded
/// or not (a client decodes the names before it reads them).
fn carries_response_parameter(uri: &str) -> bool {
    let Ok(parsed) = Uri::parse(uri) else { return false };
    let Some(query) = parsed.query() else { return false };
    form_urlencoded::parse(query.as_str().as_bytes()).any(|(name, _)| RESPONSE_PARAMETERS.contains(&name.as_ref()))
}

fn https_host_matches(host: &str, requested: &str) -> bool {
    let Ok(uri) = Uri::parse(requested) else {
        return false;
    };
    let (Some(auth), "https", None) = (uri.authority(), uri.scheme().as_str(), uri.fragment()) else {
        return false;
    };
    let raw = auth.as_str();
    raw.eq_ignore_ascii_case(host) || raw.strip_suffix(":443").is_some_and(|h| h.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registered(uris: &[&str]) -> RedirectPolicy {
        RedirectPolicy::Registered(uris.iter().map(|u| RedirectUri::parse(u).unwrap()).collect())
    }

    #[test]
    fn redirect_uri_must_match_character_for_character() {
        let p = registered(&["https://app.example.com/cb?x=1"]);
        assert!(p.check("https://app.example.com/cb?x=1").is_ok());
        for bad in [
            "https://app.example.com/cb?x=1&y=2",
            "https://app.example.com/cb",
            "https://APP.example.com/cb?x=1",
            "https://app.example.com/cb/?x=1",
            "https://app.example.com:443/cb?x=1",
            "https://app.example.com/%63b?x=1",
            "https://app.example.com/cb?x=1#frag",
            "https://app.example.com.evil.com/cb?x=1",
            "https://evil.com@app.example.com/cb?x=1",
            "HTTPS://app.example.com/cb?x=1",
        ] {
            assert_eq!(p.check(bad), Err(Error::InvalidRedirectUri), "{bad}");
        }
    }

    #[test]
    fn loopback_ip_redirect_ignores_the_port() {
        let p = registered(&["http://127.0.0.1:9000/callback", "http://[::1]/cb"]);
        for ok in ["http://127.0.0.1/callback", "http://127.0.0.1:51004/callback", "http://[::1]:8080/cb"] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:9000/callback2",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:90a/callback",
            "http://user@127.0.0.1:9000/callback",
            "http://127.0.0.2:9000/callback",
            "https://127.0.0.1:9000/callback",
            "http://127.0.0.1:9000/callback#x",
            "http://[::1]:80/cb?x",
        ] {
            assert!(p.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn localhost_gets_no_port_exception() {
        let p = registered(&["http://localhost:9000/cb"]);
        assert!(p.check("http://localhost:9000/cb").is_ok());
        assert!(p.check("http://localhost:9001/cb").is_err());
    }

    #[test]
    fn registration_rejects_relative_fragment_and_plain_http() {
        assert_eq!(RedirectUri::parse("/cb"), Err(RedirectUriError::NotAbsolute));
        assert_eq!(RedirectUri::parse("https://a.example/cb#x"), Err(RedirectUriError::Fragment));
        assert_eq!(RedirectUri::parse("http://a.example/cb"), Err(RedirectUriError::HttpNotLoopback));
        assert_eq!(RedirectUri::parse("https://a b/"), Err(RedirectUriError::NotAbsolute));
        assert!(RedirectUri::parse("com.example.app:/oauth2redirect").is_ok());
    }

    #[test]
    fn https_host_rule_accepts_any_path_on_the_client_host() {
        let p = RedirectPolicy::HttpsHost("pgo.example.org".into());
        for ok in [
            "https://pgo.example.org/cb",
            "https://PGO.Example.org/any/path?q=1",
            "https://pgo.example.org:443/cb",
            "https://pgo.example.org",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn https_host_rule_refuses_look_alikes() {
        let p = RedirectPolicy::HttpsHost("pgo.example.org".into());
        for bad in [
            "http://pgo.example.org/cb",
            "https://pgo.example.org.evil.com/cb",
            "https://evil.com/pgo.example.org",
            "https://pgo.example.org@evil.com/cb",
            "https://evil.com@pgo.example.org/cb",
            "https://pgo.example.org:8443/cb",
            "https://pgo.example.org:/cb",
            "https://pgo.example.org/cb#frag",
            "https://pgo.example.org./cb",
            "https://pgo%2eexample.org/cb",
            "https://pgo.example.org\\@evil.com/cb",
            "https://xn--pgo-example-org.evil/cb",
            "https://pgo.exampIe.org/cb",
            "HTTPS://pgo.example.org/cb",
            "https:pgo.example.org/cb",
        ] {
            assert_eq!(p.check(bad), Err(Error::InvalidRedirectUri), "{bad}");
        }
    }

    #[test]
    fn a_redirect_uri_whose_query_carries_a_response_parameter_is_refused() {
        let host = RedirectPolicy::HttpsHost("pgo.example.org".into());
        assert!(host.check("https://pgo.example.org/cb?session=1&codes=2").is_ok());
        for bad in [
            "https://pgo.example.org/cb?code=X&state=Y&iss=https://evil.example",
            "https://pgo.example.org/cb?x=1&iss=https%3A%2F%2Fevil.example",
            "https://pgo.example.org/cb?error=access_denied",
            "https://pgo.example.org/cb?error_description=x",
            "https://pgo.example.org/cb?error_uri=https://evil.example",
            "https://pgo.example.org/cb?st%61te=Y",
            "https://pgo.example.org/cb?state",
        ] {
            assert_eq!(host.check(bad), Err(Error::InvalidRedirectUri), "{bad}");
        }
        let registered = registered(&["https://app.example/cb?code=fixed"]);
        assert_eq!(registered.check("https://app.example/cb?code=fixed"), Err(Error::InvalidRedirectUri));
    }

    proptest! {
        #[test]
        fn redirect_matching_never_panics(s in "\\PC{0,80}") {
            let _ = RedirectUri::parse(&s);
            let _ = registered(&["http://127.0.0.1:1/x"]).check(&s);
            let _ = RedirectPolicy::HttpsHost("h.example".into()).check(&s);
        }

        #[test]
        fn registered_uris_display_as_parsed(path in "[a-z0-9/]{0,20}", q in "[a-z0-9=&]{0,10}") {
            let raw = format!("https://app.example/{path}?{q}");
            let uri = RedirectUri::parse(&raw).unwrap();
            prop_assert_eq!(uri.as_str(), raw.as_str());
            prop_assert!(uri.matches(&raw));
        }
    }
}
