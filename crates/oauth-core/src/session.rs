//! The authorization session and its state machine.
//!
//! ```text
//! Requested -> Authenticated -> ResourceChecked -> Approved -> CodeIssued -> Exchanged
//!     \______________\_______________\----> Denied          (any live state) -> Expired
//! ```
//!
//! Single sign-on adds no state, only two more ways along the same edges:
//! `Requested -> Authenticated` by a live browser session ([`resume`], which
//! takes the [`LiveBrowserSession`] the store lookup found) besides a login
//! ([`authenticate`]); and `ResourceChecked -> Approved` by a remembered or
//! skipped consent ([`approve_remembered`], which takes the [`ConsentGiven`]
//! its check made) besides the consent page ([`approve`]).
//!
//! [`resume`]: AuthorizationSession::resume
//! [`authenticate`]: AuthorizationSession::authenticate
//! [`approve_remembered`]: AuthorizationSession::approve_remembered
//! [`approve`]: AuthorizationSession::approve
//!
//! The device grant (RFC 8628) adds no state either: a session opened for a
//! device request ([`AuthorizationSession::device_user_code`]) walks the same
//! edges to `Approved` or `Denied` and stops there. It never issues a code
//! (its decision goes to the device request, [`crate::device`]), and never
//! takes the remembered-consent edge: the user approves on the consent page,
//! which shows the user code to compare with the device's.
//!
//! Each transition is a method that takes the session as it is and returns the
//! next one, or an error. An illegal transition is an error, never a silent
//! no-op: no second approval, no second code, no exchange of a denied session.
//! A session that has not produced a code within its lifetime (600 s by
//! default) refuses every step but [`AuthorizationSession::expire`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::sso::{ConsentGiven, LiveBrowserSession};
use crate::store::CodeRedemption;
use crate::types::{
    AccountId, ClientId, CodeChallenge, GrantId, Hint, MaxAge, Nonce, Prompt, RedirectUriMatched, ResourceUri, Scope,
    SessionId, Sid, State, TokenHash, UserCode,
};

/// Where a session is in the flow. The account and scope travel with the states
/// that have them, so a state cannot exist without its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SessionState {
    /// The authorization request was validated; nobody has logged in yet.
    Requested,
    /// The user logged in as `account`.
    Authenticated {
        /// Who logged in.
        account: AccountId,
    },
    /// The resource availability check allowed `scope` (possibly narrower than
    /// requested).
    ResourceChecked {
        /// Who logged in.
        account: AccountId,
        /// The scope the check allowed.
        scope: Scope,
    },
    /// The user approved on the consent page.
    Approved {
        /// Who approved.
        account: AccountId,
        /// The scope approved.
        scope: Scope,
    },
    /// A code was issued; the store keeps only its hash.
    CodeIssued {
        /// Who approved.
        account: AccountId,
        /// The scope approved.
        scope: Scope,
        /// SHA-256 of the code.
        code: TokenHash,
    },
    /// The code was redeemed once, creating `grant`. A second redemption revokes
    /// that grant.
    Exchanged {
        /// Who approved.
        account: AccountId,
        /// The scope approved.
        scope: Scope,
        /// SHA-256 of the code, so a replay can be recognised.
        code: TokenHash,
        /// The grant the exchange created.
        grant: GrantId,
        /// Set by a second redemption. The exchange that created `grant` checks
        /// it after storing the grant, so a replay that came before the grant
        /// existed still revokes it.
        replayed: bool,
    },
    /// The user or the resource check refused. An end.
    Denied,
    /// The session ran out of time. An end.
    Expired,
}

impl SessionState {
    /// The state's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Requested => "Requested",
            SessionState::Authenticated { .. } => "Authenticated",
            SessionState::ResourceChecked { .. } => "ResourceChecked",
            SessionState::Approved { .. } => "Approved",
            SessionState::CodeIssued { .. } => "CodeIssued",
            SessionState::Exchanged { .. } => "Exchanged",
            SessionState::Denied => "Denied",
            SessionState::Expired => "Expired",
        }
    }

    /// The account, once someone has logged in.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            SessionState::Authenticated { account }
            | SessionState::ResourceChecked { account, .. }
            | SessionState::Approved { account, .. }
            | SessionState::CodeIssued { account, .. }
            | SessionState::Exchanged { account, .. } => Some(*account),
            _ => None,
        }
    }
}

/// How and when the user proved who they are, for the ID token: kept with
/// the authorization session from its authentication on, and with the grant
/// its code creates (so a refresh's ID token repeats it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// When the user entered their password: now for a login, the browser
    /// session's login time for single sign-on (`auth_time`).
    #[serde(with = "time::serde::timestamp")]
    pub auth_time: OffsetDateTime,
    /// The browser session the login started or resumed (`sid`); `None` when
    /// no browser session is involved (an embedder's own login call).
    pub sid: Option<Sid>,
}

/// The OpenID Connect parameters of a request; all absent for plain OAuth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OidcRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<Nonce>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age: Option<MaxAge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) login_hint: Option<Hint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ui_locales: Option<Hint>,
}

/// What ties a session to a device request (RFC 8628): the device code's
/// hash, the key of the request's record, and the user code the consent
/// page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceLink {
    pub(crate) code: TokenHash,
    pub(crate) user_code: UserCode,
}

/// A validated authorization request, ready to become a session. Only the
/// authorization-request flow builds one (see [`crate::Authority::authorize`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRequest {
    pub(crate) client_id: ClientId,
    pub(crate) redirect_uri: RedirectUriMatched,
    pub(crate) scope: Scope,
    pub(crate) state: Option<State>,
    pub(crate) code_challenge: Option<CodeChallenge>,
    pub(crate) browser_binding: Option<TokenHash>,
    /// The resource (RFC 8707) the tokens are for; sessions stored before
    /// resources existed have none.
    #[serde(default)]
    pub(crate) resource: Option<ResourceUri>,
    /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 10), from the
    /// request or from the proof of a pushed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_jkt: Option<String>,
    /// Absent in sessions stored before OpenID Connect.
    #[serde(default)]
    pub(crate) oidc: OidcRequest,
    /// The peer address that opened the session, while it counts against that
    /// address's cap of pending sessions. Absent in sessions stored before
    /// the cap existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) opened_from: Option<IpAddr>,
    /// Set when the session was opened from the user page of a device
    /// request; `redirect_uri` is then the server's own `/device` page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<DeviceLink>,
}

/// A pushed authorization request (RFC 9126) as stored under its
/// `request_uri`: the validated request, and for a public client's push the
/// address it counts as pending for and the instant its entry there expires.
/// Flattened, so that requests pushed before the count (the bare request)
/// read as uncounted, and a build before it reads these.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredPush {
    #[serde(flatten)]
    pub(crate) request: SessionRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pushed_from: Option<(IpAddr, OffsetDateTime)>,
}

/// One user's way through `/authorize`, from the request to the code exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationSession {
    id: SessionId,
    request: SessionRequest,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    state: SessionState,
    /// Set by the transitions into `Authenticated`, and only by them: `Some`
    /// exactly when the state names an account (absent in sessions stored
    /// before OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authentication: Option<Authentication>,
}

impl AuthorizationSession {
    pub(crate) fn new(id: SessionId, request: SessionRequest, now: OffsetDateTime, ttl: time::Duration) -> Self {
        AuthorizationSession {
            id,
            request,
            created_at: now,
            expires_at: now + ttl,
            state: SessionState::Requested,
            authentication: None,
        }
    }

    /// The session handle.
    pub fn id(&self) -> SessionId {
        self.id
    }
    /// The client that asked.
    pub fn client_id(&self) -> &ClientId {
        &self.request.client_id
    }
    /// The redirect URI exactly as requested, with the proof that it matched
    /// the client's policy.
    pub fn redirect_uri(&self) -> &RedirectUriMatched {
        &self.request.redirect_uri
    }
    /// The scope as requested (or the client's default).
    pub fn requested_scope(&self) -> &Scope {
        &self.request.scope
    }
    /// The client's `state`, echoed in the response.
    pub fn client_state(&self) -> Option<&State> {
        self.request.state.as_ref()
    }
    /// The PKCE challenge, if one was sent.
    pub fn code_challenge(&self) -> Option<&CodeChallenge> {
        self.request.code_challenge.as_ref()
    }
    /// The resource (RFC 8707) the request named, which the tokens are for.
    pub fn resource(&self) -> Option<&ResourceUri> {
        self.request.resource.as_ref()
    }

    /// The thumbprint of the DPoP key the code is bound to: the token request
    /// must carry a proof signed by that key.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.request.dpop_jkt.as_deref()
    }
    /// The user code of the device request this session decides, when it was
    /// opened from the device page (RFC 8628); the consent page shows it.
    pub fn device_user_code(&self) -> Option<&UserCode> {
        self.request.device.as_ref().map(|d| &d.user_code)
    }
    /// The hash of the device code of the request this session decides.
    pub(crate) fn device_code(&self) -> Option<&TokenHash> {
        self.request.device.as_ref().map(|d| &d.code)
    }
    /// The hash of the browser cookie this session is bound to (CSRF defence).
    pub fn browser_binding(&self) -> Option<&TokenHash> {
        self.request.browser_binding.as_ref()
    }
    /// The `nonce` to put in the ID token.
    pub fn nonce(&self) -> Option<&Nonce> {
        self.request.oidc.nonce.as_ref()
    }
    /// The request's `prompt` (empty when it had none).
    pub fn prompt(&self) -> Prompt {
        self.request.oidc.prompt.unwrap_or_default()
    }
    /// The request's `max_age`.
    pub fn max_age(&self) -> Option<MaxAge> {
        self.request.oidc.max_age
    }
    /// The request's `login_hint`, for the username field.
    pub fn login_hint(&self) -> Option<&Hint> {
        self.request.oidc.login_hint.as_ref()
    }
    /// The request's `ui_locales`, the user's preferred languages.
    pub fn ui_locales(&self) -> Option<&Hint> {
        self.request.oidc.ui_locales.as_ref()
    }
    /// How and when the user was authenticated, once they were.
    pub fn authentication(&self) -> Option<&Authentication> {
        self.authentication.as_ref()
    }
    /// The query of an authorization request equal to this one but with
    /// `prompt`: what the consent page's "not you?" link asks, with
    /// `prompt=login`, to sign in as someone else.
    pub fn request_query(&self, prompt: Prompt) -> String {
        let r = &self.request;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code");
        q.append_pair("client_id", r.client_id.as_str());
        q.append_pair("redirect_uri", r.redirect_uri.as_str());
        q.append_pair("scope", &r.scope.to_string());
        if let Some(s) = &r.state {
            q.append_pair("state", s.as_str());
        }
        if let Some(c) = &r.code_challenge {
            q.append_pair("code_challenge", c.as_str());
            q.append_pair("code_challenge_method", "S256");
        }
        if let Some(n) = &r.oidc.nonce {
            q.append_pair("nonce", n.as_str());
        }
        if let Some(u) = &r.oidc.ui_locales {
            q.append_pair("ui_locales", u.as_str());
        }
        q.append_pair("prompt", &prompt.as_param());
        q.finish()
    }
    /// The peer address that opened the session, when the caller gave one.
    pub fn opened_from(&self) -> Option<IpAddr> {
        self.request.opened_from
    }
    /// When the session was opened.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    /// When the session (or, once issued, its code) stops being usable; stores
    /// may sweep it after this.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
    /// Where the session is in the flow.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// True when the session has reached an end and takes no more steps.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, SessionState::Exchanged { .. } | SessionState::Denied | SessionState::Expired)
    }

    fn next(&self, to: &'static str, now: OffsetDateTime, state: Option<SessionState>) -> Result<Self> {
        if !self.is_finished() && now >= self.expires_at {
            return Err(Error::SessionExpired);
        }
        match state {
            Some(state) => Ok(AuthorizationSession { state, ..self.clone() }),
            None => Err(Error::IllegalTransition { from: self.state.name(), to }),
        }
    }

    /// `Requested -> Authenticated`: the user proved to be `account`, as
    /// `authentication` says (a login now).
    pub fn authenticate(
        &self,
        account: AccountId,
        authentication: Authentication,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let next = matches!(self.state, SessionState::Requested).then_some(SessionState::Authenticated { account });
        let mut authenticated = self.next("Authenticated", now, next)?;
        authenticated.authentication = Some(authentication);
        Ok(authenticated)
    }

    /// `Requested -> Authenticated` by single sign-on: `browser` is a live
    /// browser session of this issuer, so its account is authenticated as of
    /// its login. A `max_age` the login is older than, `prompt=login` and
    /// `max_age=0` refuse this path: they ask for a fresh login.
    pub fn resume(&self, browser: &LiveBrowserSession, now: OffsetDateTime) -> Result<Self> {
        if !self.accepts_login_from(browser.auth_time(), now) {
            return Err(Error::IllegalTransition { from: self.state.name(), to: "Authenticated(session)" });
        }
        let authentication = Authentication { auth_time: browser.auth_time(), sid: Some(browser.sid()) };
        self.authenticate(browser.account(), authentication, now)
    }

    /// Whether a login made at `auth_time` satisfies this request: not with
    /// `prompt=login`, and within `max_age` (so never with `max_age=0`).
    pub fn accepts_login_from(&self, auth_time: OffsetDateTime, now: OffsetDateTime) -> bool {
        let fresh_asked = self.prompt().login || self.max_age().is_some_and(|m| m.seconds() == 0);
        !fresh_asked && self.max_age().is_none_or(|m| now - auth_time <= m.duration())
    }

    /// `Authenticated -> ResourceChecked`: the availability check allowed `scope`,
    /// which must lie within the requested scope (the check may narrow, never
    /// widen).
    pub fn resource_checked(&self, scope: Scope, now: OffsetDateTime) -> Result<Self> {
        if !scope.is_subset(&self.request.scope) {
            return Err(Error::InvalidScope("the resource check widened the scope"));
        }
        let next = match self.state {
            SessionState::Authenticated { account } => Some(SessionState::ResourceChecked { account, scope }),
            _ => None,
        };
        self.next("ResourceChecked", now, next)
    }

    /// `ResourceChecked -> Approved`: the user approved on the consent page.
    pub fn approve(&self, now: OffsetDateTime) -> Result<Self> {
        let next = match &self.state {
            SessionState::ResourceChecked { account, scope } => {
                Some(SessionState::Approved { account: *account, scope: scope.clone() })
            }
            _ => None,
        };
        self.next("Approved", now, next)
    }

    /// `ResourceChecked -> Approved` without the consent page: `given` says
    /// that this account consented to this client before for a scope that
    /// covers the checked one, or that the client needs no consent. Refused
    /// for another account, client or a wider scope, when the request says
    /// `prompt=consent`, and for a device request, whose user must see the
    /// user code on the consent page.
    pub fn approve_remembered(&self, given: &ConsentGiven, now: OffsetDateTime) -> Result<Self> {
        let next = match &self.state {
            SessionState::ResourceChecked { account, scope }
                if !self.prompt().consent
                    && self.request.device.is_none()
                    && given.covers(*account, &self.request.client_id, scope) =>
            {
                Some(SessionState::Approved { account: *account, scope: scope.clone() })
            }
            _ => None,
        };
        self.next("Approved(remembered)", now, next)
    }

    /// `Approved -> CodeIssued`: a code (given as its hash) was minted; it is
    /// redeemable until `code_expires_at`, which becomes the session's expiry.
    /// Never for a device request: its approval goes to the device.
    pub fn issue_code(&self, code: TokenHash, code_expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<Self> {
        let next = match &self.state {
            SessionState::Approved { account, scope } if self.request.device.is_none() => {
                Some(SessionState::CodeIssued { account: *account, scope: scope.clone(), code })
            }
            _ => None,
        };
        let mut issued = self.next("CodeIssued", now, next)?;
        issued.expires_at = code_expires_at;
        Ok(issued)
    }

    /// `CodeIssued -> Exchanged`: the code `code` was redeemed, creating `grant`.
    /// The record is kept until `retain_until` so that a replay can still revoke
    /// the grant.
    pub fn exchange(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let next = match &self.state {
            SessionState::CodeIssued { account, scope, code: issued } if issued == code => {
                Some(SessionState::Exchanged {
                    account: *account,
                    scope: scope.clone(),
                    code: *code,
                    grant,
                    replayed: false,
                })
            }
            _ => None,
        };
        let mut exchanged = self.next("Exchanged", now, next)?;
        exchanged.expires_at = retain_until;
        Ok(exchanged)
    }

    /// `Exchanged -> Exchanged { replayed: true }`: the code was presented again.
    /// Legal until the record's retention ends, whatever the time of day for the
    /// code itself; marking twice is allowed.
    pub fn mark_replayed(&self, now: OffsetDateTime) -> Result<Self> {
        match &self.state {
            SessionState::Exchanged { account, scope, code, grant, .. } if now < self.expires_at => {
                let state = SessionState::Exchanged {
                    account: *account,
                    scope: scope.clone(),
                    code: *code,
                    grant: *grant,
                    replayed: true,
                };
                Ok(AuthorizationSession { state, ..self.clone() })
            }
            _ => Err(Error::IllegalTransition { from: self.state.name(), to: "Exchanged(replayed)" }),
        }
    }

    /// What presenting `code` to this session (found by that code) does at
    /// `now`, for a store's [`Store::take_code`](crate::Store::take_code):
    /// the session to put in its place, if any, and the outcome. A live
    /// `CodeIssued` session is exchanged for `grant`; an `Exchanged` one is
    /// marked replayed (once) and names its grant; anything else, or an
    /// expired session, is `NotFound`. The store's compare-and-swap of the
    /// returned session decides races.
    pub fn redeem(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> (Option<Self>, CodeRedemption) {
        if now >= self.expires_at {
            return (None, CodeRedemption::NotFound);
        }
        match &self.state {
            SessionState::Exchanged { code: c, grant, replayed, .. } if c == code => {
                let next = if *replayed { None } else { self.mark_replayed(now).ok() };
                (next, CodeRedemption::Replayed(*grant))
            }
            SessionState::CodeIssued { .. } => match self.exchange(code, grant, retain_until, now) {
                Ok(next) => (Some(next), CodeRedemption::Redeemed(Box::new(self.clone()))),
                Err(_) => (None, CodeRedemption::NotFound),
            },
            _ => (None, CodeRedemption::NotFound),
        }
    }

    /// True when the code was presented again after its exchange.
    pub fn is_replayed(&self) -> bool {
        matches!(self.state, SessionState::Exchanged { replayed: true, .. })
    }

    /// `Requested | Authenticated | ResourceChecked -> Denied`: the user or the
    /// resource check refused.
    pub fn deny(&self, now: OffsetDateTime) -> Result<Self> {
        let next = matches!(
            self.state,
            SessionState::Requested | SessionState::Authenticated { .. } | SessionState::ResourceChecked { .. }
        )
        .then_some(SessionState::Denied);
        self.next("Denied", now, next)
    }

    /// `any live state -> Expired`. Legal only once the session's time is up.
    pub fn expire(&self, now: OffsetDateTime) -> Result<Self> {
        if self.is_finished() || now < self.expires_at {
            return Err(Error::IllegalTransition { from: self.state.name(), to: "Expired" });
        }
        Ok(AuthorizationSession { state: SessionState::Expired, ..self.clone() })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::{RedirectPolicy, RedirectUri};
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn account() -> AccountId {
        AccountId::from_random_bytes([1; 16])
    }
    fn code() -> TokenHash {
        TokenHash::of("code")
    }
    fn grant() -> GrantId {
        GrantId::from_random_bytes([2; 16])
    }
    fn login() -> Authentication {
        Authentication { auth_time: T0, sid: None }
    }

    /// A browser session of `account()` logged in at `auth_time`.
    fn browser(auth_time: OffsetDateTime) -> LiveBrowserSession {
        let record = LiveBrowserSession::new_record(
            "https://as.example",
            TokenHash::of("cookie"),
            account(),
            Sid::from_random_bytes([4; 16]),
            auth_time,
            Duration::hours(10),
            Duration::minutes(30),
        )
        .unwrap();
        LiveBrowserSession::from_record(record, "https://as.example").unwrap().unwrap()
    }

    fn with_oidc(oidc: OidcRequest) -> AuthorizationSession {
        let mut s = requested();
        s.request.oidc = oidc;
        s
    }

    pub(crate) fn requested() -> AuthorizationSession {
        let request = SessionRequest {
            client_id: ClientId::parse("app").unwrap(),
            redirect_uri: RedirectPolicy::Registered(vec![RedirectUri::parse("https://app.example/cb").unwrap()])
                .check("https://app.example/cb")
                .unwrap(),
            scope: Scope::parse("read write").unwrap(),
            state: Some(State::parse("xyz").unwrap()),
            code_challenge: None,
            browser_binding: None,
            resource: None,
            dpop_jkt: None,
            oidc: OidcRequest::default(),
            opened_from: None,
            device: None,
        };
        AuthorizationSession::new(SessionId::from_random_bytes([3; 16]), request, T0, Duration::seconds(600))
    }

    /// A session opened from the device page for the request whose device
    /// code hashes to `code`.
    pub(crate) fn device_session(code: TokenHash) -> AuthorizationSession {
        let mut s = requested();
        s.request.redirect_uri = RedirectUriMatched::own_page("https://as.example/device".into());
        s.request.state = None;
        s.request.device = Some(DeviceLink { code, user_code: UserCode::parse("BCDF-GHJK").unwrap() });
        s
    }

    fn checked() -> AuthorizationSession {
        requested()
            .authenticate(account(), login(), T0)
            .unwrap()
            .resource_checked(Scope::parse("read").unwrap(), T0)
            .unwrap()
    }

    fn issued() -> AuthorizationSession {
        checked().approve(T0).unwrap().issue_code(code(), T0 + Duration::seconds(60), T0).unwrap()
    }

    fn illegal(r: Result<AuthorizationSession>) -> bool {
        matches!(r, Err(Error::IllegalTransition { .. }))
    }

    #[test]
    fn a_push_stored_before_the_pending_count_reads_as_uncounted_and_a_counted_one_round_trips() {
        let request = requested().request;
        let bare = serde_json::to_vec(&request).unwrap();
        let old: StoredPush = serde_json::from_slice(&bare).unwrap();
        assert_eq!((old.request, old.pushed_from), (request.clone(), None));
        let at = T0 + Duration::nanoseconds(60_000_000_123);
        let counted = StoredPush { request: request.clone(), pushed_from: Some(("192.0.2.1".parse().unwrap(), at)) };
        let read: StoredPush = serde_json::from_slice(&serde_json::to_vec(&counted).unwrap()).unwrap();
        assert_eq!(read.pushed_from, counted.pushed_from, "the expiry to the nanosecond, to take the entry back");
        let older_build: SessionRequest = serde_json::from_slice(&serde_json::to_vec(&counted).unwrap()).unwrap();
        assert_eq!(older_build, request, "a build before the count reads the request");
    }

    #[test]
    fn happy_path_walks_every_state() {
        let s = issued();
        assert!(matches!(s.state(), SessionState::CodeIssued { .. }));
        assert_eq!(s.expires_at(), T0 + Duration::seconds(60));
        let e = s.exchange(&code(), grant(), T0 + Duration::days(1), T0).unwrap();
        assert!(matches!(e.state(), SessionState::Exchanged { grant: g, .. } if *g == grant()));
        assert_eq!(e.state().account(), Some(account()));
        assert!(e.is_finished());
    }

    #[test]
    fn authenticate_only_from_requested() {
        let s = requested().authenticate(account(), login(), T0).unwrap();
        assert!(illegal(s.authenticate(account(), login(), T0)));
        assert!(illegal(issued().authenticate(account(), login(), T0)));
    }

    #[test]
    fn resource_check_only_after_authentication() {
        assert!(illegal(requested().resource_checked(Scope::parse("read").unwrap(), T0)));
        assert!(illegal(checked().resource_checked(Scope::parse("read").unwrap(), T0)));
    }

    #[test]
    fn resource_check_may_narrow_but_never_widen() {
        let s = requested().authenticate(account(), login(), T0).unwrap();
        assert!(s.resource_checked(Scope::parse("write").unwrap(), T0).is_ok());
        assert!(matches!(s.resource_checked(Scope::parse("admin").unwrap(), T0), Err(Error::InvalidScope(_))));
    }

    #[test]
    fn approval_needs_a_resource_check_and_happens_once() {
        assert!(illegal(requested().authenticate(account(), login(), T0).unwrap().approve(T0)));
        let approved = checked().approve(T0).unwrap();
        assert!(illegal(approved.approve(T0)));
    }

    #[test]
    fn no_second_code() {
        assert!(illegal(issued().issue_code(TokenHash::of("other"), T0 + Duration::seconds(60), T0)));
        assert!(illegal(checked().issue_code(code(), T0 + Duration::seconds(60), T0)));
    }

    #[test]
    fn exchange_needs_the_issued_code_and_happens_once() {
        assert!(illegal(issued().exchange(&TokenHash::of("guess"), grant(), T0, T0)));
        let e = issued().exchange(&code(), grant(), T0 + Duration::days(1), T0).unwrap();
        assert!(illegal(e.exchange(&code(), grant(), T0, T0)));
    }

    #[test]
    fn redeeming_exchanges_once_then_marks_the_replay_once() {
        let retain = T0 + Duration::days(1);
        let (exchanged, outcome) = issued().redeem(&code(), grant(), retain, T0);
        assert_eq!(outcome, CodeRedemption::Redeemed(Box::new(issued())));
        let exchanged = exchanged.unwrap();
        let (marked, outcome) = exchanged.redeem(&code(), grant(), retain, T0);
        assert_eq!(outcome, CodeRedemption::Replayed(grant()));
        let marked = marked.unwrap();
        assert!(marked.is_replayed());
        assert_eq!(marked.redeem(&code(), grant(), retain, T0), (None, CodeRedemption::Replayed(grant())));
        assert_eq!(issued().redeem(&TokenHash::of("guess"), grant(), retain, T0), (None, CodeRedemption::NotFound));
        let late = T0 + Duration::seconds(60);
        assert_eq!(issued().redeem(&code(), grant(), retain, late), (None, CodeRedemption::NotFound), "expired");
    }

    #[test]
    fn only_an_exchanged_session_can_be_marked_replayed() {
        let e = issued().exchange(&code(), grant(), T0 + Duration::days(1), T0).unwrap();
        assert!(!e.is_replayed());
        let r = e.mark_replayed(T0).unwrap();
        assert!(r.is_replayed());
        assert!(r.mark_replayed(T0).unwrap().is_replayed(), "marking twice is allowed");
        assert!(illegal(issued().mark_replayed(T0)));
        assert!(illegal(e.mark_replayed(T0 + Duration::days(1))), "not after the record's retention");
    }

    #[test]
    fn denied_session_cannot_be_approved_or_exchanged() {
        let d = checked().deny(T0).unwrap();
        assert_eq!(d.state(), &SessionState::Denied);
        assert!(illegal(d.approve(T0)));
        assert!(illegal(d.exchange(&code(), grant(), T0, T0)));
        assert!(illegal(d.deny(T0)));
    }

    #[test]
    fn deny_is_legal_before_approval_only() {
        assert!(requested().deny(T0).is_ok());
        assert!(requested().authenticate(account(), login(), T0).unwrap().deny(T0).is_ok());
        assert!(illegal(checked().approve(T0).unwrap().deny(T0)));
        assert!(illegal(issued().deny(T0)));
    }

    #[test]
    fn expired_session_refuses_every_step() {
        let late = T0 + Duration::seconds(600);
        assert_eq!(requested().authenticate(account(), login(), late), Err(Error::SessionExpired));
        assert_eq!(checked().approve(late), Err(Error::SessionExpired));
        let code_late = T0 + Duration::seconds(60);
        assert_eq!(issued().exchange(&code(), grant(), code_late, code_late), Err(Error::SessionExpired));
    }

    #[test]
    fn expire_only_when_time_is_up_and_not_after_an_end() {
        assert!(illegal(requested().expire(T0)));
        let e = requested().expire(T0 + Duration::seconds(600)).unwrap();
        assert_eq!(e.state(), &SessionState::Expired);
        assert!(illegal(e.expire(T0 + Duration::days(1))));
        assert!(illegal(requested().deny(T0).unwrap().expire(T0 + Duration::days(1))));
    }

    #[test]
    fn authentication_is_recorded_by_the_transition_into_authenticated_only() {
        assert_eq!(requested().authentication(), None);
        let when = Authentication { auth_time: T0 - Duration::minutes(5), sid: Some(Sid::from_random_bytes([5; 16])) };
        let s = requested().authenticate(account(), when, T0).unwrap();
        assert_eq!(s.authentication(), Some(&when));
        let issued = s.resource_checked(Scope::parse("read").unwrap(), T0).unwrap().approve(T0).unwrap();
        assert_eq!(issued.authentication(), Some(&when), "it travels with the session to the code");
    }

    #[test]
    fn resume_authenticates_from_a_live_browser_session_as_of_its_login() {
        let b = browser(T0 - Duration::minutes(20));
        let s = requested().resume(&b, T0).unwrap();
        assert_eq!(s.state(), &SessionState::Authenticated { account: account() });
        assert_eq!(s.authentication(), Some(&Authentication { auth_time: b.auth_time(), sid: Some(b.sid()) }));
        assert!(illegal(s.resume(&b, T0)), "only from Requested");
        assert!(illegal(issued().resume(&b, T0)));
    }

    #[test]
    fn resume_is_refused_for_prompt_login_max_age_zero_and_an_older_login_than_max_age() {
        let b = browser(T0 - Duration::minutes(20));
        let login = with_oidc(OidcRequest { prompt: Some(Prompt::parse("login").unwrap()), ..OidcRequest::default() });
        assert!(illegal(login.resume(&b, T0)));
        let zero = with_oidc(OidcRequest { max_age: Some(MaxAge::parse("0").unwrap()), ..OidcRequest::default() });
        assert!(illegal(zero.resume(&browser(T0), T0)), "max_age=0 means prompt=login");
        let ten = with_oidc(OidcRequest { max_age: Some(MaxAge::parse("600").unwrap()), ..OidcRequest::default() });
        assert!(illegal(ten.resume(&b, T0)), "logged in 20 minutes ago, max_age 10 minutes");
        let hour = with_oidc(OidcRequest { max_age: Some(MaxAge::parse("3600").unwrap()), ..OidcRequest::default() });
        assert!(hour.resume(&b, T0).is_ok());
    }

    #[test]
    fn approve_remembered_needs_a_consent_for_this_account_client_and_scope() {
        let app = ClientId::parse("app").unwrap();
        let given = ConsentGiven::remembered(account(), app.clone(), Scope::parse("read write").unwrap());
        let approved = checked().approve_remembered(&given, T0).unwrap();
        assert_eq!(
            approved.state(),
            &SessionState::Approved { account: account(), scope: Scope::parse("read").unwrap() }
        );
        assert!(illegal(approved.approve_remembered(&given, T0)), "once");
        let narrower = ConsentGiven::remembered(account(), app.clone(), Scope::parse("write").unwrap());
        assert!(illegal(checked().approve_remembered(&narrower, T0)), "the consent does not cover read");
        let other =
            ConsentGiven::remembered(AccountId::from_random_bytes([8; 16]), app.clone(), Scope::parse("read").unwrap());
        assert!(illegal(checked().approve_remembered(&other, T0)), "another account's consent");
        let elsewhere =
            ConsentGiven::remembered(account(), ClientId::parse("other").unwrap(), Scope::parse("read").unwrap());
        assert!(illegal(checked().approve_remembered(&elsewhere, T0)), "another client's consent");
        assert!(illegal(requested().authenticate(account(), login(), T0).unwrap().approve_remembered(&given, T0)));
    }

    #[test]
    fn prompt_consent_refuses_the_remembered_path() {
        let app = ClientId::parse("app").unwrap();
        let mut s =
            with_oidc(OidcRequest { prompt: Some(Prompt::parse("consent").unwrap()), ..OidcRequest::default() });
        s = s
            .authenticate(account(), login(), T0)
            .unwrap()
            .resource_checked(Scope::parse("read").unwrap(), T0)
            .unwrap();
        assert!(illegal(s.approve_remembered(&ConsentGiven::not_needed(account(), app), T0)));
        assert!(s.approve(T0).is_ok(), "the consent page still works");
    }

    fn device_checked() -> AuthorizationSession {
        device_session(TokenHash::of("device"))
            .authenticate(account(), login(), T0)
            .unwrap()
            .resource_checked(Scope::parse("read").unwrap(), T0)
            .unwrap()
    }

    #[test]
    fn a_device_session_never_issues_a_code() {
        let approved = device_checked().approve(T0).unwrap();
        assert!(illegal(approved.issue_code(code(), T0 + Duration::seconds(60), T0)));
        assert_eq!(approved.device_user_code().map(|c| c.to_string()).as_deref(), Some("BCDF-GHJK"));
    }

    #[test]
    fn a_device_session_never_skips_the_consent_page() {
        let app = ClientId::parse("app").unwrap();
        let given = ConsentGiven::remembered(account(), app.clone(), Scope::parse("read write").unwrap());
        assert!(illegal(device_checked().approve_remembered(&given, T0)), "a remembered consent");
        assert!(illegal(device_checked().approve_remembered(&ConsentGiven::not_needed(account(), app), T0)), "skip");
        assert!(device_checked().approve(T0).is_ok(), "the consent page does");
    }
}
