//! The services the flows run on, besides the store: time, randomness, secret
//! verification, access-token encoding and the resource availability check.
//!
//! The core never reads the clock or the operating system's randomness itself,
//! so every flow is deterministic under test.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::Account;
use crate::client::{Client, SecretHash};
use crate::error::Result;
use crate::types::{AccessTokenId, ClientId, GrantId, Scope};

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
}

impl fmt::Debug for AccessTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenClaims")
            .field("sub", &self.subject)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope.to_string())
            .field("exp", &self.expires_at)
            .field("jti", &self.jti)
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
