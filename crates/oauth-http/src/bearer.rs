//! Bearer authentication for resource servers (RFC 6750), usable on its own:
//! give it the request headers, get the token's principal or the exact RFC 6750
//! answer to send.

use http::{HeaderMap, Response, header};
use oauth_core::{Authority, BearerPrincipal, Error};

use crate::response::{self, Body, Challenge};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization: Bearer` header: 401 with a bare challenge.
    Missing,
    /// A malformed header, or more than one: 400 `invalid_request`.
    Malformed,
    /// The token was refused (invalid, expired, revoked, the account disabled),
    /// or the store failed; the error says which.
    Rejected(Error),
}

impl BearerError {
    /// The RFC 6750 response: status, JSON body and `WWW-Authenticate`.
    pub fn into_response(self, realm: &str) -> Response<Body> {
        match self {
            BearerError::Missing => response::bearer_missing(realm),
            BearerError::Malformed => response::oauth_error(
                &Error::InvalidRequest("malformed Authorization header"),
                realm,
                Challenge::Bearer,
            ),
            BearerError::Rejected(e) => response::oauth_error(&e, realm, Challenge::Bearer),
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

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 2.1: the
/// scheme case-insensitive, the token in the b64token alphabet).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let raw = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = raw.split_once(' ').ok_or(BearerError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme is not a bearer token at all.
        return Err(BearerError::Missing);
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if ok { Ok(token) } else { Err(BearerError::Malformed) }
}

/// Authenticates a request by its bearer token: signature, expiry, revocation,
/// and that the account (if any) is enabled.
pub async fn authenticate_bearer(authority: &Authority, headers: &HeaderMap) -> Result<BearerPrincipal, BearerError> {
    let token = bearer_token(headers)?;
    authority.authenticate_bearer(token).await.map_err(BearerError::Rejected)
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
}
