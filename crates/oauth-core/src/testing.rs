//! Test doubles and a fixture (feature `testing`). Never for production: the
//! secrets here are predictable and the token codec does not sign.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::flow::{AuthorizeRequest, ClientCredentials, LoginOutcome, TokenRequest};
use crate::{
    AccessTokenClaims, AccessTokenCodec, Account, AccountId, AllowAll, AssertionClaims, Authority,
    AuthorizationSession, Client, ClientId, ClientSettings, Clock, ConsentRule, DpopProof, Error, GrantType,
    IdTokenAlg, IdTokenClaims, IdTokenCodec, IdTokenHint, ProofChecker, RedirectPolicy, RedirectUri, ResourceCheck,
    Result, Scope, ScopeRule, SecretHash, SecretSource, SecretVerifier, SecurityEvent, SecurityEvents, Services,
    Settings, Store,
};

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `at` (whole seconds).
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(AtomicI64::new(at.unix_timestamp()))
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Distinct but predictable "random" bytes: a counter, spread over the buffer.
#[derive(Debug, Default)]
pub struct CountingSecrets(AtomicU64);

impl SecretSource for CountingSecrets {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        let n = self.0.fetch_add(1, Ordering::SeqCst).to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = n[i % 8] ^ (i as u8).wrapping_mul(31);
        }
        Ok(())
    }
}

/// A verifier for hashes of the form `plain:<secret>`. Counts its calls, so
/// tests can see that an unknown user still costs a verification.
#[derive(Debug, Default)]
pub struct PlainVerifier {
    /// How many verifications ran, unknown users included.
    pub calls: AtomicU64,
}

#[async_trait]
impl SecretVerifier for PlainVerifier {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(stored.and_then(|h| h.as_str().strip_prefix("plain:")).is_some_and(|s| s == presented))
    }
}

/// [`SecurityEvents`] that keeps every event, for tests to look at.
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Vec<SecurityEvent>>);

impl RecordedEvents {
    /// Every event reported so far, in order; the record is emptied.
    pub fn take(&self) -> Vec<SecurityEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl SecurityEvents for RecordedEvents {
    fn report(&self, event: &SecurityEvent) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(event.clone());
    }
}

/// An unsigned token codec: `test.<json>.test`.
#[derive(Debug, Default)]
pub struct JsonTokens;

#[async_trait]
impl AccessTokenCodec for JsonTokens {
    async fn mint(&self, c: &AccessTokenClaims) -> Result<String> {
        // The claims' own serde form, not the JWT claim names: those are
        // oauth-jwt's, and only it writes them.
        let json = serde_json::to_string(c).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(format!("test.{json}.test"))
    }

    fn is_access_token(&self, token: &str) -> bool {
        token.starts_with("test.") && token.ends_with(".test")
    }

    async fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims> {
        let bad = Error::InvalidToken("malformed token");
        let json = token.strip_prefix("test.").and_then(|t| t.strip_suffix(".test")).ok_or(bad.clone())?;
        let claims: AccessTokenClaims = serde_json::from_str(json).map_err(|_| bad)?;
        if now >= claims.expires_at {
            return Err(Error::InvalidToken("expired"));
        }
        Ok(claims)
    }
}

/// Unsigned DPoP proofs and client assertions: `test-dpop.<json>` and
/// `test-assertion.<json>`, the JSON holding the claims (times in Unix
/// seconds). A proof names its key's thumbprint in `jkt`; an assertion is
/// "signed" by the key named in its `key` member, which must appear in its
/// client's `jwks`. So the core's own rules (method, URL, age, replay, nonce,
/// audience, lifetime) are tested without signatures, which `oauth-jwt`'s
/// tests cover.
#[derive(Debug, Default)]
pub struct JsonProofs;

impl JsonProofs {
    /// A proof with these claims (`jkt`, `jti`, `htm`, `htu`, `iat`, and
    /// optionally `ath` and `nonce`).
    pub fn proof(claims: &serde_json::Value) -> String {
        format!("test-dpop.{claims}")
    }

    /// An assertion with these claims, "signed" by `key`.
    pub fn assertion(key: &str, claims: &serde_json::Value) -> String {
        let mut claims = claims.clone();
        claims["key"] = serde_json::Value::String(key.into());
        format!("test-assertion.{claims}")
    }
}

fn json_of(token: &str, prefix: &str) -> Option<serde_json::Value> {
    serde_json::from_str(token.strip_prefix(prefix)?).ok()
}

fn time_of(v: &serde_json::Value) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(v.as_i64()?).ok()
}

impl ProofChecker for JsonProofs {
    fn dpop_proof(&self, proof: &str) -> Result<DpopProof> {
        let bad = Error::InvalidDpopProof("malformed test proof");
        let c = json_of(proof, "test-dpop.").ok_or(bad.clone())?;
        let text = |k: &str| c[k].as_str().map(str::to_owned);
        Ok(DpopProof {
            jkt: text("jkt").ok_or(bad.clone())?,
            jti: text("jti").ok_or(bad.clone())?,
            htm: text("htm").ok_or(bad.clone())?,
            htu: text("htu").ok_or(bad.clone())?,
            iat: time_of(&c["iat"]).ok_or(bad)?,
            ath: text("ath"),
            nonce: text("nonce"),
        })
    }

    fn client_assertion(&self, assertion: &str, client: &Client) -> Result<AssertionClaims> {
        let c = json_of(assertion, "test-assertion.").ok_or(Error::InvalidClient)?;
        let key = c["key"].as_str().ok_or(Error::InvalidClient)?;
        if !client.jwks().is_some_and(|jwks| jwks.contains(&format!("\"{key}\""))) {
            return Err(Error::InvalidClient);
        }
        let text = |k: &str| c[k].as_str().map(str::to_owned).ok_or(Error::InvalidClient);
        let audience = match &c["aud"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => return Err(Error::InvalidClient),
        };
        Ok(AssertionClaims {
            issuer: text("iss")?,
            subject: text("sub")?,
            audience,
            expires_at: time_of(&c["exp"]).ok_or(Error::InvalidClient)?,
            not_before: time_of(&c["nbf"]),
            issued_at: time_of(&c["iat"]),
            jti: text("jti")?,
        })
    }

    fn assertion_subject(&self, assertion: &str) -> Option<String> {
        json_of(assertion, "test-assertion.")?["sub"].as_str().map(str::to_owned)
    }

    fn dpop_algorithms(&self) -> &[&'static str] {
        &["test"]
    }

    fn assertion_algorithms(&self) -> &[&'static str] {
        &["test"]
    }

    /// Test keys are names, not keys: any JWK Set with a key will do.
    fn check_client_keys(&self, jwks: &str) -> Result<()> {
        let set: serde_json::Value =
            serde_json::from_str(jwks).map_err(|_| Error::InvalidClientMetadata("jwks is not JSON"))?;
        match set["keys"].as_array() {
            Some(keys) if !keys.is_empty() => Ok(()),
            _ => Err(Error::InvalidClientMetadata("jwks has no signing key")),
        }
    }
}

/// Unsigned ID tokens, `idt.<json>.idt`, whose JSON holds the claims a test
/// looks at (`iss`, `sub`, `aud`, `auth_time`, `nonce`, `sid`, `alg`, and the
/// access token they came with as `at`). A hint is "valid" when its `iss` is
/// [`ISSUER`].
#[async_trait]
impl IdTokenCodec for JsonTokens {
    async fn mint_id_token(&self, c: &IdTokenClaims, alg: IdTokenAlg, access_token: &str) -> Result<String> {
        let json = serde_json::json!({
            "iss": c.issuer, "sub": c.subject.to_string(), "aud": c.audience.as_str(),
            "iat": c.issued_at.unix_timestamp(), "exp": c.expires_at.unix_timestamp(),
            "auth_time": c.auth_time.unix_timestamp(), "nonce": c.nonce.as_ref().map(|n| n.as_str()),
            "sid": c.sid.map(|s| s.to_string()), "alg": format!("{alg:?}"), "at": access_token,
        });
        Ok(format!("idt.{json}.idt"))
    }

    async fn verify_id_token_hint(&self, token: &str, _now: OffsetDateTime) -> Result<IdTokenHint> {
        let bad = Error::InvalidToken("not an ID token of this server");
        let json = token.strip_prefix("idt.").and_then(|t| t.strip_suffix(".idt")).ok_or(bad.clone())?;
        let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad.clone())?;
        if v["iss"] != ISSUER {
            return Err(bad);
        }
        Ok(IdTokenHint {
            subject: v["sub"].as_str().unwrap_or_default().to_owned(),
            audience: vec![v["aud"].as_str().unwrap_or_default().to_owned()],
        })
    }

    /// ES256, as in the examples.
    fn server_alg(&self) -> Option<&'static str> {
        Some("ES256")
    }
}

/// The claims of a [`JsonTokens`] ID token.
pub fn id_token_claims(token: &str) -> Option<serde_json::Value> {
    let json = token.strip_prefix("idt.")?.strip_suffix(".idt")?;
    serde_json::from_str(json).ok()
}

/// The fixture's issuer.
pub const ISSUER: &str = "https://as.example";
/// A public client with PKCE and refresh: redirect `https://app.example/cb`,
/// scopes `read write`. It shows the consent page every time.
pub const PUBLIC_CLIENT: &str = "public-app";
/// A public OpenID Connect client with PKCE and refresh: redirect
/// `https://app.example/cb`, scopes `openid profile email phone read write`,
/// consent remembered, ID tokens in RS256, and a `post_logout_redirect_uri`
/// of [`LOGOUT_URI`].
pub const OIDC_CLIENT: &str = "oidc-app";
/// A confidential client with every grant, secret [`CONFIDENTIAL_SECRET`]. It
/// shows the consent page every time.
pub const CONFIDENTIAL_CLIENT: &str = "confidential-app";
/// The confidential client's secret.
pub const CONFIDENTIAL_SECRET: &str = "s3cret-s3cret-s3cret";
/// A `private_key_jwt` client with every grant, whose one key is
/// [`KEYS_CLIENT_KEY`] (see [`JsonProofs::assertion`]).
pub const KEYS_CLIENT: &str = "keys-app";
/// The key the `private_key_jwt` client's assertions name.
pub const KEYS_CLIENT_KEY: &str = "key-1";
/// A `private_key_jwt` OpenID Connect client (scopes `openid read`, its ID
/// tokens registered as RS256) whose one key is [`KEYS_CLIENT_KEY`] too: the
/// client a FAPI 2.0 server can issue ID tokens to.
pub const KEYS_OIDC_CLIENT: &str = "keys-oidc-app";
/// A public client like [`PUBLIC_CLIENT`] whose tokens must be DPoP-bound.
pub const DPOP_CLIENT: &str = "dpop-app";
/// A public client like [`PUBLIC_CLIENT`] that must push its authorization
/// requests.
pub const PAR_CLIENT: &str = "par-app";
/// A host-bound (MedMij-style) public client without PKCE, scopes `1 4`,
/// which always shows the consent page.
pub const HOST_CLIENT: &str = "pgo.example.org";
/// A first-party public client that skips the consent page (`skip_consent`),
/// scopes `openid profile read`, ID tokens signed with the server's
/// algorithm, and a `post_logout_redirect_uri` of [`LOGOUT_URI`].
pub const FIRST_PARTY_CLIENT: &str = "first-party";
/// A public device client (RFC 8628): the device-code and refresh grants,
/// scopes `openid read write`, resource [`RESOURCE`], and `skip_consent`
/// (which a device request ignores: its user always sees the consent page).
pub const DEVICE_CLIENT: &str = "tv-app";
/// The `post_logout_redirect_uri` registered for the OpenID and first-party
/// clients.
pub const LOGOUT_URI: &str = "https://app.example/bye";
/// The redirect URI registered for the public and confidential clients.
pub const REDIRECT_URI: &str = "https://app.example/cb";
/// The fixture account's username.
pub const USERNAME: &str = "alice";
/// The fixture account's password.
pub const PASSWORD: &str = "correct horse";
/// The one configured resource (RFC 8707): it understands scope `read` only.
/// The public and confidential clients may ask for it.
pub const RESOURCE: &str = "https://api.example/mcp";
/// A resource the server knows but no client may ask for.
pub const OTHER_RESOURCE: &str = "https://other.example/api";

/// An RFC 7636 appendix B verifier, and its challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An [`Authority`] over a given store, with a manual clock, the test doubles,
/// three clients and one account, and the password grant switched on.
#[derive(Debug)]
pub struct Fixture {
    /// The authority under test.
    pub authority: Authority,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// Its verifier.
    pub verifier: Arc<PlainVerifier>,
    /// The security events its flows reported.
    pub events: Arc<RecordedEvents>,
    /// The fixture account (`alice`).
    pub account: Account,
}

impl Fixture {
    /// Builds the fixture over `store`, storing the account, with `resources` as
    /// the resource check ([`AllowAll`] if `None`).
    pub async fn new(store: Arc<dyn Store>, resources: Option<Arc<dyn ResourceCheck>>) -> Result<Self> {
        Self::with_settings(store, resources, |_| {}).await
    }

    /// [`Fixture::new`] with settings changed by `edit` (the password grant
    /// is switched on before).
    pub async fn with_settings(
        store: Arc<dyn Store>,
        resources: Option<Arc<dyn ResourceCheck>>,
        edit: impl FnOnce(&mut Settings),
    ) -> Result<Self> {
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-11-25 12:00 UTC)));
        let verifier = Arc::new(PlainVerifier::default());
        let events = Arc::new(RecordedEvents::default());
        let mut settings = Settings::new(ISSUER);
        settings.grants.insert(GrantType::Password);
        settings.resources.insert(resource()?, Scope::parse("read")?);
        settings.resources.insert(crate::ResourceUri::parse(OTHER_RESOURCE)?, Scope::parse("read")?);
        edit(&mut settings);
        let services = Services {
            store: store.clone(),
            clients: Arc::new(clients()?),
            clock: clock.clone(),
            secrets: Arc::new(CountingSecrets::default()),
            verifier: verifier.clone(),
            tokens: Arc::new(JsonTokens),
            id_tokens: Arc::new(JsonTokens),
            resources: resources.unwrap_or_else(|| Arc::new(AllowAll)),
            events: events.clone(),
            proofs: Arc::new(JsonProofs),
        };
        let account = Account {
            id: AccountId::from_random_bytes([0xa1; 16]),
            username: USERNAME.into(),
            password_hash: Some(SecretHash::new(format!("plain:{PASSWORD}"))),
            disabled: false,
            attributes: BTreeMap::from([("bsn".into(), "999990019".into())]),
            origin: crate::AccountOrigin::Configuration,
        };
        store.put_account(&account).await?;
        Ok(Fixture { authority: Authority::new(settings, services), clock, verifier, events, account })
    }

    /// A code-flow request from the public client with PKCE.
    pub fn public_request() -> AuthorizeRequest<'static> {
        AuthorizeRequest {
            client_id: Some(PUBLIC_CLIENT),
            redirect_uri: Some(REDIRECT_URI),
            response_type: Some("code"),
            scope: Some("read"),
            state: Some("st4te"),
            code_challenge: Some(CHALLENGE),
            code_challenge_method: Some("S256"),
            ..AuthorizeRequest::default()
        }
    }

    /// An OpenID Connect request from [`OIDC_CLIENT`]: scope `openid read`,
    /// a `nonce`, PKCE.
    pub fn openid_request() -> AuthorizeRequest<'static> {
        AuthorizeRequest {
            client_id: Some(OIDC_CLIENT),
            scope: Some("openid read"),
            nonce: Some("n-0S6_WzA2Mj"),
            ..Self::public_request()
        }
    }

    /// A session of the public client that has reached `ResourceChecked`.
    pub async fn checked_session(&self) -> Result<AuthorizationSession> {
        let (session, _) =
            self.authority.authorize(&Self::public_request(), None, None).await.map_err(|r| match r {
                crate::AuthorizeRejection::Page(e) | crate::AuthorizeRejection::Redirect { error: e, .. } => e,
            })?;
        match self.authority.login(session.id(), USERNAME, PASSWORD, None).await? {
            LoginOutcome::Consent(s) => Ok(*s),
            LoginOutcome::Denied(_) => Err(Error::AccessDenied("fixture resource check denied")),
            _ => Err(Error::IllegalTransition { from: "ResourceChecked", to: "Approved(remembered)" }),
        }
    }

    /// Runs the public client's flow up to an issued code; returns the session
    /// as stored and the code.
    pub async fn issued_code(&self) -> Result<(AuthorizationSession, String)> {
        let session = self.checked_session().await?;
        let location = self.authority.decide(session.id(), true).await?;
        let code = query_param(&location, "code").ok_or(Error::Internal("no code in redirect".into()))?;
        let (stored, _) = self.authority.session(session.id()).await?;
        Ok((stored, code))
    }

    /// The public client's credentials (method `none`).
    pub fn public_client() -> ClientCredentials<'static> {
        ClientCredentials { client_id: Some(PUBLIC_CLIENT), secret: None, assertion: None }
    }

    /// The device client's credentials (method `none`).
    pub fn device_client() -> ClientCredentials<'static> {
        ClientCredentials { client_id: Some(DEVICE_CLIENT), secret: None, assertion: None }
    }

    /// The confidential client's credentials.
    pub fn confidential_client() -> ClientCredentials<'static> {
        ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: Some(CONFIDENTIAL_SECRET), assertion: None }
    }

    /// The token request that redeems `code` for the public client.
    pub fn code_request(code: &str) -> TokenRequest<'_> {
        TokenRequest {
            grant_type: Some("authorization_code"),
            code: Some(code),
            redirect_uri: Some(REDIRECT_URI),
            code_verifier: Some(VERIFIER),
            ..TokenRequest::default()
        }
    }
}

/// The value of query parameter `name` in `url`, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn resource() -> Result<crate::ResourceUri> {
    crate::ResourceUri::parse(RESOURCE)
}

fn clients() -> Result<BTreeMap<ClientId, Arc<Client>>> {
    let redirect = RedirectUri::parse(REDIRECT_URI).map_err(|e| Error::Internal(e.to_string()))?;
    let logout = RedirectUri::parse(LOGOUT_URI).map_err(|e| Error::Internal(e.to_string()))?;
    let all: BTreeSet<GrantType> = GrantType::ALL.into();
    let plain = |id: &str| -> Result<ClientSettings> {
        Ok(ClientSettings {
            id: ClientId::parse(id)?,
            name: id.into(),
            secret: None,
            jwks: None,
            redirect: RedirectPolicy::Registered(vec![redirect.clone()]),
            grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
            scopes: Scope::parse("read write")?,
            scope_rule: ScopeRule::Subset,
            require_pkce: true,
            allowed_cors_origins: vec![],
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            resources: [resource()?].into(),
            post_logout_redirect_uris: Vec::new(),
            id_token_alg: IdTokenAlg::Rs256,
            // Every flow test walks the consent page: these clients never
            // remember it. OIDC_CLIENT does.
            consent: ConsentRule::Always,
        })
    };
    let specs = [
        ClientSettings { name: "Public App".into(), ..plain(PUBLIC_CLIENT)? },
        ClientSettings {
            name: "Confidential App".into(),
            secret: Some(SecretHash::new(format!("plain:{CONFIDENTIAL_SECRET}"))),
            grant_types: all.clone(),
            scopes: Scope::parse("read write admin")?,
            require_pkce: false,
            ..plain(CONFIDENTIAL_CLIENT)?
        },
        ClientSettings {
            name: "Keys App".into(),
            jwks: Some(format!(r#"{{"keys":[{{"kid":"{KEYS_CLIENT_KEY}"}}]}}"#)),
            grant_types: all,
            ..plain(KEYS_CLIENT)?
        },
        ClientSettings {
            name: "Keys OpenID App".into(),
            jwks: Some(format!(r#"{{"keys":[{{"kid":"{KEYS_CLIENT_KEY}"}}]}}"#)),
            scopes: Scope::parse("openid read")?,
            resources: BTreeSet::new(),
            consent: ConsentRule::Remember,
            ..plain(KEYS_OIDC_CLIENT)?
        },
        ClientSettings { dpop_bound_access_tokens: true, ..plain(DPOP_CLIENT)? },
        ClientSettings { require_pushed_authorization_requests: true, ..plain(PAR_CLIENT)? },
        ClientSettings {
            name: "Example Health Vault".into(),
            redirect: RedirectPolicy::HttpsHost(HOST_CLIENT.into()),
            grant_types: [GrantType::AuthorizationCode].into(),
            scopes: Scope::parse("1 4")?,
            scope_rule: ScopeRule::ExactlyOne,
            require_pkce: false,
            resources: BTreeSet::new(),
            ..plain(HOST_CLIENT)?
        },
        ClientSettings {
            name: "OpenID App".into(),
            scopes: Scope::parse("openid profile email phone read write")?,
            post_logout_redirect_uris: vec![logout.clone()],
            resources: BTreeSet::new(),
            consent: ConsentRule::Remember,
            ..plain(OIDC_CLIENT)?
        },
        ClientSettings {
            name: "First Party".into(),
            scopes: Scope::parse("openid profile read")?,
            post_logout_redirect_uris: vec![logout],
            id_token_alg: IdTokenAlg::ServerAlg,
            resources: BTreeSet::new(),
            consent: ConsentRule::Skip,
            ..plain(FIRST_PARTY_CLIENT)?
        },
        ClientSettings {
            name: "Living Room TV".into(),
            grant_types: [GrantType::DeviceCode, GrantType::RefreshToken].into(),
            scopes: Scope::parse("openid read write")?,
            consent: ConsentRule::Skip,
            ..plain(DEVICE_CLIENT)?
        },
    ];
    let mut map = BTreeMap::new();
    for s in specs {
        let client = Client::new(s).map_err(|e| Error::Internal(e.to_string()))?;
        map.insert(client.id().clone(), Arc::new(client));
    }
    Ok(map)
}
