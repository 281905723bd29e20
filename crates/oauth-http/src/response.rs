//! Building responses: RFC 6749 5.2 error bodies with their headers, token
//! responses, redirects, and HTML pages with their security headers.
//!
//! The JSON shapes of the wire are decided here, not in the core: the token
//! response (RFC 6749 5.1) and the introspection response (RFC 7662 2.2) are
//! core values rendered by [`token_response`] and [`introspection`]. Every error
//! code comes from [`oauth_core::Error`] (a tidy test in `xtask` refuses a code
//! written out anywhere else).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use oauth_core::{DeviceAuthorization, Error, ErrorCode, Introspection, PushedAuthorization, TokenResponse};
use serde::Serialize;

use crate::request::ReadError;

/// The body type of every response.
pub type Body = Full<Bytes>;

/// The header that carries a DPoP nonce (RFC 9449 8).
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Which challenge a 401 carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Challenge<'a> {
    /// Client authentication at `/token`, `/revoke`, `/introspect`, `/par`.
    Basic,
    /// Bearer-protected resources (RFC 6750 3).
    Bearer,
    /// A resource asked with the DPoP scheme or a bound token (RFC 9449 7.1):
    /// the algorithms its proofs may use.
    Dpop(&'a [&'static str]),
    /// The Bearer challenge for an error about the bearer token itself
    /// (`invalid_token`), and none for any other: at the registration
    /// endpoint and the admin API, a refused body is answered by its JSON
    /// alone (RFC 7591 3.2.2), since a challenge would tell the client that
    /// its token failed, and RFC 6750 3 has no challenge for errors such as
    /// `invalid_client_metadata`.
    BearerForTokenErrors,
}

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn no_store(r: &mut Response<Body>) {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json", body),
        Err(_) => internal(),
    }
}

/// A JSON response that must not be cached (tokens, introspection).
pub(crate) fn json_no_store(value: &impl Serialize) -> Response<Body> {
    let mut r = json(StatusCode::OK, value);
    no_store(&mut r);
    r
}

/// A JSON response with `status` that must not be cached (admin answers,
/// registrations: they may hold secrets).
pub(crate) fn json_no_store_status(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let mut r = json(status, value);
    no_store(&mut r);
    r
}

/// 204 No Content (a deletion).
pub(crate) fn no_content() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    no_store(&mut r);
    r
}

/// 200 with no body (revocation).
pub(crate) fn empty_ok() -> Response<Body> {
    let mut r = response(StatusCode::OK, "application/json", Bytes::new());
    no_store(&mut r);
    r
}

fn internal() -> Response<Body> {
    // Built by hand: this is the answer when serializing failed.
    let body = format!(r#"{{"error":"{}"}}"#, ErrorCode::ServerError);
    response(StatusCode::INTERNAL_SERVER_ERROR, "application/json", body)
}

/// An RFC 6749 5.2 error body for `err`, with a status the edge chooses (413,
/// 408, 404, 431 ...) rather than the error's own.
pub(crate) fn error_json(status: StatusCode, err: &Error) -> Response<Body> {
    json(status, &ErrorBody { error: err.code().as_str(), error_description: err.description() })
}

/// Every JSON error this server sends (RFC 6749 5.2, RFC 7591 3.2.2); the
/// admin API's OpenAPI description derives its `Error` schema from it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// The error code, one of `oauth_core::ErrorCode`'s.
    error: &'a str,
    /// A sentence for the operator; never holds a secret.
    error_description: &'a str,
}

/// The token response (RFC 6749 5.1, with OpenID Connect's `id_token`), not
/// to be cached.
pub(crate) fn token_response(t: &TokenResponse) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        access_token: &'a str,
        token_type: &'a str,
        expires_in: i64,
        scope: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id_token: Option<&'a str>,
    }
    json_no_store(&Wire {
        access_token: &t.access_token,
        token_type: t.token_type,
        expires_in: t.expires_in,
        scope: &t.scope,
        refresh_token: t.refresh_token.as_deref(),
        id_token: t.id_token.as_deref(),
    })
}

/// The answer to a pushed authorization request (RFC 9126 2.2), not to be
/// cached: the `request_uri` is a capability.
pub(crate) fn pushed(status: StatusCode, p: &PushedAuthorization) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        request_uri: &'a str,
        expires_in: i64,
    }
    let mut r = json(status, &Wire { request_uri: &p.request_uri, expires_in: p.expires_in });
    no_store(&mut r);
    r
}

/// The device authorization response (RFC 8628 3.2), not to be cached: the
/// device code is a capability.
pub(crate) fn device_authorization(d: &DeviceAuthorization) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        device_code: &'a str,
        user_code: String,
        verification_uri: &'a str,
        verification_uri_complete: &'a str,
        expires_in: i64,
        interval: i64,
    }
    json_no_store(&Wire {
        device_code: &d.device_code,
        user_code: d.user_code.to_string(),
        verification_uri: &d.verification_uri,
        verification_uri_complete: &d.verification_uri_complete,
        expires_in: d.expires_in,
        interval: d.interval,
    })
}

/// The introspection response (RFC 7662 2.2), not to be cached. An inactive
/// token is `{"active":false}` alone.
pub(crate) fn introspection(i: &Introspection) -> Response<Body> {
    #[derive(Serialize)]
    struct Confirmation<'a> {
        jkt: &'a str,
    }
    #[derive(Serialize)]
    struct Wire<'a> {
        active: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_use: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cnf: Option<Confirmation<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        scope: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sub: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exp: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iat: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iss: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        jti: Option<&'a str>,
    }
    json_no_store(&Wire {
        active: i.active,
        token_type: i.token_type,
        token_use: i.token_use,
        cnf: i.cnf_jkt.as_deref().map(|jkt| Confirmation { jkt }),
        client_id: i.client_id.as_deref(),
        scope: i.scope.as_deref(),
        sub: i.sub.as_deref(),
        exp: i.exp,
        iat: i.iat,
        iss: i.iss.as_deref(),
        aud: i.aud.as_deref(),
        jti: i.jti.as_deref(),
    })
}

fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// An RFC 6749 5.2 (or RFC 6750 3.1) error: JSON body, status from the error,
/// `WWW-Authenticate` on 401 (and on Bearer 400/403), `Retry-After` on 429.
pub(crate) fn oauth_error(err: &Error, realm: &str, challenge: Challenge<'_>) -> Response<Body> {
    let mut status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // RFC 9449 7.1: at a resource, a bad proof is a 401 like a bad token.
    if matches!(challenge, Challenge::Dpop(_)) && matches!(err, Error::InvalidDpopProof(_)) {
        status = StatusCode::UNAUTHORIZED;
    }
    let mut r = error_json(status, err);
    no_store(&mut r);
    let realm = quoted(realm);
    let challenge = match challenge {
        Challenge::BearerForTokenErrors if matches!(err, Error::InvalidToken(_)) => Some(Challenge::Bearer),
        Challenge::BearerForTokenErrors => None,
        other => Some(other),
    };
    let value = match (challenge, status.as_u16()) {
        (Some(Challenge::Basic), 401) => Some(format!("Basic realm=\"{realm}\"")),
        (Some(Challenge::Bearer), 400 | 401 | 403) => Some(format!(
            "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
            err.code(),
            quoted(err.description())
        )),
        (Some(Challenge::Dpop(algs)), 400 | 401 | 403) => Some(format!(
            "DPoP realm=\"{realm}\", algs=\"{}\", error=\"{}\", error_description=\"{}\"",
            algs.join(" "),
            err.code(),
            quoted(err.description())
        )),
        _ => None,
    };
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    match err {
        Error::Throttled { retry_after, .. }
        | Error::RateLimited { retry_after }
        | Error::TooManyPending { retry_after } => {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        Error::ThrottleBusy { .. } => {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        _ => {}
    }
    if let Error::UseDpopNonce { nonce } = err {
        if let Ok(v) = HeaderValue::from_str(nonce) {
            r.headers_mut().insert(DPOP_NONCE, v);
        }
    }
    r
}

/// A 401 for a request without any bearer token: the challenge alone, no error
/// code (RFC 6750 3.1).
pub(crate) fn bearer_missing(realm: &str) -> Response<Body> {
    let mut r = error_json(StatusCode::UNAUTHORIZED, &Error::InvalidRequest("a bearer token is required"));
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{}\"", quoted(realm))) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(&mut r);
    r
}

/// The answer to a request that could not be read.
pub(crate) fn read_error(e: ReadError, realm: &str) -> Response<Body> {
    match e {
        ReadError::TooLarge => {
            let mut r =
                error_json(StatusCode::PAYLOAD_TOO_LARGE, &Error::InvalidRequest("the request body is over 64 KiB"));
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        ReadError::Timeout => {
            let mut r =
                error_json(StatusCode::REQUEST_TIMEOUT, &Error::InvalidRequest("the request body was too slow"));
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        ReadError::Invalid(err) => oauth_error(&err, realm, Challenge::Basic),
    }
}

/// `303 See Other` to `location` (RFC 9700 4.12: after a POST the browser must
/// not resend the form to the client).
pub(crate) fn see_other(location: &str) -> Response<Body> {
    let mut r = response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Bytes::new());
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            no_store(&mut r);
            r
        }
        Err(_) => internal(),
    }
}

/// An HTML page with the security headers every page sends.
pub(crate) fn html(status: StatusCode, markup: maud::Markup) -> Response<Body> {
    let mut r = response(status, "text/html; charset=utf-8", markup.into_string());
    let h = r.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // No `form-action 'self'`: Chromium applies it to the redirect that follows
    // the consent POST, and the browser would never reach the client (SPEC).
    h.insert("content-security-policy", HeaderValue::from_static("frame-ancestors 'none'; default-src 'self'"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    no_store(&mut r);
    r
}

/// Plain text (the Prometheus exposition).
pub(crate) fn text(body: String) -> Response<Body> {
    response(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
}

/// The stylesheet of the pages (same origin, so the CSP allows it).
pub(crate) fn css(body: &'static str) -> Response<Body> {
    let mut r = response(StatusCode::OK, "text/css; charset=utf-8", body);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// A JSON 404 or 405 for paths and methods we do not serve.
pub(crate) fn not_found(status: StatusCode) -> Response<Body> {
    error_json(status, &Error::InvalidRequest("no such endpoint or method"))
}
