//! The device authorization grant (RFC 8628): the device's request, the
//! user's page, and the device's polls at the token endpoint.
//!
//! The device asks at `/device_authorization` ([`Authority::device_authorization`])
//! and gets a device code and a user code. The user types the user code on
//! the server's page; [`Authority::open_device_session`] opens an
//! authorization session for the request, and from there it is the code
//! flow's own way ([`Authority::proceed`], login, consent page), except that
//! the decision goes to the device request instead of a client redirect
//! (see [`crate::device`] for the state machine and its rules). Meanwhile the
//! device polls `/token` ([`Authority::token`] with the device-code grant):
//! `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
//! then, once, the tokens.

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::authority::Authority;
use crate::client::Client;
use crate::device::{
    DEVICE_CODE, DEVICE_USER_CODE, DeviceRequest, DeviceState, Pace, indexed_device, user_code_key, user_code_record,
};
use crate::error::{Error, ErrorCode, Result};
use crate::session::{AuthorizationSession, DeviceLink, OidcRequest, SessionRequest};
use crate::throttle::Counted;
use crate::types::{
    DpopVerified, GrantType, Hint, Prompt, RedirectUriMatched, ResourceUri, Scope, SessionId, TokenHash, UserCode,
};

use super::client_auth::{AuthenticatedClient, ClientAuthMethod};
use super::token::{TokenRequest, TokenResponse, same_resource};

/// How many times a new user code is drawn when the one drawn is live
/// already. With 20^8 codes, eight collisions in a row mean the randomness
/// is broken, not that the server is busy.
const USER_CODE_DRAWS: usize = 8;

/// How many lost compare-and-swaps a poll or a decision retries: concurrent
/// polls of one device code each rewrite its bookkeeping.
const RACE_RETRIES: usize = 8;

/// The body parameters of `POST /device_authorization`, as sent (client
/// credentials apart).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceAuthorizationRequest<'a> {
    /// `client_id`, which must be the authenticated client's when sent.
    pub client_id: Option<&'a str>,
    /// `scope`, as at `/authorize`.
    pub scope: Option<&'a str>,
    /// `resource` (RFC 8707), as at `/authorize`.
    pub resource: Option<&'a str>,
}

/// The answer to a device authorization request (RFC 8628 3.2). The front
/// end decides its JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// The device code: 256 bits from the CSPRNG; the store keeps its SHA-256.
    pub device_code: String,
    /// The user code, shown as `XXXX-XXXX`.
    pub user_code: UserCode,
    /// `{issuer}/device`.
    pub verification_uri: String,
    /// `{issuer}/device?user_code=XXXX-XXXX`.
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds the device waits between polls.
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The device code is a bearer secret for the tokens.
        f.debug_struct("DeviceAuthorization")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A device authorization request of `client` (RFC 8628 3.1): the grant
    /// must be on for the server and the client (else
    /// `unauthorized_client`), `resource` and `scope` are checked as at
    /// `/authorize`. Stores the request under the device code's hash, and
    /// the user code's index; a user code live already is drawn again.
    ///
    /// A public client's request, which nothing authenticates, counts as
    /// pending for `peer` (with its sessions and pushed requests, up to
    /// `max_pending_per_ip` together) until the user decides it or it
    /// expires; past the cap it is refused with [`Error::TooManyPending`]
    /// (`temporarily_unavailable`, 429 with `Retry-After`).
    pub async fn device_authorization(
        &self,
        authenticated: &AuthenticatedClient,
        req: &DeviceAuthorizationRequest<'_>,
        peer: Option<IpAddr>,
    ) -> Result<DeviceAuthorization> {
        let client = authenticated.client();
        if !self.settings.grants.contains(&GrantType::DeviceCode) || !client.allows(GrantType::DeviceCode) {
            return Err(Error::UnauthorizedClient("the client may not use the device authorization grant"));
        }
        if req.client_id.is_some_and(|id| id != client.id().as_str()) {
            return Err(Error::InvalidRequest("client_id is not the authenticated client"));
        }
        let resource = self.resolve_resource(client, req.resource)?;
        let scope = self.resolve_scope_for(client, req.scope, resource.as_ref())?;
        let now = self.now();
        let ttl = self.settings.device_code_ttl;
        let expires_at = now + ttl;
        // A public client's request is unauthenticated: it counts as pending
        // for its peer address until decided or expired, before anything is
        // stored, so that no address can fill the store with them.
        let counted = match (authenticated.method(), peer) {
            (ClientAuthMethod::None, Some(peer)) => {
                self.pending_count(peer, expires_at).await?;
                Some((peer, expires_at))
            }
            _ => None,
        };
        let stored = self.store_device_request(client, (scope, resource), expires_at, counted, now).await;
        if let (Err(_), Some((peer, until))) = (&stored, counted) {
            self.pending_done(peer, until).await;
        }
        let (device_code, user_code) = stored?;
        let verification_uri = self.device_page();
        let verification_uri_complete = format!("{verification_uri}?user_code={user_code}");
        Ok(DeviceAuthorization {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: ttl.whole_seconds(),
            interval: self.settings.device_interval.whole_seconds(),
        })
    }

    /// Stores a new pending device request of `client` for `scope` and
    /// `resource` (its user code's index first), counted against `counted`'s
    /// address if it was; answers its device code and user code.
    async fn store_device_request(
        &self,
        client: &Client,
        (scope, resource): (Scope, Option<ResourceUri>),
        expires_at: OffsetDateTime,
        counted: Option<(IpAddr, OffsetDateTime)>,
        now: OffsetDateTime,
    ) -> Result<(String, UserCode)> {
        let (device_code, key) = self.opaque_secret()?;
        let user_code = self.claim_user_code(&key, expires_at, now).await?;
        let mut request = DeviceRequest::new(
            client.id().clone(),
            (scope, resource),
            user_code.clone(),
            expires_at,
            self.settings.device_interval,
        );
        if let Some((peer, until)) = counted {
            request = request.counted_from(peer, until);
        }
        if !self.services.store.insert_record(&request.to_record(key, self.settings.device_code_ttl)?, now).await? {
            return Err(Error::Internal("a fresh device code was already taken".into()));
        }
        Ok((device_code, user_code))
    }

    /// Draws a user code that no live request has, and stores its index
    /// record naming the device request `key`: the store's refusal of a live
    /// duplicate key makes the code unique, whatever other nodes draw.
    async fn claim_user_code(
        &self,
        key: &TokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<UserCode> {
        for _ in 0..USER_CODE_DRAWS {
            let mut random = [0u8; 32];
            self.services.secrets.fill(&mut random)?;
            let Some(code) = UserCode::from_random_bytes(&random) else { continue };
            if self.services.store.insert_record(&user_code_record(&code, key, expires_at), now).await? {
                return Ok(code);
            }
        }
        Err(Error::Internal("no free user code in eight draws: the randomness is broken".into()))
    }

    /// The user page's URL, `{issuer}/device` (RFC 8628 `verification_uri`).
    pub(crate) fn device_page(&self) -> String {
        format!("{}/device", self.settings.issuer.trim_end_matches('/'))
    }

    /// The live, undecided device request whose user code is `typed` (matched
    /// ignoring case, spaces and dashes), with its key.
    pub async fn pending_device(&self, typed: &str) -> Result<Option<(TokenHash, DeviceRequest)>> {
        let Ok(code) = UserCode::parse(typed) else { return Ok(None) };
        let now = self.now();
        let store = &self.services.store;
        let Some(index) = store.record(DEVICE_USER_CODE, &user_code_key(&code), now).await? else {
            return Ok(None);
        };
        let key = indexed_device(&index)?;
        let Some(record) = store.record(DEVICE_CODE, &key, now).await? else { return Ok(None) };
        let device = DeviceRequest::from_record(&record)?;
        let live = device.state() == &DeviceState::Pending && now < device.expires_at() && device.user_code() == &code;
        Ok(live.then_some((key, device)))
    }

    /// The user page's step: the user typed `typed` in a browser whose CSRF
    /// cookie hashes to `browser_binding`. A live, undecided request's user
    /// code opens an authorization session for it (then
    /// [`Authority::proceed`] shows the login or the consent page); anything
    /// else is [`Error::InvalidGrant`] and counts as a failure against the
    /// peer address, past whose limit every attempt from it is
    /// [`Error::Throttled`], a right code included. The session opened counts
    /// against the peer address's `max_pending_per_ip` like one from
    /// `/authorize` ([`Error::TooManyPending`] past it) until someone logs in
    /// to it or it expires. `fresh_login` asks for
    /// the login page even with a browser session (the consent page's
    /// "not you?" link).
    pub async fn open_device_session(
        &self,
        typed: &str,
        browser_binding: TokenHash,
        peer: Option<IpAddr>,
        fresh_login: bool,
        ui_locales: Option<&str>,
    ) -> Result<(AuthorizationSession, Arc<Client>)> {
        // A user code names no account: the attempt counts against the peer
        // address only, admitted before the lookup like a password check.
        let attempt = self.throttle_count(Counted::AddressOnly, peer, ErrorCode::InvalidGrant).await?;
        let (key, device) = match self.pending_device(typed).await {
            Ok(Some(found)) => {
                self.throttle_release(attempt);
                found
            }
            Ok(None) => {
                self.throttle_failed(attempt).await?;
                return Err(Error::InvalidGrant("the user code is unknown, used or expired"));
            }
            Err(e) => {
                self.throttle_release(attempt);
                return Err(e);
            }
        };
        let client = self.services.clients.client(device.client_id()).await?.ok_or(Error::UnknownClient)?;
        let now = self.now();
        let oidc = OidcRequest {
            prompt: fresh_login.then_some(Prompt { login: true, ..Prompt::default() }),
            ui_locales: ui_locales.and_then(|u| Hint::parse(u).ok()),
            ..OidcRequest::default()
        };
        let request = SessionRequest {
            client_id: device.client_id().clone(),
            redirect_uri: RedirectUriMatched::own_page(self.device_page()),
            scope: device.scope().clone(),
            state: None,
            code_challenge: None,
            browser_binding: Some(browser_binding),
            resource: device.resource().cloned(),
            dpop_jkt: None,
            oidc,
            opened_from: peer,
            device: Some(DeviceLink { code: key, user_code: device.user_code().clone() }),
        };
        let ttl = self.settings.session_ttl.min(device.expires_at() - now);
        let session = AuthorizationSession::new(SessionId::from_random_bytes(self.random_16()?), request, now, ttl);
        // Like any session from `/authorize`, it is pending (nobody has
        // logged in to it) and counts against the address that opened it
        // until a login settles it or its lifetime ends.
        if let Some(peer) = peer {
            self.pending_count(peer, session.expires_at()).await?;
        }
        if let Err(e) = self.services.store.insert_session(&session).await {
            self.pending_settled(&session).await;
            return Err(e.into());
        }
        Ok((session, client))
    }

    /// Hands the decision of `session` (a device request's session, now
    /// `Approved` or `Denied`) to its device request, and answers the page
    /// the browser goes to: `{issuer}/device/done?result=approved|denied`.
    /// A request decided before, or expired, refuses the decision.
    pub(crate) async fn conclude_device(&self, session: &AuthorizationSession) -> Result<String> {
        let key = session.device_code().ok_or(Error::Internal("not a device request's session".into()))?;
        let store = &self.services.store;
        let ttl = self.settings.device_code_ttl;
        for _ in 0..RACE_RETRIES {
            let now = self.now();
            let Some(record) = store.record(DEVICE_CODE, key, now).await? else {
                return Err(Error::SessionExpired);
            };
            let decided = DeviceRequest::from_record(&record)?.decided_by(key, session, now)?;
            let approved = matches!(decided.state(), DeviceState::Approved { .. });
            if store.replace_record(&record, &decided.to_record(*key, ttl)?).await? {
                // Decided: no longer pending for the address that asked.
                if let Some((peer, until)) = decided.opened_from() {
                    self.pending_done(peer, until).await;
                }
                let result = if approved { "approved" } else { "denied" };
                return Ok(format!("{}/done?result={result}", self.device_page()));
            }
            // A poll rewrote the bookkeeping meanwhile; read again.
        }
        Err(Error::Internal("deciding a device request lost eight races in a row".into()))
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628
    /// 3.4, 3.5): one poll of `client` with its device code.
    ///
    /// Refused as `invalid_grant` when the code is unknown, used, or another
    /// client's (the poll is then not counted against the code). Otherwise the
    /// poll is recorded: one sooner than the interval after the previous
    /// poll is `slow_down` (and the interval grows by 5 s), whatever the
    /// state; then `expired_token` after `expires_in`, `access_denied` after a
    /// deny, `authorization_pending` until the user decides, and on approval
    /// the tokens, to the one poll that takes the request from the store.
    pub(crate) async fn device_code_grant(
        &self,
        authenticated: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        dpop: Option<&DpopVerified>,
    ) -> Result<TokenResponse> {
        let device_code = req.device_code.ok_or(Error::InvalidRequest("device_code is required"))?;
        let key = TokenHash::of(device_code);
        let client = authenticated.client();
        let store = &self.services.store;
        let ttl = self.settings.device_code_ttl;
        let unknown = Error::InvalidGrant("unknown or used device code");
        for _ in 0..RACE_RETRIES {
            let now = self.now();
            let Some(record) = store.record(DEVICE_CODE, &key, now).await? else { return Err(unknown) };
            let device = DeviceRequest::from_record(&record)?;
            if device.client_id() != client.id() {
                return Err(Error::InvalidGrant("the device code was issued to another client"));
            }
            if now >= device.expires_at() {
                return Err(Error::ExpiredToken);
            }
            let (polled, pace) = device.polled(now);
            let waiting = matches!(device.state(), DeviceState::Pending);
            if pace == Pace::TooSoon || waiting {
                if !store.replace_record(&record, &polled.to_record(key, ttl)?).await? {
                    continue; // Another poll came in between: judge this one after it.
                }
                return Err(if pace == Pace::TooSoon { Error::SlowDown } else { Error::AuthorizationPending });
            }
            if device.state() == &DeviceState::Denied {
                return Err(Error::AccessDenied("the user denied the request"));
            }
            // Approved, and on time: the one poll that takes the record gets
            // the tokens.
            let Some(taken) = store.take_record(DEVICE_CODE, &key, now).await? else { return Err(unknown) };
            let taken = DeviceRequest::from_record(&taken)?;
            let DeviceState::Approved { account, scope, authentication } = taken.state().clone() else {
                return Err(Error::Internal("an approved device request changed its decision".into()));
            };
            same_resource(req.resource, taken.resource())?;
            self.active_account(account).await?;
            let grant_id = self.new_grant_id()?;
            let expires_at = self.grant_retention(self.issues_refresh_tokens(client), now);
            let grant = self.new_grant(
                client,
                grant_id,
                account,
                (scope, taken.resource().cloned()),
                Some(authentication),
                expires_at,
                now,
            );
            return self.issue_for_account(authenticated, grant, dpop, None, now).await;
        }
        // Polls of one code racing each other this hard are too fast.
        Err(Error::SlowDown)
    }
}
