//! `/userinfo`, `/healthz`.

use http::request::Parts;
use http::{Response, StatusCode};
use oauth_core::Error;

use crate::Frontend;
use crate::bearer::authenticate;
use crate::response::{self, Body, Challenge};

impl Frontend {
    /// `GET /userinfo`: exactly `sub` and `username` of the token's account. A
    /// token without an account (client credentials) is 403
    /// `insufficient_scope`. A DPoP-bound token comes with the DPoP scheme
    /// and a proof for this URL.
    pub(crate) async fn userinfo(&self, parts: &Parts) -> Response<Body> {
        let url = self.endpoint("/userinfo");
        match authenticate(&self.authority, parts.method.as_str(), &url, &parts.headers).await {
            Ok(p) => match p.account {
                Some(a) => response::json(
                    StatusCode::OK,
                    &serde_json::json!({"sub": a.id.to_string(), "username": a.username}),
                ),
                None => {
                    let e = Error::InsufficientScope("the token has no resource owner");
                    response::oauth_error(&e, self.issuer(), Challenge::Bearer)
                }
            },
            Err(e) => e.into_response(self.issuer()),
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
