//! The token endpoint's grants (RFC 6749 4.1.3, 4.3, 4.4 and 6).

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::services::SecurityEvent;
use crate::session::{AuthorizationSession, SessionState};
use crate::store::{CodeRedemption, Grant, RefreshRecord, Rotation};
use crate::types::{
    AccountId, CodeChallenge, CodeVerifier, GrantId, GrantType, PkceVerified, ResourceUri, Scope, TokenHash,
};

use super::client_auth::AuthenticatedClient;

/// The body parameters of `POST /token`, as sent (client credentials apart).
#[derive(Clone, Copy, Default)]
pub struct TokenRequest<'a> {
    /// `grant_type`
    pub grant_type: Option<&'a str>,
    /// `code` (authorization_code)
    pub code: Option<&'a str>,
    /// `redirect_uri` (authorization_code)
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier` (authorization_code)
    pub code_verifier: Option<&'a str>,
    /// `refresh_token` (refresh_token)
    pub refresh_token: Option<&'a str>,
    /// `scope` (refresh_token, client_credentials, password)
    pub scope: Option<&'a str>,
    /// `username` (password)
    pub username: Option<&'a str>,
    /// `password` (password)
    pub password: Option<&'a str>,
    /// `resource` (RFC 8707): at the code and refresh grants it must be the
    /// authorized one; at client credentials and password it is checked as at
    /// `/authorize`.
    pub resource: Option<&'a str>,
}

impl std::fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Codes, tokens and passwords never reach a log through Debug.
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// A successful token response (RFC 6749 5.1). `scope` is always present. The
/// front end decides its JSON shape.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The scope of the access token.
    pub scope: String,
    /// A new refresh token, when the grant and the client allow one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Runs a token request for an authenticated client. `peer` feeds the
    /// password grant's throttle.
    pub async fn token(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        peer: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        let grant = GrantType::parse(req.grant_type.ok_or(Error::InvalidRequest("grant_type is required"))?)?;
        if !self.settings.grants.contains(&grant) {
            return Err(Error::UnsupportedGrantType);
        }
        if !client.client().allows(grant) {
            return Err(Error::UnauthorizedClient("the client may not use this grant type"));
        }
        match grant {
            GrantType::AuthorizationCode => self.code_grant(client, req).await,
            GrantType::RefreshToken => self.refresh_grant(client, req).await,
            GrantType::ClientCredentials => self.client_credentials_grant(client, req).await,
            GrantType::Password => self.password_grant(client, req, peer).await,
        }
    }

    async fn code_grant(&self, authenticated: &AuthenticatedClient, req: &TokenRequest<'_>) -> Result<TokenResponse> {
        let code = req.code.ok_or(Error::InvalidRequest("code is required"))?;
        let redirect_uri = req.redirect_uri.ok_or(Error::InvalidRequest("redirect_uri is required"))?;
        let verifier = req.code_verifier.map(CodeVerifier::parse).transpose()?;
        let client = authenticated.client();
        let now = self.now();
        let grant_id = self.new_grant_id()?;
        let expires_at = self.grant_expiry(self.issues_refresh_tokens(client), now);

        // The code is consumed before the checks below, so a failed attempt
        // still spends it: a code is good for one try, whoever makes it.
        let session = match self.services.store.take_code(&TokenHash::of(code), grant_id, expires_at, now).await? {
            CodeRedemption::Redeemed(session) => *session,
            CodeRedemption::Replayed(grant) => {
                // RFC 6749 4.1.2, RFC 9700 4.5: revoke what the first use minted.
                self.report(SecurityEvent::CodeReplayed { client_id: client.id().clone(), grant });
                self.services.store.revoke_grant(grant).await?;
                return Err(Error::InvalidGrant("the code was already used; its tokens are revoked"));
            }
            _ => return Err(Error::InvalidGrant("unknown or expired code")),
        };
        if session.client_id() != client.id() {
            return Err(Error::InvalidGrant("the code was issued to another client"));
        }
        if session.redirect_uri().as_str() != redirect_uri {
            return Err(Error::InvalidGrant("redirect_uri differs from the authorization request"));
        }
        same_resource(req.resource, session.resource())?;
        let pkce = CodeChallenge::verify_binding(session.code_challenge(), verifier.as_ref())?;
        let tokens = self.exchange_code(authenticated, &session, pkce, grant_id, expires_at, now).await?;
        // A replay may have come between our redemption and storing the grant,
        // when its revocation found nothing to revoke. It marked the session
        // first, and we stored the grant first: one of us sees the other.
        let replayed = self.services.store.session(session.id(), now).await?.is_some_and(|s| s.is_replayed());
        if replayed {
            self.services.store.revoke_grant(grant_id).await?;
            return Err(Error::InvalidGrant("the code was used twice; its tokens are revoked"));
        }
        Ok(tokens)
    }

    async fn password_grant(
        &self,
        authenticated: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        peer: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        let username = req.username.ok_or(Error::InvalidRequest("username is required"))?;
        let password = req.password.ok_or(Error::InvalidRequest("password is required"))?;
        let client = authenticated.client();
        let resource = self.resolve_resource(client, req.resource)?;
        let scope = self.resolve_scope_for(client, req.scope, resource.as_ref())?;
        let account = self.check_password(username, password, peer).await?;
        let now = self.now();
        let grant_id = self.new_grant_id()?;
        let expires_at = self.grant_expiry(self.issues_refresh_tokens(client), now);
        self.issue_for_account(authenticated, grant_id, account.id, (scope, resource), expires_at, now).await
    }

    /// Issues the tokens of a redeemed code: the last step of RFC 6749 4.1.3.
    /// It takes the proof that the code's PKCE binding was checked, by value,
    /// so no path to the code's tokens can skip that check.
    async fn exchange_code(
        &self,
        client: &AuthenticatedClient,
        session: &AuthorizationSession,
        pkce: PkceVerified,
        grant_id: GrantId,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TokenResponse> {
        if pkce.challenge() != session.code_challenge() {
            return Err(Error::Internal("a PKCE proof for another code".into()));
        }
        let SessionState::CodeIssued { account, scope, .. } = session.state().clone() else {
            return Err(Error::InvalidGrant("unknown or expired code"));
        };
        self.active_account(account).await?;
        let resource = session.resource().cloned();
        self.issue_for_account(client, grant_id, account, (scope, resource), expires_at, now).await
    }

    async fn client_credentials_grant(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
    ) -> Result<TokenResponse> {
        let client = client.client();
        let resource = self.resolve_resource(client, req.resource)?;
        let scope = self.resolve_scope_for(client, req.scope, resource.as_ref())?;
        let now = self.now();
        let (access_token, claims) =
            self.mint_access_token(client.id(), client.id().to_string(), scope, None, resource.as_ref(), now).await?;
        Ok(self.response(access_token, &claims.scope, None))
    }

    async fn refresh_grant(&self, client: &AuthenticatedClient, req: &TokenRequest<'_>) -> Result<TokenResponse> {
        let presented = req.refresh_token.ok_or(Error::InvalidRequest("refresh_token is required"))?;
        let requested = req.scope.map(Scope::parse).transpose()?;
        let client = client.client();
        let now = self.now();
        let old = TokenHash::of(presented);
        let found = self.services.store.refresh_token(&old, now).await?;
        let found = found.ok_or(Error::InvalidGrant("unknown or expired refresh token"))?;
        let grant = found.grant;
        if grant.revoked {
            return Err(Error::InvalidGrant("the refresh token was revoked"));
        }
        if &grant.client_id != client.id() {
            return Err(Error::InvalidGrant("the refresh token was issued to another client"));
        }
        same_resource(req.resource, grant.resource.as_ref())?;
        if found.record.rotated {
            // No grace period: a rotated token presented again means two parties
            // hold the family.
            self.report(SecurityEvent::RefreshTokenReused { client_id: client.id().clone(), grant: grant.id });
            self.services.store.revoke_grant(grant.id).await?;
            return Err(Error::InvalidGrant("the refresh token was already used; its family is revoked"));
        }
        let scope = match requested {
            None => grant.scope.clone(),
            Some(s) if s.is_subset(&grant.scope) => s,
            Some(_) => return Err(Error::InvalidScope("the scope exceeds the original grant")),
        };
        let account = grant.account.ok_or(Error::InvalidGrant("unknown or expired refresh token"))?;
        self.active_account(account).await?;

        let (refresh_token, hash) = self.opaque_secret()?;
        let next = RefreshRecord {
            hash,
            grant: grant.id,
            generation: found.record.generation + 1,
            issued_at: now,
            expires_at: (now + self.settings.refresh_token_ttl).min(grant.expires_at),
            rotated: false,
        };
        match self.services.store.rotate_refresh(&old, &next, now).await? {
            Rotation::Rotated => {}
            Rotation::Reused(_) => {
                // Another request rotated it first; the store revoked the family.
                self.report(SecurityEvent::RefreshTokenReused { client_id: client.id().clone(), grant: grant.id });
                return Err(Error::InvalidGrant("the refresh token was already used; its family is revoked"));
            }
            _ => return Err(Error::InvalidGrant("unknown or expired refresh token")),
        }
        let (access_token, claims) = self
            .mint_access_token(client.id(), account.to_string(), scope, Some(grant.id), grant.resource.as_ref(), now)
            .await?;
        Ok(self.response(access_token, &claims.scope, Some(refresh_token)))
    }

    /// The end of a grant made now: the family's absolute lifetime when it will
    /// have refresh tokens, otherwise the life of its one access token.
    fn grant_expiry(&self, refreshable: bool, now: OffsetDateTime) -> OffsetDateTime {
        let ttl = if refreshable { self.settings.refresh_token_max_lifetime } else { self.settings.access_token_ttl };
        now + ttl.max(self.settings.access_token_ttl)
    }

    /// Stores a new grant for `account` of `scope` for `resource` (with a
    /// first refresh token when the client may refresh) and mints its access
    /// token.
    async fn issue_for_account(
        &self,
        client: &AuthenticatedClient,
        grant_id: GrantId,
        account: AccountId,
        (scope, resource): (Scope, Option<ResourceUri>),
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TokenResponse> {
        let client = client.client();
        let grant = Grant {
            id: grant_id,
            client_id: client.id().clone(),
            account: Some(account),
            scope: scope.clone(),
            created_at: now,
            expires_at,
            revoked: false,
            resource: resource.clone(),
        };
        let refresh = if self.issues_refresh_tokens(client) {
            let (token, hash) = self.opaque_secret()?;
            let expires_at = (now + self.settings.refresh_token_ttl).min(expires_at);
            let record =
                RefreshRecord { hash, grant: grant_id, generation: 0, issued_at: now, expires_at, rotated: false };
            Some((token, record))
        } else {
            None
        };
        self.services.store.insert_grant(&grant, refresh.as_ref().map(|(_, r)| r)).await?;
        let (access_token, claims) = self
            .mint_access_token(client.id(), account.to_string(), scope, Some(grant_id), resource.as_ref(), now)
            .await?;
        Ok(self.response(access_token, &claims.scope, refresh.map(|(t, _)| t)))
    }

    /// Refuses a grant whose account is gone or disabled.
    async fn active_account(&self, id: AccountId) -> Result<()> {
        match self.services.store.account(id).await? {
            Some(a) if !a.disabled => Ok(()),
            _ => Err(Error::InvalidGrant("the account is disabled")),
        }
    }

    fn response(&self, access_token: String, scope: &Scope, refresh_token: Option<String>) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl.whole_seconds(),
            scope: scope.to_string(),
            refresh_token,
        }
    }
}

/// RFC 8707 at the code and refresh grants: a `resource` named at `/token`
/// must be the one the grant was authorized for (SPEC-2); the tokens are for
/// the authorized one whether or not it is named again.
fn same_resource(requested: Option<&str>, authorized: Option<&ResourceUri>) -> Result<()> {
    match requested {
        None => Ok(()),
        Some(r) if authorized.is_some_and(|a| a.as_str() == r) => Ok(()),
        Some(_) => Err(Error::InvalidTarget("the resource is not the one authorized")),
    }
}
