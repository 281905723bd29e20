//! `/token`, `/revoke` and `/introspect`: the client-authenticated endpoints.

use std::net::IpAddr;

use http::Response;
use http::request::Parts;
use oauth_core::{AuthenticatedClient, Error, TokenRequest};

use crate::Frontend;
use crate::request::{Params, client_credentials, read_params};
use crate::response::{self, Body, Challenge};

impl Frontend {
    fn client_error(&self, e: &Error) -> Response<Body> {
        if matches!(e, Error::InvalidClient | Error::Throttled { .. }) {
            self.metrics.auth_failure("client");
        }
        response::oauth_error(e, self.issuer(), Challenge::Basic)
    }

    /// Reads the body and authenticates the client; the shared first half of
    /// the three endpoints.
    async fn authenticated<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        json: bool,
        client_id: &mut Option<String>,
    ) -> Result<(Params, AuthenticatedClient), Response<Body>> {
        let params = read_params(&parts.headers, body, self.config.body_read_timeout, json)
            .await
            .map_err(|e| response::read_error(e, self.issuer()))?;
        let creds = client_credentials(&parts.headers, &params).map_err(|e| self.client_error(&e))?;
        *client_id = Some(creds.client_id.clone());
        let client =
            self.authority.authenticate_client(&creds.borrow(), Some(ip)).await.map_err(|e| self.client_error(&e))?;
        Ok((params, client))
    }

    /// `POST /token`: a form, or a flat JSON object (deployed MedMij clients).
    pub(crate) async fn token<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let (params, client) = match self.authenticated(parts, body, ip, true, client_id).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let req = TokenRequest {
            grant_type: params.get("grant_type"),
            code: params.get("code"),
            redirect_uri: params.get("redirect_uri"),
            code_verifier: params.get("code_verifier"),
            refresh_token: params.get("refresh_token"),
            scope: params.get("scope"),
            username: params.get("username"),
            password: params.get("password"),
            resource: params.get("resource"),
        };
        match self.authority.token(&client, &req, Some(ip)).await {
            Ok(tokens) => {
                self.metrics.token_issued(req.grant_type.unwrap_or("unknown"));
                response::token_response(&tokens)
            }
            Err(e) => {
                if matches!(e, Error::Throttled { .. })
                    || (req.grant_type == Some("password") && matches!(e, Error::InvalidGrant(_)))
                {
                    self.metrics.auth_failure("password");
                }
                response::oauth_error(&e, self.issuer(), Challenge::Basic)
            }
        }
    }

    /// `POST /revoke` (RFC 7009).
    pub(crate) async fn revoke<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let (params, client) = match self.authenticated(parts, body, ip, false, client_id).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        match self.authority.revoke(&client, params.get("token")).await {
            Ok(()) => response::empty_ok(),
            Err(e) => response::oauth_error(&e, self.issuer(), Challenge::Basic),
        }
    }

    /// `POST /introspect` (RFC 7662).
    pub(crate) async fn introspect<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let (params, client) = match self.authenticated(parts, body, ip, false, client_id).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        match self.authority.introspect(&client, params.get("token")).await {
            Ok(answer) => response::introspection(&answer),
            Err(e) => response::oauth_error(&e, self.issuer(), Challenge::Basic),
        }
    }
}
