//! The authorization request (RFC 6749 4.1.1): validate, then open a session.

use std::sync::Arc;

use crate::authority::Authority;
use crate::client::Client;
use crate::error::Error;
use crate::session::{AuthorizationSession, SessionRequest};
use crate::types::{ClientId, CodeChallenge, GrantType, ResponseType, SessionId, State, TokenHash};

use super::redirect::with_params;

/// The query parameters of `GET /authorize`, as sent. The front end has already
/// refused repeated parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizeRequest<'a> {
    /// `client_id`
    pub client_id: Option<&'a str>,
    /// `redirect_uri`
    pub redirect_uri: Option<&'a str>,
    /// `response_type`
    pub response_type: Option<&'a str>,
    /// `scope`
    pub scope: Option<&'a str>,
    /// `state`
    pub state: Option<&'a str>,
    /// `code_challenge`
    pub code_challenge: Option<&'a str>,
    /// `code_challenge_method`
    pub code_challenge_method: Option<&'a str>,
    /// `resource` (RFC 8707): the one resource the tokens are for.
    pub resource: Option<&'a str>,
}

/// Why an authorization request was refused, and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// Show an error page; never redirect (unknown client, bad redirect URI, or
    /// the store failing before a session exists).
    Page(Error),
    /// Redirect the browser to `location`, which carries `error`,
    /// `error_description`, the client's `state` (when valid) and `iss`.
    Redirect {
        /// The error, for logs and metrics.
        error: Error,
        /// The client URL to send the browser to.
        location: String,
    },
}

impl Authority {
    /// Validates an authorization request and opens a session for it.
    ///
    /// The order is fixed: `client_id`, then `redirect_uri` (both answered with an
    /// error page, since an unverified redirect URI must never receive a
    /// redirect), then `state`, `response_type`, the client's right to the code
    /// grant, `resource` (RFC 8707), `scope` and PKCE, which are redirected
    /// with `state` and `iss`.
    /// `browser_binding` is the hash of the browser cookie the login and consent
    /// forms are bound to.
    pub async fn authorize(
        &self,
        req: &AuthorizeRequest<'_>,
        browser_binding: Option<TokenHash>,
    ) -> Result<(AuthorizationSession, Arc<Client>), AuthorizeRejection> {
        use AuthorizeRejection::Page;
        let client_id = req.client_id.and_then(|c| ClientId::parse(c).ok()).ok_or(Page(Error::UnknownClient))?;
        let client = self.services.clients.client(&client_id).await.map_err(Page)?.ok_or(Page(Error::UnknownClient))?;
        let redirect = req.redirect_uri.ok_or(Page(Error::InvalidRedirectUri))?;
        let redirect = client.redirect().check(redirect).map_err(Page)?;

        // From here on, errors go back to the client. An invalid `state` is not
        // echoed: it is what made the request invalid.
        let state = match req.state.map(State::parse).transpose() {
            Ok(s) => s,
            Err(error) => return Err(self.error_redirect(redirect.as_str(), error, None)),
        };
        let fail = |error: Error| self.error_redirect(redirect.as_str(), error, state.as_ref());

        let response_type = req.response_type.ok_or(Error::InvalidRequest("response_type is required"));
        let ResponseType::Code = response_type.and_then(ResponseType::parse).map_err(fail)?;
        if !self.settings.grants.contains(&GrantType::AuthorizationCode) {
            return Err(fail(Error::UnsupportedResponseType));
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(fail(Error::UnauthorizedClient("the client may not use the authorization code grant")));
        }
        let resource = self.resolve_resource(&client, req.resource).map_err(fail)?;
        let scope = self.resolve_scope_for(&client, req.scope, resource.as_ref()).map_err(fail)?;
        let challenge = CodeChallenge::from_request(req.code_challenge, req.code_challenge_method).map_err(fail)?;
        if challenge.is_none() && client.require_pkce() {
            return Err(fail(Error::InvalidRequest("code_challenge is required (PKCE, S256)")));
        }

        let now = self.now();
        let id = self.random_16().map(SessionId::from_random_bytes).map_err(Page)?;
        let request = SessionRequest {
            client_id,
            redirect_uri: redirect,
            scope,
            state,
            code_challenge: challenge,
            browser_binding,
            resource,
        };
        let session = AuthorizationSession::new(id, request, now, self.settings.session_ttl);
        self.services.store.insert_session(&session).await.map_err(|e| Page(e.into()))?;
        Ok((session, client))
    }

    /// An error response at the client's redirect URI.
    pub(crate) fn error_redirect(&self, redirect_uri: &str, error: Error, state: Option<&State>) -> AuthorizeRejection {
        let location = self.error_location(redirect_uri, &error, state);
        AuthorizeRejection::Redirect { error, location }
    }

    pub(crate) fn error_location(&self, redirect_uri: &str, error: &Error, state: Option<&State>) -> String {
        let mut params = vec![("error", error.code().as_str()), ("error_description", error.description())];
        if let Some(s) = state {
            params.push(("state", s.as_str()));
        }
        params.push(("iss", &self.settings.issuer));
        with_params(redirect_uri, &params)
    }
}
