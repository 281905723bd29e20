//! A resource server in Rust: an API that accepts oauth-rs access tokens.
//!
//! `oauth_http::bearer::bearer_token` reads the `Authorization: Bearer`
//! header (RFC 6750); `oauth_jwt::Verifier` checks the token (signature by a
//! key of the issuer's JWKS, `typ`, `iss`, `aud`, expiry) and refreshes the
//! JWKS when a new key id shows up; `BearerError::into_response` writes the
//! exact RFC 6750 answer when it fails. Run it beside the quick start:
//!
//! ```sh
//! cargo run -p oauth-http --example resource_server   # serves http://127.0.0.1:8090/records
//! ```
//!
//! A JWT says nothing of a revocation after it was minted: an API that must
//! refuse a revoked token at once asks the server's `/introspect` instead.
//! docs/integration.md shows this file.

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use oauth_core::{Clock, Error};
use oauth_http::Body;
use oauth_http::bearer::{BearerError, bearer_token};
use oauth_jwt::{JwkSet, JwksSource, Verifier};
use oauth_runtime::SystemClock;
use time::Duration;

/// The issuer's JWKS, fetched over HTTP.
#[derive(Debug)]
pub struct HttpJwks {
    client: reqwest::Client,
    url: String,
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, Error> {
        let unavailable = |_| Error::InvalidToken("the issuer's keys are unavailable");
        let response = self.client.get(&self.url).send().await.map_err(unavailable)?;
        response.error_for_status().map_err(unavailable)?.json().await.map_err(unavailable)
    }
}

/// A verifier of the access tokens `issuer` mints for `audience` (the
/// server's `tokens.audience`, by default its issuer).
pub fn verifier(issuer: &str, audience: &str) -> Verifier<HttpJwks> {
    let jwks = HttpJwks { client: reqwest::Client::new(), url: format!("{issuer}/jwks.json") };
    // 30 s of clock skew allowed; an unknown key id refetches the JWKS at
    // most once a minute, so invented key ids cannot flood the issuer.
    Verifier::new(jwks, issuer, audience, Duration::seconds(30), Duration::seconds(60))
}

/// `GET /records`: needs a valid access token with the `read` scope.
pub async fn records(verifier: &Verifier<HttpJwks>, headers: &HeaderMap) -> Response<Body> {
    let realm = "records";
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(e) => return e.into_response(realm),
    };
    let claims = match verifier.authenticate(token, SystemClock.now()).await {
        Ok(claims) => claims,
        Err(e) => return BearerError::Rejected(e).into_response(realm),
    };
    if !claims.scope.contains("read") {
        return BearerError::Rejected(Error::InsufficientScope("the token lacks the read scope")).into_response(realm);
    }
    let body = serde_json::json!({"records": [], "sub": claims.subject, "client_id": claims.client_id.as_str()});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = Arc::new(verifier("http://127.0.0.1:8080", "http://127.0.0.1:8080"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
    println!("serving http://127.0.0.1:8090/records");
    loop {
        let (stream, _) = listener.accept().await?;
        let verifier = verifier.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let verifier = verifier.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/records" => records(&verifier, req.headers()).await,
                        _ => {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
                            *r.status_mut() = StatusCode::NOT_FOUND;
                            r
                        }
                    })
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
