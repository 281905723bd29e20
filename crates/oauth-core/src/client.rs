//! Registered clients and the registry the flows look them up in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::services::IdTokenAlg;
use crate::types::{ClientId, GrantType, RedirectPolicy, RedirectUri, ResourceUri, Scope, TokenHash, WebOrigin};

/// A stored secret or password hash: an Argon2id PHC string, or for
/// machine-generated client secrets `$sha256$` and 64 hex digits. Only a
/// [`SecretVerifier`](crate::SecretVerifier) interprets it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    /// Wraps a hash string. Its format is checked by the verifier and by
    /// configuration loading, not here.
    pub fn new(hash: impl Into<String>) -> Self {
        SecretHash(hash.into())
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a secret, but it is an offline-cracking target: keep it
        // out of logs.
        f.write_str("SecretHash(..)")
    }
}

/// How a client's requested scope is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeRule {
    /// Any non-empty subset of the client's scopes; an omitted scope means all of
    /// them.
    Subset,
    /// Exactly one of the client's scopes, and it must be sent (the MedMij rule:
    /// one data service per authorization).
    ExactlyOne,
}

/// When the consent page is shown to a user of this client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentRule {
    /// Shown until the user approves; then remembered per account and
    /// client, and skipped for any request within the approved scope. The
    /// default.
    #[default]
    Remember,
    /// Never shown (a first-party client, `skip_consent = true`), unless the
    /// request says `prompt=consent`; counts as consented for `prompt=none`.
    Skip,
    /// Shown on every authorization and never remembered: the MedMij rule for
    /// OCL clients, whose users must see each data service they release.
    Always,
}

/// What a client is registered with. Validated into a [`Client`] by
/// [`Client::new`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The `client_id`.
    pub id: ClientId,
    /// The name shown on the consent page.
    pub name: String,
    /// `Some` makes a confidential client that authenticates with this secret
    /// (`client_secret_basic` or `client_secret_post`).
    pub secret: Option<SecretHash>,
    /// `Some` makes a confidential client that authenticates with
    /// `private_key_jwt` (RFC 7523): assertions signed by one of these keys, a
    /// JWK Set as JSON text (the `jwks` of RFC 7591), which the
    /// [`ProofChecker`](crate::ProofChecker) reads. Such a client has no
    /// secret. With neither, the client is public.
    pub jwks: Option<String>,
    /// Where authorization responses may go.
    pub redirect: RedirectPolicy,
    /// The grants this client may use.
    pub grant_types: BTreeSet<GrantType>,
    /// The scopes this client may ask for.
    pub scopes: Scope,
    /// How a requested scope is checked against `scopes`.
    pub scope_rule: ScopeRule,
    /// Whether the code flow demands PKCE. A challenge that is sent is always
    /// enforced, whatever this says.
    pub require_pkce: bool,
    /// Web origins, besides those of the redirect URIs, whose pages may call
    /// the token endpoint as this client from a browser (CORS).
    pub allowed_cors_origins: Vec<WebOrigin>,
    /// The resources (RFC 8707) this client may ask tokens for.
    pub resources: BTreeSet<ResourceUri>,
    /// Whether every token request must carry a DPoP proof, so every access
    /// token is bound (RFC 9449 5.2, `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// Whether authorization requests must be pushed first (RFC 9126 6).
    pub require_pushed_authorization_requests: bool,
    /// Where RP-initiated logout may send the browser afterwards; a
    /// `post_logout_redirect_uri` must equal one character for character.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// How this client's ID tokens are signed (`id_token_signed_response_alg`).
    pub id_token_alg: IdTokenAlg,
    /// When the consent page is shown.
    pub consent: ConsentRule,
}

/// Why a client registration is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A public client must use PKCE (RFC 9700 2.1.1). Only host-bound
    /// (MedMij OCL) clients may be exempted, by an explicit profile setting.
    #[error("a public client must require PKCE")]
    PublicWithoutPkce,
    /// The client may use the code grant but has no redirect URI.
    #[error("the authorization_code grant needs at least one redirect URI")]
    NoRedirectUri,
    /// `client_credentials` needs a secret to authenticate with.
    #[error("client_credentials is for confidential clients only")]
    PublicClientCredentials,
    /// A client authenticates one way: a secret, or keys, not both.
    #[error("a client has a secret or keys (private_key_jwt), not both")]
    SecretAndKeys,
}

/// A registered client. Fields are private: [`Client::new`] checks the rules
/// that tie them together.
#[derive(Debug, Clone)]
pub struct Client {
    settings: ClientSettings,
    /// The origins of the redirect URIs and `allowed_cors_origins`, worked out
    /// once.
    origins: Vec<WebOrigin>,
}

impl Client {
    /// Validates a registration.
    pub fn new(settings: ClientSettings) -> std::result::Result<Self, ClientError> {
        if settings.secret.is_some() && settings.jwks.is_some() {
            return Err(ClientError::SecretAndKeys);
        }
        let public = settings.secret.is_none() && settings.jwks.is_none();
        let host_bound = matches!(settings.redirect, RedirectPolicy::HttpsHost(_));
        if public && !settings.require_pkce && !host_bound {
            return Err(ClientError::PublicWithoutPkce);
        }
        if settings.grant_types.contains(&GrantType::AuthorizationCode)
            && matches!(&settings.redirect, RedirectPolicy::Registered(v) if v.is_empty())
        {
            return Err(ClientError::NoRedirectUri);
        }
        if public && settings.grant_types.contains(&GrantType::ClientCredentials) {
            return Err(ClientError::PublicClientCredentials);
        }
        let mut origins: Vec<WebOrigin> = match &settings.redirect {
            RedirectPolicy::Registered(uris) => uris.iter().filter_map(|u| u.origin()).collect(),
            // The host-bound rule allows any https URI on the host, at the
            // default port (`:443` or none).
            RedirectPolicy::HttpsHost(host) => WebOrigin::parse(&format!("https://{host}")).into_iter().collect(),
        };
        origins.extend(settings.allowed_cors_origins.iter().cloned());
        origins.sort();
        origins.dedup();
        Ok(Client { settings, origins })
    }

    /// The `client_id`.
    pub fn id(&self) -> &ClientId {
        &self.settings.id
    }
    /// The display name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }
    /// The stored secret hash; `None` for a public client.
    pub fn secret(&self) -> Option<&SecretHash> {
        self.settings.secret.as_ref()
    }
    /// The registered keys of a `private_key_jwt` client: a JWK Set as JSON.
    pub fn jwks(&self) -> Option<&str> {
        self.settings.jwks.as_deref()
    }
    /// True for a confidential client: one with a secret or with keys.
    pub fn is_confidential(&self) -> bool {
        self.settings.secret.is_some() || self.settings.jwks.is_some()
    }
    /// Whether its token requests must carry a DPoP proof.
    pub fn dpop_bound_access_tokens(&self) -> bool {
        self.settings.dpop_bound_access_tokens
    }
    /// Whether its authorization requests must be pushed first.
    pub fn require_pushed_authorization_requests(&self) -> bool {
        self.settings.require_pushed_authorization_requests
    }
    /// The redirect URI policy.
    pub fn redirect(&self) -> &RedirectPolicy {
        &self.settings.redirect
    }
    /// True when the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.settings.grant_types.contains(&grant)
    }
    /// The grants this client may use.
    pub fn grant_types(&self) -> &BTreeSet<GrantType> {
        &self.settings.grant_types
    }
    /// The scopes the client may ask for.
    pub fn scopes(&self) -> &Scope {
        &self.settings.scopes
    }
    /// How a requested scope is checked.
    pub fn scope_rule(&self) -> ScopeRule {
        self.settings.scope_rule
    }
    /// Whether the code flow demands PKCE.
    pub fn require_pkce(&self) -> bool {
        self.settings.require_pkce
    }
    /// Whether a browser page on `origin` may call the endpoints as this
    /// client: `origin` is the origin of one of its redirect URIs, or listed in
    /// its `allowed_cors_origins`.
    pub fn allows_origin(&self, origin: &WebOrigin) -> bool {
        self.origins.binary_search(origin).is_ok()
    }
    /// The URI `requested`, when it is one of the registered
    /// `post_logout_redirect_uris` exactly (no port or case exception).
    pub fn post_logout_redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.settings.post_logout_redirect_uris.iter().find(|u| u.as_str() == requested)
    }
    /// How this client's ID tokens are signed.
    pub fn id_token_alg(&self) -> IdTokenAlg {
        self.settings.id_token_alg
    }
    /// When the consent page is shown.
    pub fn consent(&self) -> ConsentRule {
        self.settings.consent
    }

    /// The origins its pages may be on: those of its redirect URIs and its
    /// `allowed_cors_origins`, sorted.
    pub fn origins(&self) -> &[WebOrigin] {
        &self.origins
    }
    /// The resources (RFC 8707) the client may ask tokens for.
    pub fn resources(&self) -> &BTreeSet<ResourceUri> {
        &self.settings.resources
    }
    /// Everything the client was registered with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }
}

/// How a stored client came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    /// Created through the admin API.
    Admin,
    /// Registered by itself (RFC 7591); it manages its registration with its
    /// registration access token (RFC 7592).
    Registration,
}

/// A client as the store keeps it: created through the admin API or by
/// dynamic registration. Clients of the configuration file and the OAuth
/// Client List are never stored. [`ClientRecord::to_client`] checks the same
/// rules as every other registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The `client_id`.
    pub id: ClientId,
    /// The name shown on the consent page.
    pub name: String,
    /// The hash of its secret; `None` for a public client.
    pub secret: Option<SecretHash>,
    /// Where authorization responses may go.
    pub redirect_uris: Vec<RedirectUri>,
    /// The grants it may use.
    pub grant_types: BTreeSet<GrantType>,
    /// The scopes it may ask for.
    pub scopes: Scope,
    /// Whether the code flow demands PKCE.
    pub require_pkce: bool,
    /// The resources it may ask tokens for.
    #[serde(default)]
    pub resources: BTreeSet<ResourceUri>,
    /// Web origins, besides those of its redirect URIs, whose pages may call
    /// the token endpoint as this client (CORS).
    #[serde(default)]
    pub allowed_cors_origins: Vec<WebOrigin>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// How it was created.
    pub origin: ClientOrigin,
    /// The SHA-256 of its RFC 7592 registration access token, for clients
    /// that registered themselves; replaced on every update.
    pub registration_token: Option<TokenHash>,
    /// Its JWK Set of public keys (RFC 7591 `jwks`), as JSON text.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Whether it authenticates with `private_key_jwt` (RFC 7523): by an
    /// assertion signed with one of its `jwks`, with no secret. Records
    /// stored before this existed read as `false`, which is what they were.
    #[serde(default)]
    pub private_key_jwt: bool,
    /// Where RP-initiated logout may send the browser afterwards (OpenID
    /// Connect RP-Initiated Logout 1.0 3.1).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// How its ID tokens are signed (`id_token_signed_response_alg`).
    #[serde(default)]
    pub id_token_alg: IdTokenAlg,
    /// A first-party client that shows no consent page (ours; the admin API
    /// only).
    #[serde(default)]
    pub skip_consent: bool,
}

impl ClientRecord {
    /// The client this record registers, checked by [`Client::new`].
    pub fn to_client(&self) -> std::result::Result<Client, ClientError> {
        Client::new(ClientSettings {
            id: self.id.clone(),
            name: self.name.clone(),
            secret: self.secret.clone(),
            redirect: RedirectPolicy::Registered(self.redirect_uris.clone()),
            grant_types: self.grant_types.clone(),
            scopes: self.scopes.clone(),
            scope_rule: ScopeRule::Subset,
            require_pkce: self.require_pkce,
            allowed_cors_origins: self.allowed_cors_origins.clone(),
            resources: self.resources.clone(),
            // The keys authenticate only a client registered for
            // private_key_jwt; for any other they are metadata, so a client
            // that registered `jwks` beside a secret keeps using its secret.
            jwks: if self.private_key_jwt { self.jwks.clone() } else { None },
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            id_token_alg: self.id_token_alg,
            consent: if self.skip_consent { ConsentRule::Skip } else { ConsentRule::Remember },
        })
    }
}

/// Where the flows find clients: configuration, an OAuth Client List, a
/// database.
#[async_trait]
pub trait ClientRegistry: Send + Sync {
    /// The client with this id, if registered.
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>>;

    /// Whether some registered client allows `origin`
    /// ([`Client::allows_origin`]): what the front end asks before it lets a
    /// browser page on that origin call an endpoint that is not bound to one
    /// client (`/userinfo`, and the preflight of every endpoint).
    async fn any_client_allows_origin(&self, origin: &WebOrigin) -> Result<bool>;

    /// Drops any copy of client `id` this registry keeps, because the store's
    /// record just changed or went: called by the node that made the change,
    /// so the change holds on that node at once. Registries that keep no
    /// copies have nothing to do.
    fn forget(&self, id: &ClientId) {
        let _ = id;
    }
}

/// A fixed set of clients, such as the `[[clients]]` of a configuration file.
#[async_trait]
impl ClientRegistry for BTreeMap<ClientId, Arc<Client>> {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>> {
        Ok(self.get(id).cloned())
    }

    async fn any_client_allows_origin(&self, origin: &WebOrigin) -> Result<bool> {
        Ok(self.values().any(|c| c.allows_origin(origin)))
    }
}

crate::forward::forward_async!(ClientRegistry {
    fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>>;
    fn any_client_allows_origin(&self, origin: &WebOrigin) -> Result<bool>;
} sync {
    fn forget(&self, id: &ClientId) -> ();
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RedirectUri;

    fn settings() -> ClientSettings {
        ClientSettings {
            id: ClientId::parse("app").unwrap(),
            name: "App".into(),
            secret: None,
            redirect: RedirectPolicy::Registered(vec![RedirectUri::parse("https://app.example/cb").unwrap()]),
            grant_types: [GrantType::AuthorizationCode].into(),
            scopes: Scope::parse("read").unwrap(),
            scope_rule: ScopeRule::Subset,
            require_pkce: true,
            allowed_cors_origins: vec![],
            resources: BTreeSet::new(),
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: Vec::new(),
            id_token_alg: IdTokenAlg::Rs256,
            consent: ConsentRule::Remember,
        }
    }

    #[test]
    fn public_client_without_pkce_is_refused() {
        let s = ClientSettings { require_pkce: false, ..settings() };
        assert_eq!(Client::new(s).err(), Some(ClientError::PublicWithoutPkce));
    }

    #[test]
    fn host_bound_public_client_may_skip_pkce() {
        let s = ClientSettings {
            require_pkce: false,
            resources: Default::default(),
            redirect: RedirectPolicy::HttpsHost("pgo.example.org".into()),
            ..settings()
        };
        assert!(Client::new(s).is_ok());
    }

    #[test]
    fn code_grant_needs_a_redirect_uri() {
        let s = ClientSettings { redirect: RedirectPolicy::Registered(vec![]), ..settings() };
        assert_eq!(Client::new(s).err(), Some(ClientError::NoRedirectUri));
    }

    #[test]
    fn public_client_cannot_use_client_credentials() {
        let s = ClientSettings { grant_types: [GrantType::ClientCredentials].into(), ..settings() };
        assert_eq!(Client::new(s).err(), Some(ClientError::PublicClientCredentials));
    }

    #[test]
    fn a_client_allows_the_origins_of_its_redirect_uris_and_the_ones_it_lists() {
        let s = ClientSettings {
            redirect: RedirectPolicy::Registered(vec![
                RedirectUri::parse("https://app.example/cb").unwrap(),
                RedirectUri::parse("http://127.0.0.1:5173/callback").unwrap(),
                RedirectUri::parse("com.example.app:/cb").unwrap(),
            ]),
            allowed_cors_origins: vec![WebOrigin::parse("https://admin.example").unwrap()],
            ..settings()
        };
        let client = Client::new(s).unwrap();
        for ok in ["https://app.example", "https://app.example:443", "http://127.0.0.1:5173", "https://admin.example"] {
            assert!(client.allows_origin(&WebOrigin::parse(ok).unwrap()), "{ok}");
        }
        for other in
            ["https://evil.example", "http://127.0.0.1:5174", "https://app.example:8443", "http://localhost:5173"]
        {
            assert!(!client.allows_origin(&WebOrigin::parse(other).unwrap()), "{other}");
        }
        let host_bound = Client::new(ClientSettings {
            require_pkce: false,
            redirect: RedirectPolicy::HttpsHost("pgo.example.org".into()),
            ..settings()
        })
        .unwrap();
        assert!(host_bound.allows_origin(&WebOrigin::parse("https://pgo.example.org").unwrap()));
        assert!(!host_bound.allows_origin(&WebOrigin::parse("https://pgo.example.org:8443").unwrap()));
    }

    #[test]
    fn a_client_has_a_secret_or_keys_not_both_and_keys_make_it_confidential() {
        let keys = ClientSettings { jwks: Some(r#"{"keys":[]}"#.into()), ..settings() };
        let both = ClientSettings { secret: Some(SecretHash::new("$sha256$00")), ..keys.clone() };
        assert_eq!(Client::new(both).err(), Some(ClientError::SecretAndKeys));
        let client =
            Client::new(ClientSettings { grant_types: [GrantType::ClientCredentials].into(), ..keys }).unwrap();
        assert!(client.is_confidential() && client.secret().is_none());
    }

    #[test]
    fn post_logout_redirect_uris_match_character_for_character() {
        let s = ClientSettings {
            post_logout_redirect_uris: vec![RedirectUri::parse("http://127.0.0.1:9000/bye").unwrap()],
            ..settings()
        };
        let c = Client::new(s).unwrap();
        assert!(c.post_logout_redirect_uri("http://127.0.0.1:9000/bye").is_some());
        for other in ["http://127.0.0.1:9001/bye", "http://127.0.0.1:9000/bye/", "HTTP://127.0.0.1:9000/bye"] {
            assert!(c.post_logout_redirect_uri(other).is_none(), "{other}");
        }
    }

    #[test]
    fn secret_hash_debug_hides_the_hash() {
        assert_eq!(format!("{:?}", SecretHash::new("$argon2id$v=19$...")), "SecretHash(..)");
    }
}
