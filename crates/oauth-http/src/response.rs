//! Building responses: RFC 6749 5.2 error bodies with their headers, token
//! responses, redirects, and HTML pages with their security headers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use oauth_core::Error;
use serde::Serialize;

use crate::request::ReadError;

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Which challenge a 401 carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Challenge {
    /// Client authentication at `/token`, `/revoke`, `/introspect`.
    Basic,
    /// Bearer-protected resources (RFC 6750 3).
    Bearer,
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

/// 200 with no body (revocation).
pub(crate) fn empty_ok() -> Response<Body> {
    let mut r = response(StatusCode::OK, "application/json", Bytes::new());
    no_store(&mut r);
    r
}

fn internal() -> Response<Body> {
    response(StatusCode::INTERNAL_SERVER_ERROR, "application/json", r#"{"error":"server_error"}"#)
}

fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// An RFC 6749 5.2 (or RFC 6750 3.1) error: JSON body, status from the error,
/// `WWW-Authenticate` on 401 (and on Bearer 400/403), `Retry-After` on 429.
pub(crate) fn oauth_error(err: &Error, realm: &str, challenge: Challenge) -> Response<Body> {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        error_description: &'a str,
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, &Body { error: err.code().as_str(), error_description: err.description() });
    no_store(&mut r);
    let realm = quoted(realm);
    let value = match (challenge, status.as_u16()) {
        (Challenge::Basic, 401) => Some(format!("Basic realm=\"{realm}\"")),
        (Challenge::Bearer, 400 | 401 | 403) => Some(format!(
            "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
            err.code(),
            quoted(err.description())
        )),
        _ => None,
    };
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if let Error::Throttled { retry_after, .. } = err {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    r
}

/// A 401 for a request without any bearer token: the challenge alone, no error
/// code (RFC 6750 3.1).
pub(crate) fn bearer_missing(realm: &str) -> Response<Body> {
    let mut r = response(
        StatusCode::UNAUTHORIZED,
        "application/json",
        r#"{"error":"invalid_request","error_description":"a bearer token is required"}"#,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{}\"", quoted(realm))) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The answer to a request that could not be read.
pub(crate) fn read_error(e: ReadError, realm: &str) -> Response<Body> {
    match e {
        ReadError::TooLarge => {
            let mut r = json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"error": "invalid_request", "error_description": "the request body is over 64 KiB"}),
            );
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        ReadError::Timeout => {
            let mut r = json(
                StatusCode::REQUEST_TIMEOUT,
                &serde_json::json!({"error": "invalid_request", "error_description": "the request body was too slow"}),
            );
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
    json(status, &serde_json::json!({"error": "invalid_request", "error_description": "no such endpoint or method"}))
}
