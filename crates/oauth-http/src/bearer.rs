//! Access-token authentication for resource servers, usable on its own: give
//! it the request's method, URL and headers, get the token's principal or the
//! exact answer to send. Tokens come with the `Bearer` scheme (RFC 6750) or,
//! bound to a key, with the `DPoP` scheme and a `DPoP` proof (RFC 9449 7).
//!
//! A DPoP-bound token sent as a bearer token is refused: whoever copied it
//! lacks the key. Every refusal of a request that used the DPoP scheme or a
//! bound token carries a `DPoP` challenge with the accepted algorithms.

use http::{HeaderMap, Response, header};
use oauth_core::{Authority, BearerPrincipal, Error};

use crate::request::dpop_header;
use crate::response::{self, Body, Challenge};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization: Bearer` or `DPoP` header: 401 with a bare challenge.
    Missing,
    /// A malformed header, or more than one: 400 `invalid_request`.
    Malformed,
    /// The token was refused (invalid, expired, revoked, the account disabled),
    /// or the store failed; the error says which.
    Rejected(Error),
    /// The request used the DPoP scheme or a bound token and was refused:
    /// answered with a `DPoP` challenge naming `algs` (RFC 9449 7.1).
    RejectedDpop {
        /// Why: `invalid_token` for the token, `invalid_dpop_proof` for the
        /// proof, or a store failure.
        error: Error,
        /// The `alg` values proofs may use.
        algs: Vec<&'static str>,
    },
}

impl BearerError {
    /// The answer to send: status, JSON body and `WWW-Authenticate`.
    pub fn into_response(self, realm: &str) -> Response<Body> {
        match self {
            BearerError::Missing => response::bearer_missing(realm),
            BearerError::Malformed => response::oauth_error(
                &Error::InvalidRequest("malformed Authorization header"),
                realm,
                Challenge::Bearer,
            ),
            BearerError::Rejected(e) => response::oauth_error(&e, realm, Challenge::Bearer),
            BearerError::RejectedDpop { error, algs } => response::oauth_error(&error, realm, Challenge::Dpop(&algs)),
        }
    }
}

/// A resource server's RFC 9728 metadata, to serve at
/// `/.well-known/oauth-protected-resource` (with the resource's path after
/// it when it has one): the resource's identifier (the `resource` a client
/// asks tokens for, RFC 8707), the authorization servers that issue them, and
/// the scopes it understands. Clients such as MCP agents read it to find the
/// authorization server.
pub fn protected_resource_metadata(resource: &str, authorization_servers: &[&str], scopes: &[&str]) -> Response<Body> {
    #[derive(serde::Serialize)]
    struct Metadata<'a> {
        resource: &'a str,
        authorization_servers: &'a [&'a str],
        #[serde(skip_serializing_if = "<[&str]>::is_empty")]
        scopes_supported: &'a [&'a str],
        bearer_methods_supported: [&'static str; 1],
    }
    let m =
        Metadata { resource, authorization_servers, scopes_supported: scopes, bearer_methods_supported: ["header"] };
    response::json(http::StatusCode::OK, &m)
}

/// Adds RFC 9728 5.1's `resource_metadata` to the `WWW-Authenticate`
/// challenge of a 401 made by [`BearerError::into_response`], so a client
/// that was refused learns where the resource's metadata is.
pub fn with_resource_metadata(mut response: Response<Body>, metadata_url: &str) -> Response<Body> {
    let Some(challenge) = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
        return response;
    };
    let value = format!("{challenge}, resource_metadata=\"{}\"", metadata_url.replace(['\\', '"'], ""));
    if let Ok(v) = http::HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// How an access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <token>` (RFC 6750 2.1).
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` (RFC 9449 7.1), with a `DPoP` proof.
    Dpop(&'a str),
}

/// The access token of the `Authorization` header, and its scheme: `Bearer`
/// or `DPoP`, case-insensitive, the token in the b64token alphabet.
pub fn access_token(headers: &HeaderMap) -> Result<Presented<'_>, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let raw = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = raw.split_once(' ').ok_or(BearerError::Malformed)?;
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme is not an access token at all.
        return Err(BearerError::Missing);
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    match (ok, dpop) {
        (false, _) => Err(BearerError::Malformed),
        (true, false) => Ok(Presented::Bearer(token)),
        (true, true) => Ok(Presented::Dpop(token)),
    }
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 2.1). A
/// token sent with the DPoP scheme is not a bearer token.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    match access_token(headers)? {
        Presented::Bearer(token) => Ok(token),
        Presented::Dpop(_) => Err(BearerError::Missing),
    }
}

/// Authenticates a request to the resource at `url` (its URL without query
/// or fragment, as clients address it) made with `method`: the token's
/// signature, expiry, revocation and account; for a DPoP-bound token also
/// the proof (its method, URL, `ath`, key, age and `jti`). A bound token sent
/// with the Bearer scheme is refused.
pub async fn authenticate(
    authority: &Authority,
    method: &str,
    url: &str,
    headers: &HeaderMap,
) -> Result<BearerPrincipal, BearerError> {
    let dpop_refusal = |error: Error| BearerError::RejectedDpop {
        error,
        algs: authority.services().proofs.dpop_algorithms().to_vec(),
    };
    match access_token(headers)? {
        Presented::Bearer(token) => authority.authenticate_bearer(token).await.map_err(|e| match e {
            Error::BoundTokenAsBearer => dpop_refusal(e),
            e => BearerError::Rejected(e),
        }),
        Presented::Dpop(token) => {
            let proof = dpop_header(headers)
                .and_then(|p| p.ok_or(Error::InvalidDpopProof("the DPoP scheme needs a DPoP proof header")))
                .map_err(dpop_refusal)?;
            authority.authenticate_dpop(token, proof, method, url).await.map_err(dpop_refusal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_resource_server_publishes_rfc9728_metadata_and_names_it_in_its_challenge() {
        let r = protected_resource_metadata("https://api.example/mcp", &["https://as.example"], &["read"]);
        let body = http_body_util::BodyExt::collect(r.into_body());
        let bytes = futures_executor(body);
        let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["resource"], "https://api.example/mcp");
        assert_eq!(m["authorization_servers"], serde_json::json!(["https://as.example"]));
        assert_eq!(m["scopes_supported"], serde_json::json!(["read"]));
        let refused = with_resource_metadata(
            BearerError::Missing.into_response("https://api.example"),
            "https://api.example/.well-known/oauth-protected-resource/mcp",
        );
        assert_eq!(
            refused.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"https://api.example\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource/mcp\""
        );
    }

    /// The body of a full response, which is ready at once.
    fn futures_executor(body: http_body_util::combinators::Collect<crate::Body>) -> bytes::Bytes {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(body).unwrap().to_bytes()
    }

    #[test]
    fn bearer_token_follows_rfc6750_syntax() {
        assert_eq!(bearer_token(&with(&["Bearer abc.def-_~+/=="])), Ok("abc.def-_~+/=="));
        assert_eq!(bearer_token(&with(&["bearer x"])), Ok("x"));
        assert_eq!(bearer_token(&with(&[])), Err(BearerError::Missing));
        assert_eq!(bearer_token(&with(&["Basic abc"])), Err(BearerError::Missing));
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer ==", "Bearer a\"b"] {
            assert_eq!(bearer_token(&with(&[bad])), Err(BearerError::Malformed), "{bad}");
        }
        assert_eq!(bearer_token(&with(&["Bearer a", "Bearer b"])), Err(BearerError::Malformed));
    }

    #[test]
    fn the_dpop_scheme_is_told_apart_from_bearer() {
        assert_eq!(access_token(&with(&["DPoP abc.def"])), Ok(Presented::Dpop("abc.def")));
        assert_eq!(access_token(&with(&["dpop x"])), Ok(Presented::Dpop("x")));
        assert_eq!(access_token(&with(&["Bearer x"])), Ok(Presented::Bearer("x")));
        assert_eq!(access_token(&with(&["DPoP a b"])), Err(BearerError::Malformed));
        assert_eq!(bearer_token(&with(&["DPoP x"])), Err(BearerError::Missing));
    }
}
