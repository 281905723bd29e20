//! [`Authority`]: the settings and services the flows run with.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use crate::Client;
use crate::client::{ClientRegistry, ScopeRule, SecretHash};
use crate::error::{Error, Result};
use crate::flow::NonceCache;
use crate::services::{
    AccessTokenClaims, AccessTokenCodec, Clock, IdTokenAlg, IdTokenCodec, ProofChecker, ResourceCheck, SecretSource,
    SecretVerifier, SecurityEvent, SecurityEvents,
};
use crate::store::Store;
use crate::throttle::{InFlight, ThrottleSettings};
use crate::types::{AccessTokenId, ClientId, GrantId, GrantType, ResourceUri, Scope, TokenHash};

/// Server-wide settings. [`Settings::new`] gives the SPEC defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `iss` of tokens and authorization responses (RFC 9207).
    pub issuer: String,
    /// The `aud` of access tokens.
    pub audience: String,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Idle lifetime of a refresh token; each rotation starts it again.
    pub refresh_token_ttl: Duration,
    /// Absolute lifetime of a refresh-token family.
    pub refresh_token_max_lifetime: Duration,
    /// Lifetime of an authorization code.
    pub authorization_code_ttl: Duration,
    /// How long an authorization session may take to produce a code.
    pub session_ttl: Duration,
    /// Lifetime of an ID token (`[oidc] id_token_ttl`).
    pub id_token_ttl: Duration,
    /// How long a browser session lasts from its login (`[session] lifetime`).
    pub browser_session_lifetime: Duration,
    /// How long a browser session lasts from its last use (`[session]
    /// idle_timeout`).
    pub browser_session_idle: Duration,
    /// How long a remembered consent lasts (`[session] consent_lifetime`).
    pub consent_lifetime: Duration,
    /// The grant types switched on for this server.
    pub grants: BTreeSet<GrantType>,
    /// How long a device code and its user code work (`[device] code_ttl`,
    /// RFC 8628 `expires_in`).
    pub device_code_ttl: Duration,
    /// The least time between a device's polls (`[device] interval`,
    /// RFC 8628 `interval`); a poll sooner than that gets `slow_down`.
    pub device_interval: Duration,
    /// Brute-force limits.
    pub throttle: ThrottleSettings,
    /// The protected resources (RFC 8707) tokens may be asked for, each with
    /// the scopes it understands.
    pub resources: BTreeMap<ResourceUri, Scope>,
    /// Dynamic client registration (RFC 7591); off by default.
    pub registration: RegistrationSettings,
    /// Clock skew allowed on the times clients write: a DPoP proof's `iat`, a
    /// client assertion's `exp`, `nbf` and `iat` (`[tokens] leeway`). The
    /// access-token verifier allows the same skew past `exp`, so revocations
    /// and grants are kept this much longer than the tokens they refuse, and
    /// no revoked token works again inside it.
    pub leeway: Duration,
    /// DPoP (RFC 9449).
    pub dpop: DpopSettings,
    /// Whether every client must push its authorization requests first
    /// (RFC 9126 6, `[par] require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// Whether a refresh issues a new refresh token and retires the one
    /// presented (`[tokens] refresh_rotation`). Without rotation the refresh
    /// token is used again until it expires.
    pub refresh_rotation: bool,
    /// How long after its rotation a refresh token may be presented once more
    /// for a second successor, instead of revoking its family
    /// (`[tokens] refresh_reuse_grace`; zero: never).
    pub refresh_reuse_grace: Duration,
    /// The `aud` values a client assertion may name (RFC 7523 3): the issuer
    /// and the URLs of the endpoints that authenticate clients.
    pub assertion_audiences: Vec<String>,
    /// The FAPI 2.0 Security Profile (`[profile] fapi2`): pushed requests,
    /// PKCE and DPoP for every client, `private_key_jwt` only, and no refresh
    /// rotation, whatever the other settings say.
    pub fapi2: bool,
}

/// `[registration]`: dynamic client registration (RFC 7591, RFC 7592).
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Whether `/register` is served at all.
    pub enabled: bool,
    /// When set, registering needs this bearer token (an initial access
    /// token, RFC 7591 3); without it registration is open, to public clients
    /// with loopback or https redirect URIs only.
    pub initial_access_token: Option<SecretHash>,
    /// The scopes a registered client may ask for (and gets when it names none).
    pub scopes: Scope,
    /// The resources a registered client may ask for; `None` means every
    /// configured resource.
    pub resources: Option<BTreeSet<ResourceUri>>,
    /// Open registrations allowed per peer address within `window`.
    pub max_per_ip: u32,
    /// The window of `max_per_ip`.
    pub window: Duration,
    /// Open registration stops once the store holds this many clients.
    pub max_clients: u64,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        RegistrationSettings {
            enabled: false,
            initial_access_token: None,
            // SPEC-2: none but `openid` unless configured.
            scopes: Scope::from_tokens(["openid"]).unwrap_or_default(),
            resources: None,
            max_per_ip: 10,
            window: Duration::seconds(3600),
            max_clients: 10_000,
        }
    }
}

/// The `[dpop]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopSettings {
    /// How long after its `iat` a proof is accepted (`[dpop] max_age`).
    pub max_age: Duration,
    /// Whether proofs at the token and PAR endpoints must carry the server's
    /// nonce (RFC 9449 8, `[dpop] require_nonce`).
    pub require_nonce: bool,
}

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings { max_age: Duration::seconds(60), require_nonce: false }
    }
}

impl Settings {
    /// The SPEC defaults for `issuer`: 900 s access tokens, 14-day refresh
    /// tokens within a 90-day family, rotated on every use with no grace, 60 s
    /// codes, 30 s leeway, 600 s sessions, 3600 s ID tokens, browser sessions of 10 hours
    /// that end after 30 idle minutes, consents remembered for a year, every
    /// grant but `password` (RFC 9700 2.4) switched on, device codes of 600 s
    /// polled every 5 s, DPoP proofs up to 60 s
    /// old without a nonce, and client assertions for the issuer itself.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer: String = issuer.into();
        Settings {
            audience: issuer.clone(),
            access_token_ttl: Duration::seconds(900),
            refresh_token_ttl: Duration::seconds(1_209_600),
            refresh_token_max_lifetime: Duration::seconds(7_776_000),
            authorization_code_ttl: Duration::seconds(60),
            session_ttl: Duration::seconds(600),
            id_token_ttl: Duration::seconds(3600),
            browser_session_lifetime: Duration::seconds(36_000),
            browser_session_idle: Duration::seconds(1800),
            consent_lifetime: Duration::days(365),
            grants: [
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
                GrantType::DeviceCode,
            ]
            .into(),
            device_code_ttl: Duration::seconds(600),
            device_interval: Duration::seconds(5),
            throttle: ThrottleSettings::default(),
            resources: BTreeMap::new(),
            registration: RegistrationSettings::default(),
            leeway: Duration::seconds(30),
            dpop: DpopSettings::default(),
            require_pushed_authorization_requests: false,
            refresh_rotation: true,
            refresh_reuse_grace: Duration::ZERO,
            assertion_audiences: vec![issuer.clone()],
            fapi2: false,
            issuer,
        }
    }
}

/// The services an [`Authority`] runs on. Many parts, so one struct with public
/// fields rather than a long constructor.
#[derive(Clone)]
pub struct Services {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Where clients are registered.
    pub clients: Arc<dyn ClientRegistry>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Randomness for codes, refresh tokens and ids.
    pub secrets: Arc<dyn SecretSource>,
    /// Client-secret and password verification.
    pub verifier: Arc<dyn SecretVerifier>,
    /// Access-token minting and verification.
    pub tokens: Arc<dyn AccessTokenCodec>,
    /// ID-token minting, and the check of an `id_token_hint`.
    pub id_tokens: Arc<dyn IdTokenCodec>,
    /// The resource availability check.
    pub resources: Arc<dyn ResourceCheck>,
    /// Where security events go (the core does not log).
    pub events: Arc<dyn SecurityEvents>,
    /// The signature checks of DPoP proofs and client assertions.
    pub proofs: Arc<dyn ProofChecker>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// The authorization server's logic: every flow is a method. It holds no
/// mutable state of its own but the throttle counts that cancelled requests
/// left behind (see `throttle.rs`), so one `Authority` serves every request
/// concurrently.
#[derive(Debug, Clone)]
pub struct Authority {
    pub(crate) settings: Settings,
    pub(crate) services: Services,
    /// The DPoP nonces of the current and the last window, as read from the
    /// store: a cache, not state (every node reads the same records).
    pub(crate) nonces: Arc<NonceCache>,
    /// The throttled attempts this node is checking (`throttle.rs`).
    pub(crate) in_flight: Arc<InFlight>,
}

impl Authority {
    /// Builds an authority.
    pub fn new(settings: Settings, services: Services) -> Self {
        Authority { settings, services, nonces: Arc::default(), in_flight: Arc::default() }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The services it runs on.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Reports a security event; the flow then answers as it would anyway.
    pub(crate) fn report(&self, event: SecurityEvent) {
        self.services.events.report(&event);
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.services.clock.now()
    }

    pub(crate) fn random_16(&self) -> Result<[u8; 16]> {
        let mut b = [0u8; 16];
        self.services.secrets.fill(&mut b)?;
        Ok(b)
    }

    /// A new opaque secret (a code or a refresh token): 256 bits from the CSPRNG
    /// in unpadded base64url, with its SHA-256.
    pub(crate) fn opaque_secret(&self) -> Result<(String, TokenHash)> {
        let mut b = [0u8; 32];
        self.services.secrets.fill(&mut b)?;
        let secret = URL_SAFE_NO_PAD.encode(b);
        let hash = TokenHash::of(&secret);
        Ok((secret, hash))
    }

    pub(crate) fn new_grant_id(&self) -> Result<GrantId> {
        Ok(GrantId::from_random_bytes(self.random_16()?))
    }

    /// The resource (RFC 8707) a request names, checked: a configured one that
    /// the client may ask for, else `invalid_target`.
    pub(crate) fn resolve_resource(&self, client: &Client, requested: Option<&str>) -> Result<Option<ResourceUri>> {
        let Some(raw) = requested else { return Ok(None) };
        let resource = ResourceUri::parse(raw)?;
        if !self.settings.resources.contains_key(&resource) {
            return Err(Error::InvalidTarget("unknown resource"));
        }
        if !client.resources().contains(&resource) {
            return Err(Error::InvalidTarget("the client may not ask for this resource"));
        }
        Ok(Some(resource))
    }

    /// Resolves the scope of a request for `client` and, when the request names
    /// one, `resource`: an omitted scope means the client's whole set (except
    /// under [`ScopeRule::ExactlyOne`], where it must be sent), narrowed to the
    /// resource's scopes; a scope outside the client's set, or the resource's,
    /// is `invalid_scope`, never narrowed.
    pub(crate) fn resolve_scope_for(
        &self,
        client: &Client,
        requested: Option<&str>,
        resource: Option<&ResourceUri>,
    ) -> Result<Scope> {
        let Some(resource) = resource else { return self.resolve_scope(client, requested) };
        let understood = self.settings.resources.get(resource).ok_or(Error::InvalidTarget("unknown resource"))?;
        let scope = match requested {
            None if client.scope_rule() == ScopeRule::Subset => client.scopes().intersection(understood),
            _ => self.resolve_scope(client, requested)?,
        };
        if scope.is_empty() {
            return Err(Error::InvalidScope("the client may ask for none of the resource's scopes"));
        }
        if !scope.is_subset(understood) {
            return Err(Error::InvalidScope("the scope is outside the resource's scopes"));
        }
        Ok(scope)
    }

    /// Resolves the scope of a request for `client`: an omitted scope means the
    /// client's whole set (except under [`ScopeRule::ExactlyOne`], where it must
    /// be sent), and a scope outside the set is `invalid_scope`, never narrowed.
    pub(crate) fn resolve_scope(&self, client: &Client, requested: Option<&str>) -> Result<Scope> {
        match (client.scope_rule(), requested) {
            (ScopeRule::Subset, None) => Ok(client.scopes().clone()),
            (ScopeRule::ExactlyOne, None) => Err(Error::InvalidScope("exactly one scope is required")),
            (rule, Some(raw)) => {
                let scope = Scope::parse(raw)?;
                if !scope.is_subset(client.scopes()) {
                    return Err(Error::InvalidScope("the scope exceeds what the client may ask for"));
                }
                if rule == ScopeRule::ExactlyOne && scope.len() != 1 {
                    return Err(Error::InvalidScope("exactly one scope is required"));
                }
                Ok(scope)
            }
        }
    }

    /// Mints an access token for `resource` (its `aud`; the configured
    /// audience when `None`), bound to the key `jkt` when there is one;
    /// returns it with its claims.
    #[allow(clippy::too_many_arguments, reason = "each argument is a checked part of one access token")]
    pub(crate) async fn mint_access_token(
        &self,
        client_id: &ClientId,
        subject: String,
        scope: Scope,
        grant: Option<GrantId>,
        resource: Option<&ResourceUri>,
        jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(String, AccessTokenClaims)> {
        let audience = resource.map_or_else(|| self.settings.audience.clone(), |r| r.as_str().to_owned());
        let claims = AccessTokenClaims {
            issuer: self.settings.issuer.clone(),
            subject,
            audience,
            client_id: client_id.clone(),
            scope,
            issued_at: now,
            expires_at: now + self.settings.access_token_ttl,
            jti: AccessTokenId::from_random_bytes(self.random_16()?),
            grant,
            jkt: jkt.map(str::to_owned),
        };
        let token = self.services.tokens.mint(&claims).await?;
        Ok((token, claims))
    }

    /// True when the server and the client both allow refresh tokens.
    pub(crate) fn issues_refresh_tokens(&self, client: &Client) -> bool {
        self.settings.grants.contains(&GrantType::RefreshToken) && client.allows(GrantType::RefreshToken)
    }

    /// Whether the code flow demands PKCE of `client` (FAPI 2.0: of every
    /// client).
    pub(crate) fn requires_pkce(&self, client: &Client) -> bool {
        client.require_pkce() || self.settings.fapi2
    }

    /// Whether `client` must push its authorization requests.
    pub(crate) fn requires_pushed_requests(&self, client: &Client) -> bool {
        client.require_pushed_authorization_requests()
            || self.settings.require_pushed_authorization_requests
            || self.settings.fapi2
    }

    /// Whether every token request of `client` must carry a DPoP proof.
    pub(crate) fn requires_dpop(&self, client: &Client) -> bool {
        client.dpop_bound_access_tokens() || self.settings.fapi2
    }

    /// Whether refresh tokens rotate (FAPI 2.0 5.3.2.1: they do not).
    pub(crate) fn rotates_refresh_tokens(&self) -> bool {
        self.settings.refresh_rotation && !self.settings.fapi2
    }

    /// The key that signs `client`'s ID tokens: the one it registered
    /// (`id_token_signed_response_alg`), or under FAPI 2.0 the server's own
    /// `signing_alg`, since the profile allows no RS256 (FAPI 2.0 5.4).
    pub(crate) fn id_token_alg(&self, client: &Client) -> IdTokenAlg {
        if self.settings.fapi2 { IdTokenAlg::ServerAlg } else { client.id_token_alg() }
    }
}
