//! The authorization request (RFC 6749 4.1.1): validate, then open a session;
//! and pushed authorization requests (RFC 9126): validate, keep, and open the
//! session when the browser brings the `request_uri`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::session::{AuthorizationSession, OidcRequest, SessionRequest, StoredPush};
use crate::store::{Record, RecordKind};
use crate::types::{
    ClientId, CodeChallenge, DpopVerified, GrantType, Hint, MaxAge, Nonce, Prompt, ResponseType, SessionId, State,
    TokenHash, parse_thumbprint,
};

use super::client_auth::{AuthenticatedClient, ClientAuthMethod};
use super::redirect::with_params;

/// Pushed authorization requests, by the SHA-256 of their `request_uri`; the
/// value is a [`StoredPush`] as JSON.
pub(crate) const PUSHED_REQUESTS: RecordKind = RecordKind::new("pushed_request");

/// How long a `request_uri` may be used (RFC 9126 2.2; SPEC-2: 60 s).
pub const PUSHED_REQUEST_TTL: Duration = Duration::seconds(60);

/// The prefix of every `request_uri` this server hands out (RFC 9126 2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The answer to a pushed authorization request (RFC 9126 2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct PushedAuthorization {
    /// The `request_uri` to send to `/authorize`, once, within `expires_in`.
    pub request_uri: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for PushedAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The request_uri is a bearer capability for its request.
        f.debug_struct("PushedAuthorization").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}
/// The longest `redirect_uri` an authorization request may carry, in bytes.
pub(crate) const MAX_REDIRECT_URI: usize = 2048;
/// The longest `scope` an authorization request may carry, in bytes.
pub(crate) const MAX_SCOPE: usize = 1024;

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
    /// `dpop_jkt` (RFC 9449 10): the thumbprint of the DPoP key the code is
    /// to be bound to.
    pub dpop_jkt: Option<&'a str>,
    /// `request_uri` (RFC 9126 4): a pushed request to use instead of the
    /// other parameters.
    pub request_uri: Option<&'a str>,
    /// `nonce` (OpenID Connect)
    pub nonce: Option<&'a str>,
    /// `prompt` (OpenID Connect)
    pub prompt: Option<&'a str>,
    /// `max_age` (OpenID Connect)
    pub max_age: Option<&'a str>,
    /// `login_hint` (OpenID Connect)
    pub login_hint: Option<&'a str>,
    /// `ui_locales` (OpenID Connect)
    pub ui_locales: Option<&'a str>,
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
    /// redirect), then `state`, whether the client must push its requests,
    /// `response_type`, the client's right to the code grant, `resource`
    /// (RFC 8707), `scope`, PKCE, `dpop_jkt` and the OpenID Connect parameters
    /// (`nonce`, `prompt`, `max_age`, `login_hint`, `ui_locales`), which are
    /// redirected with `state` and `iss`.
    /// With a `request_uri`, the pushed request it names is used instead, once,
    /// for its own client only, until it expires; an unknown, used, expired or
    /// foreign one gets the error page, since its redirect URI cannot be
    /// trusted then.
    ///
    /// The session opens in `Requested`, whether its request was pushed or
    /// not; [`Authority::proceed`] then decides whether the browser sees the
    /// login page, so single sign-on, `prompt`, `max_age` and consent apply to
    /// pushed requests too. `browser_binding` is the hash of the browser
    /// cookie the login and consent forms are bound to.
    ///
    /// Nothing unauthenticated grows the store without bound: a `redirect_uri`
    /// over 2,048 bytes gets the error page, a `scope` over 1,024 bytes is
    /// redirected as `invalid_request`, and `peer` (the address the request
    /// came from) may hold at most `max_pending_per_ip` sessions that no one
    /// has logged in to, pushed or not; past that the answer is the
    /// [`Error::TooManyPending`] page.
    pub async fn authorize(
        &self,
        req: &AuthorizeRequest<'_>,
        browser_binding: Option<TokenHash>,
        peer: Option<IpAddr>,
    ) -> Result<(AuthorizationSession, Arc<Client>), AuthorizeRejection> {
        use AuthorizeRejection::Page;
        let client_id = req.client_id.and_then(|c| ClientId::parse(c).ok()).ok_or(Page(Error::UnknownClient))?;
        let client = self.services.clients.client(&client_id).await.map_err(Page)?.ok_or(Page(Error::UnknownClient))?;
        let request = match req.request_uri {
            Some(uri) => self.take_pushed(uri, &client).await.map_err(Page)?,
            None => self.validate_request(req, &client, false).await?,
        };
        let now = self.now();
        let id = self.random_16().map(SessionId::from_random_bytes).map_err(Page)?;
        let request = SessionRequest { browser_binding, opened_from: peer, ..request };
        let session = AuthorizationSession::new(id, request, now, self.settings.session_ttl);
        if let Some(peer) = peer {
            self.pending_count(peer, session.expires_at()).await.map_err(Page)?;
        }
        if let Err(e) = self.services.store.insert_session(&session).await {
            self.pending_settled(&session).await;
            return Err(Page(e.into()));
        }
        Ok((session, client))
    }

    /// Validates and keeps a pushed authorization request of `client`
    /// (RFC 9126 2), bound to the key of its DPoP proof if it had one. Every
    /// refusal is an error for the JSON answer at `/par`, never a redirect: a
    /// `client_id` other than the authenticated client's, every error
    /// [`Authority::authorize`] would give, and a `dpop_jkt` that is not the
    /// proof's key.
    ///
    /// A public client's push is authenticated by its `client_id` alone and
    /// stores up to a few KB: it counts as pending for `peer` (the address
    /// it came from), with the address's sessions and device requests, until
    /// its `request_uri` is used or expires. Past `max_pending_per_ip` it is
    /// refused with [`Error::TooManyPending`] (429 with `Retry-After`). A
    /// confidential client's pushes do not count.
    pub async fn push_authorization_request(
        &self,
        client: &AuthenticatedClient,
        req: &AuthorizeRequest<'_>,
        dpop: Option<DpopVerified>,
        peer: Option<IpAddr>,
    ) -> Result<PushedAuthorization> {
        if req.request_uri.is_some() {
            return Err(Error::InvalidRequest("request_uri is not allowed in a pushed request"));
        }
        if req.client_id.is_some_and(|id| id != client.client().id().as_str()) {
            return Err(Error::InvalidRequest("client_id is not the authenticated client"));
        }
        let mut request = self.validate_request(req, client.client(), true).await.map_err(|r| match r {
            AuthorizeRejection::Page(e) | AuthorizeRejection::Redirect { error: e, .. } => e,
        })?;
        if let Some(proof) = dpop {
            // RFC 9449 10.1: a proof at the PAR endpoint binds the code.
            if request.dpop_jkt.as_deref().is_some_and(|jkt| jkt != proof.jkt()) {
                return Err(Error::InvalidDpopProof("dpop_jkt is not the key of the DPoP proof"));
            }
            request.dpop_jkt = Some(proof.jkt().to_owned());
        }
        let now = self.now();
        let expires_at = now + PUSHED_REQUEST_TTL;
        // Counted before anything is stored, so that no address can fill the
        // store with pushes of a public client.
        let pushed_from = match (client.method(), peer) {
            (ClientAuthMethod::None, Some(peer)) => {
                self.pending_count(peer, expires_at).await?;
                Some((peer, expires_at))
            }
            _ => None,
        };
        let stored = self.store_pushed(StoredPush { request, pushed_from }, expires_at, now).await;
        if let (Err(_), Some((peer, until))) = (&stored, pushed_from) {
            self.pending_done(peer, until).await;
        }
        let request_uri = stored?;
        Ok(PushedAuthorization { request_uri, expires_in: PUSHED_REQUEST_TTL.whole_seconds() })
    }

    /// Stores `push` under a fresh `request_uri` until `expires_at`; answers
    /// the `request_uri`.
    async fn store_pushed(&self, push: StoredPush, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<String> {
        let (secret, key) = self.opaque_secret()?;
        let value = serde_json::to_vec(&push).map_err(|e| Error::Internal(e.to_string()))?;
        let record = Record { kind: PUSHED_REQUESTS, key, owner: None, value, expires_at };
        if !self.services.store.insert_record(&record, now).await? {
            return Err(Error::Internal("a fresh request_uri was already taken".into()));
        }
        Ok(format!("{REQUEST_URI_PREFIX}{secret}"))
    }

    /// The pushed request `uri` names, taken so it works once: refused when
    /// it is unknown, used, expired, or another client's. Taken, it no
    /// longer counts as pending for the address that pushed it.
    async fn take_pushed(&self, uri: &str, client: &Client) -> Result<SessionRequest> {
        let unknown = Error::InvalidRequest("the request_uri is unknown, used, expired or another client's");
        let secret = uri.strip_prefix(REQUEST_URI_PREFIX).ok_or(unknown.clone())?;
        if URL_SAFE_NO_PAD.decode(secret).map_or(true, |b| b.len() != 32) {
            return Err(unknown);
        }
        let key = TokenHash::of(secret);
        let now = self.now();
        // Read before taking, so that another client presenting the URI
        // cannot spend it.
        let Some(found) = self.services.store.record(PUSHED_REQUESTS, &key, now).await? else {
            return Err(unknown);
        };
        let pushed: StoredPush =
            serde_json::from_slice(&found.value).map_err(|_| Error::Internal("a pushed request is corrupt".into()))?;
        if &pushed.request.client_id != client.id() {
            return Err(unknown);
        }
        if self.services.store.take_record(PUSHED_REQUESTS, &key, now).await?.is_none() {
            return Err(unknown);
        }
        if let Some((peer, until)) = pushed.pushed_from {
            self.pending_done(peer, until).await;
        }
        Ok(pushed.request)
    }

    /// Checks an authorization request of `client` in the fixed order (see
    /// [`Authority::authorize`]) and answers the validated request. `pushed`
    /// says it came to `/par`, where PAR is met by definition.
    async fn validate_request(
        &self,
        req: &AuthorizeRequest<'_>,
        client: &Client,
        pushed: bool,
    ) -> Result<SessionRequest, AuthorizeRejection> {
        use AuthorizeRejection::Page;
        let redirect = req.redirect_uri.ok_or(Page(Error::InvalidRedirectUri))?;
        if redirect.len() > MAX_REDIRECT_URI {
            return Err(Page(Error::InvalidRequest("redirect_uri is longer than 2048 bytes")));
        }
        let redirect = client.redirect().check(redirect).map_err(Page)?;

        // From here on, errors go back to the client. An invalid `state` is not
        // echoed: it is what made the request invalid.
        let state = match req.state.map(State::parse).transpose() {
            Ok(s) => s,
            Err(error) => return Err(self.error_redirect(redirect.as_str(), error, None)),
        };
        let fail = |error: Error| self.error_redirect(redirect.as_str(), error, state.as_ref());

        if !pushed && self.requires_pushed_requests(client) {
            return Err(fail(Error::InvalidRequest("this client must push its authorization requests (PAR)")));
        }
        let response_type = req.response_type.ok_or(Error::InvalidRequest("response_type is required"));
        let ResponseType::Code = response_type.and_then(ResponseType::parse).map_err(fail)?;
        if !self.settings.grants.contains(&GrantType::AuthorizationCode) {
            return Err(fail(Error::UnsupportedResponseType));
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(fail(Error::UnauthorizedClient("the client may not use the authorization code grant")));
        }
        if req.scope.is_some_and(|s| s.len() > MAX_SCOPE) {
            return Err(fail(Error::InvalidRequest("scope is longer than 1024 bytes")));
        }
        let resource = self.resolve_resource(client, req.resource).map_err(fail)?;
        let scope = self.resolve_scope_for(client, req.scope, resource.as_ref()).map_err(fail)?;
        let challenge = CodeChallenge::from_request(req.code_challenge, req.code_challenge_method).map_err(fail)?;
        if challenge.is_none() && self.requires_pkce(client) {
            return Err(fail(Error::InvalidRequest("code_challenge is required (PKCE, S256)")));
        }
        let dpop_jkt = req.dpop_jkt.map(parse_thumbprint).transpose().map_err(fail)?;
        let oidc = OidcRequest {
            nonce: req.nonce.map(Nonce::parse).transpose().map_err(fail)?,
            prompt: req.prompt.map(Prompt::parse).transpose().map_err(fail)?,
            max_age: req.max_age.map(MaxAge::parse).transpose().map_err(fail)?,
            login_hint: req.login_hint.map(Hint::parse).transpose().map_err(fail)?,
            ui_locales: req.ui_locales.map(Hint::parse).transpose().map_err(fail)?,
        };
        Ok(SessionRequest {
            // The registry's spelling, not the request's: an OCL client may be
            // named in any case, and its code and tokens carry the OCL's name.
            client_id: client.id().clone(),
            redirect_uri: redirect,
            scope,
            state,
            code_challenge: challenge,
            browser_binding: None,
            resource,
            dpop_jkt,
            oidc,
            opened_from: None,
            device: None,
        })
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
