//! Dynamic client registration: `POST /register` (RFC 7591) and a client's
//! management of its own registration at `/register/{client_id}` (RFC 7592),
//! served only when `[registration] enabled` is on.
//!
//! The registration access token and the initial access token are bearer
//! tokens (RFC 6750 2.1 syntax); every refusal of one is 401 `invalid_token`
//! with a Bearer challenge, the same for an unknown client as for a wrong
//! token. The token is checked from the headers before a byte of the body is
//! read: a wrong token is that 401 whatever the body is, malformed or over
//! the size limit, so a caller without the token learns nothing of how its
//! metadata would fare (RFC 7592 2, RFC 7591 3, RFC 6750 3.1).

use std::net::IpAddr;

use http::request::Parts;
use http::{Method, Response, StatusCode};
use oauth_core::Error;

use crate::Frontend;
use crate::bearer::{BearerError, bearer_token};
use crate::request::{ReadError, read_body};
use crate::response::{self, Body, Challenge};
use crate::wire::{self, ClientMetadataIn};

impl Frontend {
    fn registration_error(&self, e: &Error) -> Response<Body> {
        response::oauth_error(e, self.issuer(), Challenge::BearerForTokenErrors)
    }

    /// Where a registered client manages its registration.
    fn registration_client_uri(&self, client_id: &str) -> String {
        let encoded = percent_encoding::utf8_percent_encode(client_id, percent_encoding::NON_ALPHANUMERIC);
        format!("{}/register/{encoded}", self.issuer().trim_end_matches('/'))
    }

    /// The bearer token of the request, `None` when there is none; a
    /// malformed header is the caller's 400.
    fn optional_bearer(parts: &Parts) -> Result<Option<&str>, BearerError> {
        match bearer_token(&parts.headers) {
            Ok(t) => Ok(Some(t)),
            Err(BearerError::Missing) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn metadata_body<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Result<ClientMetadataIn, Response<Body>> {
        let bytes = read_body(&parts.headers, body, self.config.body_read_timeout)
            .await
            .map_err(|e| response::read_error(e, self.issuer()))?;
        wire::parse_json(&bytes, true).map_err(|e| match e {
            ReadError::Invalid(e) => self.registration_error(&e),
            other => response::read_error(other, self.issuer()),
        })
    }

    /// `POST /register` (RFC 7591 3).
    pub(crate) async fn register<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let Some(admin) = &self.admin else { return response::not_found(StatusCode::NOT_FOUND) };
        let token = match Self::optional_bearer(parts) {
            Ok(t) => t,
            Err(e) => return e.into_response(self.issuer()),
        };
        let admitted = match admin.admit(token).await {
            Ok(a) => a,
            Err(e) => return self.registration_error(&e),
        };
        let meta = match self.metadata_body(parts, body).await {
            Ok(m) => m.into_core(),
            Err(r) => return r,
        };
        match admin.register(&meta, admitted, Some(ip)).await {
            Ok(issued) => {
                let id = issued.view.client.id().as_str().to_owned();
                let uri = self.registration_client_uri(&id);
                *client_id = Some(id);
                response::json_no_store_status(
                    StatusCode::CREATED,
                    &wire::issued(&issued, Some(uri), admin.authority().services().id_tokens.server_alg()),
                )
            }
            Err(e) => self.registration_error(&e),
        }
    }

    /// `GET`, `PUT` and `DELETE /register/{client_id}` (RFC 7592 2).
    pub(crate) async fn registration<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        id: &str,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let Some(admin) = &self.admin else { return response::not_found(StatusCode::NOT_FOUND) };
        let token = match Self::optional_bearer(parts) {
            Ok(Some(t)) => t,
            Ok(None) => return response::bearer_missing(self.issuer()),
            Err(e) => return e.into_response(self.issuer()),
        };
        *client_id = Some(id.to_owned());
        let uri = self.registration_client_uri(id);
        let answer = match parts.method {
            Method::GET => admin.registration(id, token).await.map(|v| {
                let issued = oauth_core::Issued { view: v, client_secret: None, registration_access_token: None };
                response::json_no_store_status(
                    StatusCode::OK,
                    &wire::issued(&issued, Some(uri), admin.authority().services().id_tokens.server_alg()),
                )
            }),
            Method::PUT => {
                // The token first; `update_registration` checks it again
                // with the body, since the client may change meanwhile.
                if let Err(e) = admin.registration(id, token).await {
                    return self.registration_error(&e);
                }
                let meta = match self.metadata_body(parts, body).await {
                    Ok(m) => m.into_core(),
                    Err(r) => return r,
                };
                admin.update_registration(id, token, &meta).await.map(|i| {
                    response::json_no_store_status(
                        StatusCode::OK,
                        &wire::issued(&i, Some(uri), admin.authority().services().id_tokens.server_alg()),
                    )
                })
            }
            _ => admin.delete_registration(id, token).await.map(|()| response::no_content()),
        };
        answer.unwrap_or_else(|e| self.registration_error(&e))
    }
}
