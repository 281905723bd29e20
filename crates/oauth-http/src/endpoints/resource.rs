//! `/userinfo`, `/healthz`.

use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use oauth_core::{ClaimValue, Error};

use crate::Frontend;
use crate::bearer::{BearerError, access_token, authenticate};
use crate::request::{Params, media_type, read_params};
use crate::response::{self, Body, Challenge};

impl Frontend {
    /// `GET` and `POST /userinfo`. Without `openid` in the token's scope:
    /// exactly `sub` and `username` of the token's account. With it: `sub`
    /// and the standard claims the scope releases (OpenID Connect Core 5.3).
    /// A token without an account (client credentials) is 403
    /// `insufficient_scope`. A `POST` may carry the token in a form body as
    /// `access_token` (RFC 6750 2.2) instead of the header, never both. A
    /// DPoP-bound token comes in the header with the DPoP scheme and a proof
    /// for this URL and method (RFC 9449 7).
    pub(crate) async fn userinfo<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Response<Body> {
        let url = self.endpoint("/userinfo");
        let method = parts.method.as_str();
        let principal = if parts.method == Method::POST && media_type(&parts.headers).is_some() {
            let params = match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
                Ok(p) => p,
                Err(e) => return response::read_error(e, self.issuer()),
            };
            self.userinfo_principal(method, &url, &parts.headers, &params).await
        } else {
            authenticate(&self.authority, method, &url, &parts.headers).await
        };
        let principal = match principal {
            Ok(p) => p,
            Err(e) => return e.into_response(self.issuer()),
        };
        match self.authority.userinfo(&principal) {
            Ok(info) => {
                let mut object = serde_json::Map::new();
                for (name, value) in info.claims {
                    let value = match value {
                        ClaimValue::Text(s) => serde_json::Value::String(s),
                        ClaimValue::Bool(b) => serde_json::Value::Bool(b),
                        ClaimValue::Number(n) => serde_json::Value::from(n),
                        _ => continue,
                    };
                    object.insert(name.to_owned(), value);
                }
                let mut r = response::json(StatusCode::OK, &object);
                // Claims about a person: no cache keeps them (SPEC).
                r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => response::oauth_error(&e, self.issuer(), Challenge::Bearer),
        }
    }

    /// The principal of a `POST /userinfo` with a form body: the token from
    /// the header or from `access_token`, never both (RFC 6750 2).
    /// A token in the body is a bearer token: a DPoP-bound one is refused
    /// there as it is with the Bearer scheme.
    async fn userinfo_principal(
        &self,
        method: &str,
        url: &str,
        headers: &http::HeaderMap,
        params: &Params,
    ) -> Result<oauth_core::BearerPrincipal, BearerError> {
        match (access_token(headers), params.get("access_token")) {
            (Err(BearerError::Missing), Some(token)) => {
                self.authority.authenticate_bearer(token).await.map_err(|e| match e {
                    Error::BoundTokenAsBearer => BearerError::RejectedDpop {
                        error: e,
                        algs: self.authority.services().proofs.dpop_algorithms().to_vec(),
                    },
                    e => BearerError::Rejected(e),
                })
            }
            (Ok(_) | Err(BearerError::Malformed), Some(_)) => {
                Err(BearerError::Rejected(Error::InvalidRequest("the access token is in the header and the body")))
            }
            (_, None) => authenticate(&self.authority, method, url, headers).await,
            (Err(e), Some(_)) => Err(e),
        }
    }

    /// `GET /healthz`: 200 when the store answers, 503 while it fails.
    pub(crate) async fn healthz(&self) -> Response<Body> {
        match self.authority.services().store.ping().await {
            Ok(()) => response::json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
            Err(e) => {
                let code = oauth_core::Error::from(e).code();
                let body = serde_json::json!({"status": "unavailable", "error": code.as_str()});
                response::json(StatusCode::SERVICE_UNAVAILABLE, &body)
            }
        }
    }
}
