//! The services the flows run on, besides the store: time, randomness, secret
//! verification, access-token and ID-token encoding, the signature checks of
//! DPoP proofs and client assertions, the resource availability check, and
//! where security events go.
//!
//! The core never reads the clock or the operating system's randomness itself,
//! so every flow is deterministic under test. Nor does it log: what an operator
//! must see goes to [`SecurityEvents`], and the front end decides how it is
//! written and counted.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::Account;
use crate::client::{Client, SecretHash};
use crate::error::Result;
use crate::types::{AccessTokenId, AccountId, ClientId, GrantId, Nonce, Scope, Sid};

/// The current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Cryptographically secure random bytes. Implementations must draw from a
/// CSPRNG (the operating system's, or one seeded from it); codes, refresh tokens
/// and session handles come from here.
pub trait SecretSource: Send + Sync {
    /// Fills `buf` with random bytes, or fails without filling it partly.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

crate::forward::forward_sync!(Clock {
    fn now(&self) -> OffsetDateTime;
});
crate::forward::forward_sync!(SecretSource {
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
});

/// Checks a presented secret or password against its stored hash.
///
/// Implementations compare in constant time and run slow hashes (Argon2id) off
/// the async executor, in a queue that is never shed for load.
#[async_trait]
pub trait SecretVerifier: Send + Sync {
    /// True when `presented` matches `stored`. With `stored = None` (an unknown
    /// user), it must spend the same time as a real verification and return
    /// `false`, so that timing does not tell unknown users from wrong passwords.
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool>;
}

crate::forward::forward_async!(SecretVerifier {
    fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool>;
});

/// Makes the hashes the store keeps, for secrets the admin API and dynamic
/// registration create. The runtime's implementation is `oauth-runtime`'s;
/// the core never chooses a hash format itself.
#[async_trait]
pub trait SecretHasher: Send + Sync {
    /// Hashes a password a person chose: Argon2id (slow on purpose).
    async fn hash_password(&self, password: &str) -> Result<SecretHash>;
    /// Hashes a machine-generated secret of at least 32 bytes, which carries
    /// enough entropy that a fast hash (`$sha256$`) is as safe.
    fn hash_secret(&self, secret: &str) -> Result<SecretHash>;
}

crate::forward::forward_async!(SecretHasher {
    fn hash_password(&self, password: &str) -> Result<SecretHash>;
} sync {
    fn hash_secret(&self, secret: &str) -> Result<SecretHash>;
});

/// The claims of an access token (RFC 9068), as the core sees them. Their
/// serde form uses these field names, not the JWT claim names: the JWT wire
/// form is `oauth-jwt`'s alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// `iss`
    pub issuer: String,
    /// `sub`: the account id for tokens with a resource owner, otherwise the
    /// `client_id`.
    pub subject: String,
    /// `aud`
    pub audience: String,
    /// `client_id`
    pub client_id: ClientId,
    /// `scope`
    pub scope: Scope,
    /// `iat`
    pub issued_at: OffsetDateTime,
    /// `exp`
    pub expires_at: OffsetDateTime,
    /// `jti`
    pub jti: AccessTokenId,
    /// `gid`, the private claim naming the grant: present exactly when the token
    /// has a resource owner (code and password grants, and their refreshes).
    pub grant: Option<GrantId>,
    /// `cnf.jkt` (RFC 9449 6.1): the RFC 7638 thumbprint of the key the token
    /// is bound to. A bound token is presented with the `DPoP` scheme and a
    /// proof signed by that key; `None` for a bearer token.
    pub jkt: Option<String>,
}

impl fmt::Debug for AccessTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenClaims")
            .field("sub", &self.subject)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope.to_string())
            .field("exp", &self.expires_at)
            .field("jti", &self.jti)
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// Mints and verifies access tokens. `oauth-jwt` implements it with JWTs.
#[async_trait]
pub trait AccessTokenCodec: Send + Sync {
    /// Encodes and signs the claims.
    async fn mint(&self, claims: &AccessTokenClaims) -> Result<String>;

    /// Checks signature, issuer, audience, type and time (against `now`, not the
    /// system clock) and returns the claims. Every failure is
    /// [`Error::InvalidToken`](crate::Error::InvalidToken).
    async fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims>;

    /// Whether `token` has the form of this codec's access tokens, without
    /// checking anything else: what revocation and introspection use to tell
    /// an access token from an opaque refresh token, so the core never needs to
    /// know what an access token looks like.
    fn is_access_token(&self, token: &str) -> bool;
}

crate::forward::forward_async!(AccessTokenCodec {
    fn mint(&self, claims: &AccessTokenClaims) -> Result<String>;
    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims>;
} sync {
    fn is_access_token(&self, token: &str) -> bool;
});

/// The claims of a DPoP proof (RFC 9449 4.2) whose form and signature were
/// checked: `typ` `dpop+jwt`, an asymmetric algorithm the server accepts, a
/// public `jwk` in the header that the signature verifies with. What the
/// claims must say about the request, the time and earlier proofs is the
/// flow's to check; only the flow makes a
/// [`DpopVerified`](crate::DpopVerified) from this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// The RFC 7638 SHA-256 thumbprint of the header's `jwk`, base64url.
    pub jkt: String,
    /// `jti`: the proof's unique id.
    pub jti: String,
    /// `htm`: the HTTP method the proof is for.
    pub htm: String,
    /// `htu`: the URL the proof is for, as sent.
    pub htu: String,
    /// `iat`: when the client made it.
    pub iat: OffsetDateTime,
    /// `ath`: base64url SHA-256 of the access token it presents, if any.
    pub ath: Option<String>,
    /// `nonce`: a nonce the server gave, if any.
    pub nonce: Option<String>,
}

/// The claims of a client assertion (RFC 7523 3) whose signature verified with
/// one of its client's registered keys. The flow checks what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    /// `iss`
    pub issuer: String,
    /// `sub`
    pub subject: String,
    /// `aud`, a string or each member of an array.
    pub audience: Vec<String>,
    /// `exp`
    pub expires_at: OffsetDateTime,
    /// `nbf`, if sent.
    pub not_before: Option<OffsetDateTime>,
    /// `iat`, if sent.
    pub issued_at: Option<OffsetDateTime>,
    /// `jti`
    pub jti: String,
}

/// The signature checks of the JWTs a client sends besides access tokens:
/// DPoP proofs (RFC 9449) and `private_key_jwt` client assertions (RFC 7523).
/// `oauth-jwt` implements it. Both checks are stateless: the algorithm is
/// pinned by the key (never `none` nor a symmetric one), and every other rule
/// (the request, the time, replay) is the flows'.
pub trait ProofChecker: Send + Sync {
    /// Checks a DPoP proof's form and signature. Every failure is
    /// [`Error::InvalidDpopProof`](crate::Error::InvalidDpopProof).
    fn dpop_proof(&self, proof: &str) -> Result<DpopProof>;

    /// Checks a client assertion's form and its signature by one of the
    /// client's registered keys ([`Client::jwks`]). Every failure is
    /// [`Error::InvalidClient`](crate::Error::InvalidClient).
    fn client_assertion(&self, assertion: &str, client: &Client) -> Result<AssertionClaims>;

    /// The `sub` of an assertion, unchecked: which client it claims to be,
    /// to look the client up when the request names none (RFC 7521 4.2).
    fn assertion_subject(&self, assertion: &str) -> Option<String>;

    /// The `alg` values accepted in DPoP proofs, for metadata and challenges.
    fn dpop_algorithms(&self) -> &[&'static str];

    /// The `alg` values accepted in client assertions, for metadata.
    fn assertion_algorithms(&self) -> &[&'static str];

    /// Checks a client's `jwks` (a JWK Set as JSON) as
    /// [`client_assertion`](Self::client_assertion) will read it: public
    /// signing keys of a type it verifies, at least one. So a client that
    /// registers for `private_key_jwt` with keys no assertion could be
    /// verified with is refused when it registers, not at every token
    /// request. A failure is
    /// [`Error::InvalidClientMetadata`](crate::Error::InvalidClientMetadata).
    fn check_client_keys(&self, jwks: &str) -> Result<()>;
}

crate::forward::forward_sync!(ProofChecker {
    fn dpop_proof(&self, proof: &str) -> Result<DpopProof>;
    fn client_assertion(&self, assertion: &str, client: &Client) -> Result<AssertionClaims>;
    fn assertion_subject(&self, assertion: &str) -> Option<String>;
    fn dpop_algorithms(&self) -> &[&'static str];
    fn assertion_algorithms(&self) -> &[&'static str];
    fn check_client_keys(&self, jwks: &str) -> Result<()>;
});

/// Which key signs a client's ID tokens (its `id_token_signed_response_alg`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdTokenAlg {
    /// RS256, the algorithm OpenID Connect requires every provider to offer,
    /// with the server's RSA key kept for ID tokens. The default.
    #[default]
    Rs256,
    /// The server's own `signing_alg`, the key that signs access tokens.
    ServerAlg,
}

/// The claims of an ID token (OpenID Connect Core 1.0 2), as the core sees
/// them. The codec adds `azp` (the audience), `amr` and `at_hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// `iss`
    pub issuer: String,
    /// `sub`: the account's id, as in its access tokens.
    pub subject: AccountId,
    /// `aud` and `azp`: the client.
    pub audience: ClientId,
    /// `iat`
    pub issued_at: OffsetDateTime,
    /// `exp`
    pub expires_at: OffsetDateTime,
    /// `auth_time`: when the user last entered a password.
    pub auth_time: OffsetDateTime,
    /// `nonce`, when the authorization request had one (never on refresh).
    pub nonce: Option<Nonce>,
    /// `sid`, the browser session's id, when the login started one.
    pub sid: Option<Sid>,
}

impl fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenClaims")
            .field("sub", &self.subject)
            .field("aud", &self.audience)
            .field("exp", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What an `id_token_hint` says, once its signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`
    pub subject: String,
    /// `aud`: the clients it was issued to.
    pub audience: Vec<String>,
}

/// Mints ID tokens and checks the ones clients hand back. `oauth-jwt`
/// implements it with JWTs.
#[async_trait]
pub trait IdTokenCodec: Send + Sync {
    /// Signs an ID token with the key `alg` names. `access_token` is the
    /// access token issued beside it, whose hash becomes `at_hash`.
    async fn mint_id_token(&self, claims: &IdTokenClaims, alg: IdTokenAlg, access_token: &str) -> Result<String>;

    /// Checks an `id_token_hint` (RP-Initiated Logout 1.0 2): the signature
    /// by one of the keys this server verifies with at `now`, and the issuer,
    /// ignoring the token's own expiry, as the specification allows. Every
    /// failure is [`Error::InvalidToken`](crate::Error::InvalidToken).
    async fn verify_id_token_hint(&self, token: &str, now: OffsetDateTime) -> Result<IdTokenHint>;

    /// The JWS name of the server's own `signing_alg` when it may sign ID
    /// tokens ([`IdTokenAlg::ServerAlg`]); `None` for an HMAC algorithm,
    /// whose key a client could not check with.
    fn server_alg(&self) -> Option<&'static str>;
}

crate::forward::forward_async!(IdTokenCodec {
    fn mint_id_token(&self, claims: &IdTokenClaims, alg: IdTokenAlg, access_token: &str) -> Result<String>;
    fn verify_id_token_hint(&self, token: &str, now: OffsetDateTime) -> Result<IdTokenHint>;
} sync {
    fn server_alg(&self) -> Option<&'static str>;
});

/// The answer of a resource availability check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceDecision {
    /// Go on to consent, with this scope (equal to or narrower than asked).
    Allow(Scope),
    /// End the flow with `access_denied` at the client.
    Deny,
}

/// Decides whether this provider holds data of the requested scope for the
/// user (MedMij step 4). The default, [`AllowAll`], allows everything asked.
#[async_trait]
pub trait ResourceCheck: Send + Sync {
    /// Decides for `account` asking, through `client`, for `scope`.
    async fn check(
        &self,
        client: &Client,
        account: &Account,
        scope: &Scope,
        now: OffsetDateTime,
    ) -> Result<ResourceDecision>;
}

crate::forward::forward_async!(ResourceCheck {
    fn check(&self, client: &Client, account: &Account, scope: &Scope, now: OffsetDateTime) -> Result<ResourceDecision>;
});

/// A [`ResourceCheck`] that allows the scope as asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl ResourceCheck for AllowAll {
    async fn check(&self, _: &Client, _: &Account, scope: &Scope, _: OffsetDateTime) -> Result<ResourceDecision> {
        Ok(ResourceDecision::Allow(scope.clone()))
    }
}

/// Something the flows saw that is an attack, or a leak, under way: the
/// operator should hear of it, beyond the error the client gets.
///
/// To add a kind (the DPoP and client-assertion replays of the second stage):
/// add a variant here and its [`SecurityEventKind`], and report it with
/// `Authority::report` where the flow detects it; the front end logs and counts
/// every kind without further change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// An authorization code was presented again after it was redeemed
    /// (RFC 6749 4.1.2, RFC 9700 4.5): someone else holds it. The tokens minted
    /// from it are revoked.
    CodeReplayed {
        /// The client that presented it this time.
        client_id: ClientId,
        /// The grant its first redemption made, now revoked.
        grant: GrantId,
    },
    /// A refresh token that was already rotated was presented again
    /// (RFC 9700 4.14.2): two parties hold the family. The family is revoked.
    RefreshTokenReused {
        /// The client the family belongs to.
        client_id: ClientId,
        /// The revoked grant.
        grant: GrantId,
    },
    /// The throttle refused an attempt: an account name, client or address is
    /// past its failure limit (a guessing attack, or a locked-out user). Each
    /// refused attempt is one event.
    ThrottleLockout {
        /// Which limit refused it.
        subject: ThrottleSubject,
        /// The address the attempt came from, when the caller knows it.
        peer: Option<IpAddr>,
    },
    /// A DPoP proof was presented again (RFC 9449 11.1): its `jti` is in the
    /// replay cache. Someone captured a request; the proof is refused.
    DpopProofReplayed {
        /// The thumbprint of the proof's key (public: it is in every bound
        /// token).
        jkt: String,
    },
    /// A `private_key_jwt` client assertion was presented again (RFC 7523
    /// 3, item 7): its `jti` is in the replay cache. The client is refused.
    ClientAssertionReplayed {
        /// The client the assertion names.
        client_id: ClientId,
    },
}

impl SecurityEvent {
    /// The event's kind, a label with a fixed set of values.
    pub fn kind(&self) -> SecurityEventKind {
        match self {
            SecurityEvent::CodeReplayed { .. } => SecurityEventKind::CodeReplay,
            SecurityEvent::RefreshTokenReused { .. } => SecurityEventKind::RefreshTokenReuse,
            SecurityEvent::ThrottleLockout { .. } => SecurityEventKind::ThrottleLockout,
            SecurityEvent::DpopProofReplayed { .. } => SecurityEventKind::DpopProofReplay,
            SecurityEvent::ClientAssertionReplayed { .. } => SecurityEventKind::ClientAssertionReplay,
        }
    }
}

/// The kinds of [`SecurityEvent`], for metric labels and log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SecurityEventKind {
    /// [`SecurityEvent::CodeReplayed`]: `code_replay`.
    CodeReplay,
    /// [`SecurityEvent::RefreshTokenReused`]: `refresh_token_reuse`.
    RefreshTokenReuse,
    /// [`SecurityEvent::ThrottleLockout`]: `throttle_lockout`.
    ThrottleLockout,
    /// [`SecurityEvent::DpopProofReplayed`]: `dpop_proof_replay`.
    DpopProofReplay,
    /// [`SecurityEvent::ClientAssertionReplayed`]: `client_assertion_replay`.
    ClientAssertionReplay,
}

impl SecurityEventKind {
    /// Every kind, so that a counter can show each at 0 before it happens.
    pub const ALL: [SecurityEventKind; 5] = [
        SecurityEventKind::CodeReplay,
        SecurityEventKind::RefreshTokenReuse,
        SecurityEventKind::ThrottleLockout,
        SecurityEventKind::DpopProofReplay,
        SecurityEventKind::ClientAssertionReplay,
    ];

    /// The kind as a label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::CodeReplay => "code_replay",
            SecurityEventKind::RefreshTokenReuse => "refresh_token_reuse",
            SecurityEventKind::ThrottleLockout => "throttle_lockout",
            SecurityEventKind::DpopProofReplay => "dpop_proof_replay",
            SecurityEventKind::ClientAssertionReplay => "client_assertion_replay",
        }
    }
}

impl fmt::Display for SecurityEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which throttle limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleSubject {
    /// The failures counted against an account name (known or not).
    Account,
    /// The failures counted against a `client_id`.
    Client,
    /// The failures counted against the peer address.
    Address,
}

impl ThrottleSubject {
    /// The subject as a log field value.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleSubject::Account => "account",
            ThrottleSubject::Client => "client",
            ThrottleSubject::Address => "address",
        }
    }
}

/// Where the flows report [`SecurityEvent`]s. The server's implementation
/// (`oauth-http`'s `SecurityEventLog`) writes each as a WARN line and counts it
/// in `oauth_security_events_total{kind}`. Reporting must not fail or block: a
/// flow reports and goes on to answer the client.
pub trait SecurityEvents: Send + Sync {
    /// Takes one event.
    fn report(&self, event: &SecurityEvent);
}

crate::forward::forward_sync!(SecurityEvents {
    fn report(&self, event: &SecurityEvent) -> ();
});

/// [`SecurityEvents`] that drops every event: for embedders with no log of
/// their own, and tests that do not look.
#[derive(Debug, Clone, Copy, Default)]
pub struct IgnoreEvents;

impl SecurityEvents for IgnoreEvents {
    fn report(&self, _: &SecurityEvent) {}
}
