//! `/token`, `/revoke`, `/introspect` and `/par`: the client-authenticated
//! endpoints, and the DPoP proofs of `/token` and `/par`.

use std::net::IpAddr;

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use oauth_core::{AuthenticatedClient, AuthorizeRequest, DpopRequest, DpopVerified, Error, ErrorCode, TokenRequest};

use crate::Frontend;
use crate::request::{Params, client_credentials, dpop_header, read_params};
use crate::response::{self, Body, Challenge};

impl Frontend {
    fn client_error(&self, e: &Error) -> Response<Body> {
        if matches!(e, Error::InvalidClient | Error::Throttled { .. } | Error::ThrottleBusy { .. }) {
            self.metrics.auth_failure("client");
        }
        response::oauth_error(e, self.issuer(), Challenge::Basic)
    }

    /// Reads the body and authenticates the client; the shared first half of
    /// the three endpoints.
    pub(super) async fn authenticated<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
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
        *client_id = creds.client_id.clone();
        let creds = creds.borrow();
        let client = self
            .patiently(ErrorCode::InvalidClient, self.authority.authenticate_client(&creds, Some(ip)))
            .await
            .map_err(|e| self.client_error(&e))?;
        Ok((params, client))
    }

    /// The URL of the endpoint at `path`, as this server names it (what a
    /// DPoP proof's `htu` must say).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer().trim_end_matches('/'))
    }

    /// Checks the request's `DPoP` header, if it has one, for the issuing
    /// endpoint at `path` (`/token`, `/par`).
    async fn dpop_proof(&self, parts: &Parts, path: &str) -> Result<Option<DpopVerified>, Error> {
        let Some(proof) = dpop_header(&parts.headers)? else {
            return Ok(None);
        };
        let url = self.endpoint(path);
        let request = DpopRequest { method: parts.method.as_str(), url: &url, access_token: None, issuing: true };
        self.authority.check_dpop(proof, &request, None).await.map(Some)
    }

    /// Adds the current DPoP nonce to an answer of an issuing endpoint when
    /// nonces are required (RFC 9449 8.2), so a client learns the next one
    /// without a failed request.
    async fn with_nonce(&self, mut r: Response<Body>) -> Response<Body> {
        if self.authority.settings().dpop.require_nonce && !r.headers().contains_key(response::DPOP_NONCE) {
            if let Ok(nonce) = self.authority.dpop_nonce().await {
                if let Ok(v) = HeaderValue::from_str(&nonce) {
                    r.headers_mut().insert(response::DPOP_NONCE, v);
                }
            }
        }
        r
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
            device_code: params.get("device_code"),
            scope: params.get("scope"),
            username: params.get("username"),
            password: params.get("password"),
            resource: params.get("resource"),
        };
        let dpop = match self.dpop_proof(parts, "/token").await {
            Ok(d) => d,
            Err(e) => return self.with_nonce(response::oauth_error(&e, self.issuer(), Challenge::Basic)).await,
        };
        let answer =
            match self.patiently(ErrorCode::InvalidGrant, self.authority.token(&client, &req, dpop, Some(ip))).await {
                Ok(tokens) => {
                    self.metrics.token_issued(req.grant_type.unwrap_or("unknown"));
                    response::token_response(&tokens)
                }
                Err(e) => {
                    if matches!(e, Error::Throttled { .. } | Error::ThrottleBusy { .. })
                        || (req.grant_type == Some("password") && matches!(e, Error::InvalidGrant(_)))
                    {
                        self.metrics.auth_failure("password");
                    }
                    response::oauth_error(&e, self.issuer(), Challenge::Basic)
                }
            };
        self.with_nonce(answer).await
    }

    /// `POST /par` (RFC 9126): a pushed authorization request from an
    /// authenticated client, answered `201` with its `request_uri`, or with
    /// the error as JSON (never a redirect). A DPoP proof binds the code. A
    /// public client's push counts as pending for the peer address (past
    /// `max_pending_per_ip`, 429 `temporarily_unavailable` with
    /// `Retry-After`).
    pub(crate) async fn par<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
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
        if params.contains("request") {
            let e = Error::InvalidRequest("request objects are not supported");
            return response::oauth_error(&e, self.issuer(), Challenge::Basic);
        }
        let req = authorize_request(&params);
        let dpop = match self.dpop_proof(parts, "/par").await {
            Ok(d) => d,
            Err(e) => return self.with_nonce(response::oauth_error(&e, self.issuer(), Challenge::Basic)).await,
        };
        let answer = match self.authority.push_authorization_request(&client, &req, dpop, Some(ip)).await {
            Ok(pushed) => response::pushed(StatusCode::CREATED, &pushed),
            Err(e) => response::oauth_error(&e, self.issuer(), Challenge::Basic),
        };
        self.with_nonce(answer).await
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

/// The authorization request parameters of a query or a pushed request.
pub(crate) fn authorize_request(params: &Params) -> AuthorizeRequest<'_> {
    AuthorizeRequest {
        client_id: params.get("client_id"),
        redirect_uri: params.get("redirect_uri"),
        response_type: params.get("response_type"),
        scope: params.get("scope"),
        state: params.get("state"),
        code_challenge: params.get("code_challenge"),
        code_challenge_method: params.get("code_challenge_method"),
        resource: params.get("resource"),
        dpop_jkt: params.get("dpop_jkt"),
        request_uri: params.get("request_uri"),
        nonce: params.get("nonce"),
        prompt: params.get("prompt"),
        max_age: params.get("max_age"),
        login_hint: params.get("login_hint"),
        ui_locales: params.get("ui_locales"),
    }
}
