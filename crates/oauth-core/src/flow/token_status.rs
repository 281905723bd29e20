//! What a presented token is worth: revocation (RFC 7009), introspection
//! (RFC 7662) and bearer authentication for resource servers (RFC 6750).
//!
//! The access-token codec says whether a token has the form of its access
//! tokens ([`AccessTokenCodec::is_access_token`]); everything else is looked up
//! as an opaque refresh token. That tells the two apart without trusting
//! `token_type_hint`, which RFC 7009 2.1 allows a server to ignore, and without
//! the core knowing what an access token looks like.

use crate::account::Account;
use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::services::{AccessTokenClaims, AccessTokenCodec};
use crate::types::{AccountId, TokenHash};

use super::client_auth::AuthenticatedClient;
use super::dpop::DpopRequest;

/// An RFC 7662 introspection response. Inactive tokens carry `active: false`
/// alone, so a caller learns nothing about why. The front end decides its JSON
/// shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is usable now.
    pub active: bool,
    /// For an access token, its type as a token response gives it (RFC 7662
    /// 2.2, RFC 9449 6.2): `Bearer`, or `DPoP` for a bound one. Refresh
    /// tokens have none.
    pub token_type: Option<&'static str>,
    /// `access_token` or `refresh_token` (SPEC-2).
    pub token_use: Option<&'static str>,
    /// `cnf.jkt`: the thumbprint of the DPoP key the token is bound to.
    pub cnf_jkt: Option<String>,
    /// The client it was issued to.
    pub client_id: Option<String>,
    /// Its scope.
    pub scope: Option<String>,
    /// Its subject.
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// Issue time, seconds since the epoch.
    pub iat: Option<i64>,
    /// The issuer.
    pub iss: Option<String>,
    /// The audience (access tokens only).
    pub aud: Option<String>,
    /// The token id (access tokens only).
    pub jti: Option<String>,
}

/// Who a valid bearer token speaks for.
#[derive(Debug, Clone)]
pub struct BearerPrincipal {
    /// The verified claims.
    pub claims: AccessTokenClaims,
    /// The resource owner, for tokens that have one (not `client_credentials`).
    pub account: Option<Account>,
}

impl Authority {
    /// Checks a bearer token meant for this server (its `aud` is the configured
    /// audience, as at `/userinfo`): see [`Authority::authenticate_bearer_for`].
    pub async fn authenticate_bearer(&self, token: &str) -> Result<BearerPrincipal> {
        self.authenticate_bearer_for(token, &self.settings.audience).await
    }

    /// Checks a token presented with the `Bearer` scheme and meant for
    /// `audience` (a resource server embedding the core passes its resource
    /// URI): everything [`Authority::access_token`] checks, that the token's
    /// `aud` is `audience`, so a token asked for one resource (RFC 8707) is
    /// refused by every other, and that it is not DPoP-bound (RFC 9449 7.2: a
    /// bound token is [`Error::BoundTokenAsBearer`]). Every other failure is
    /// [`Error::InvalidToken`].
    pub async fn authenticate_bearer_for(&self, token: &str, audience: &str) -> Result<BearerPrincipal> {
        let principal = self.access_token(token).await?;
        if principal.claims.audience != audience {
            return Err(Error::InvalidToken("the token is for another audience"));
        }
        if principal.claims.jkt.is_some() {
            return Err(Error::BoundTokenAsBearer);
        }
        Ok(principal)
    }

    /// Checks a token presented with the `DPoP` scheme and its proof
    /// (RFC 9449 7.1) at this server (its `aud` is the configured audience, as
    /// at `/userinfo`): the token as [`Authority::access_token`], then it must
    /// be bound, and the proof must be made for this request (its method,
    /// URL and this token's hash in `ath`) by the token's key, and not be
    /// seen before. A bad token is [`Error::InvalidToken`], a bad proof
    /// [`Error::InvalidDpopProof`].
    pub async fn authenticate_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<BearerPrincipal> {
        let principal = self.access_token(token).await?;
        if principal.claims.audience != self.settings.audience {
            return Err(Error::InvalidToken("the token is for another audience"));
        }
        let Some(jkt) = principal.claims.jkt.as_deref() else {
            return Err(Error::InvalidToken("the token is not DPoP-bound: send it with the Bearer scheme"));
        };
        let request = DpopRequest { method, url, access_token: Some(token), issuing: false };
        self.check_dpop(proof, &request, Some(jkt)).await?;
        Ok(principal)
    }

    /// Checks an access token of this server for any audience: signature and
    /// time, then revocation, then that its account (if any) still exists and
    /// is enabled. Every failure is [`Error::InvalidToken`]; a store failure
    /// is [`Error::Store`]. Introspection uses it: a resource server learns the
    /// `aud` and judges it itself.
    pub async fn access_token(&self, token: &str) -> Result<BearerPrincipal> {
        let now = self.now();
        let claims = self.services.tokens.verify(token, now).await?;
        let revoked = self.services.store.access_token_revoked(claims.jti, claims.grant, now).await?;
        if revoked {
            return Err(Error::InvalidToken("the token was revoked"));
        }
        // A client deleted through the admin API takes its tokens with it.
        if self.services.clients.client(&claims.client_id).await?.is_none() {
            return Err(Error::InvalidToken("the client is no longer registered"));
        }
        let account = match claims.grant {
            None => None,
            Some(_) => {
                let id = AccountId::parse(&claims.subject).ok_or(Error::InvalidToken("malformed subject"))?;
                match self.services.store.account(id).await? {
                    Some(a) if !a.disabled => Some(a),
                    _ => return Err(Error::InvalidToken("the account is disabled")),
                }
            }
        };
        Ok(BearerPrincipal { claims, account })
    }

    /// Revokes `token` for `client` (RFC 7009). A refresh token takes its whole
    /// family and the access tokens minted from it with it; an access token is
    /// refused by `jti` until it expires, plus the leeway. Unknown, invalid and foreign tokens
    /// are answered with success and left alone, as RFC 7009 2.2 asks.
    pub async fn revoke(&self, client: &AuthenticatedClient, token: Option<&str>) -> Result<()> {
        let token = token.ok_or(Error::InvalidRequest("token is required"))?;
        let now = self.now();
        let own = client.client().id();
        if self.services.tokens.is_access_token(token) {
            match self.services.tokens.verify(token, now).await {
                Ok(claims) if &claims.client_id == own => {
                    // Kept as long as a verifier may still accept the token:
                    // until its expiry plus the leeway.
                    let until = claims.expires_at + self.settings.leeway;
                    self.services.store.revoke_access_token(claims.jti, until).await?;
                }
                Ok(_) | Err(Error::InvalidToken(_)) => {}
                Err(e) => return Err(e),
            }
        } else if let Some(found) = self.services.store.refresh_token(&TokenHash::of(token), now).await? {
            if &found.grant.client_id == own {
                self.services.store.revoke_grant(found.grant.id).await?;
            }
        }
        Ok(())
    }

    /// Introspects `token` for a confidential client (RFC 7662). Public clients
    /// get [`Error::InvalidClient`]; any confidential client may introspect any
    /// token. Expiry is judged by the server's own clock, without the leeway
    /// the verifier allows for other clocks: a token past its `exp` is
    /// inactive.
    pub async fn introspect(&self, client: &AuthenticatedClient, token: Option<&str>) -> Result<Introspection> {
        if !client.client().is_confidential() {
            return Err(Error::InvalidClient);
        }
        let token = token.ok_or(Error::InvalidRequest("token is required"))?;
        if self.services.tokens.is_access_token(token) {
            return match self.access_token(token).await {
                Ok(p) if self.now() < p.claims.expires_at => Ok(self.access_introspection(&p.claims)),
                Ok(_) => Ok(Introspection::default()),
                Err(Error::InvalidToken(_)) => Ok(Introspection::default()),
                Err(e) => Err(e),
            };
        }
        let now = self.now();
        let Some(found) = self.services.store.refresh_token(&TokenHash::of(token), now).await? else {
            return Ok(Introspection::default());
        };
        // The account as the store read it with the token.
        let account_active = match found.grant.account {
            Some(id) => found.account.as_ref().is_some_and(|a| a.id == id && !a.disabled),
            None => true,
        };
        let (record, grant) = (found.record, found.grant);
        if record.rotated || grant.revoked || !account_active {
            return Ok(Introspection::default());
        }
        let sub = grant.account.map_or_else(|| grant.client_id.to_string(), |a| a.to_string());
        Ok(Introspection {
            active: true,
            token_type: None,
            token_use: Some("refresh_token"),
            cnf_jkt: grant.dpop_jkt.clone(),
            client_id: Some(grant.client_id.to_string()),
            scope: Some(grant.scope.to_string()),
            sub: Some(sub),
            exp: Some(record.expires_at.min(grant.expires_at).unix_timestamp()),
            iat: Some(record.issued_at.unix_timestamp()),
            iss: Some(self.settings.issuer.clone()),
            aud: None,
            jti: None,
        })
    }

    fn access_introspection(&self, c: &AccessTokenClaims) -> Introspection {
        Introspection {
            active: true,
            token_type: Some(if c.jkt.is_some() { "DPoP" } else { "Bearer" }),
            token_use: Some("access_token"),
            cnf_jkt: c.jkt.clone(),
            client_id: Some(c.client_id.to_string()),
            scope: Some(c.scope.to_string()),
            sub: Some(c.subject.clone()),
            exp: Some(c.expires_at.unix_timestamp()),
            iat: Some(c.issued_at.unix_timestamp()),
            iss: Some(c.issuer.clone()),
            aud: Some(c.audience.clone()),
            jti: Some(c.jti.to_string()),
        }
    }
}
