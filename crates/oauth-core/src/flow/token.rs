//! The token endpoint's grants (RFC 6749 4.1.3, 4.3, 4.4 and 6), and the
//! DPoP binding of what they issue (RFC 9449 5).
//!
//! A grant given a [`DpopVerified`] binds its access token to the proof's key
//! (`cnf.jkt`, `token_type` `DPoP`); so does a refresh of a family bound to a
//! key, which must prove that key. A client that must use DPoP
//! (`dpop_bound_access_tokens`, FAPI 2.0) gets nothing without a proof, and a
//! code bound to a key (`dpop_jkt`) is redeemed only with a proof by that key.

use std::net::IpAddr;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::services::SecurityEvent;
use crate::session::{Authentication, AuthorizationSession, SessionState};
use crate::store::{CodeRedemption, Grant, Record, RecordKind, RefreshLookup, RefreshRecord, Rotation};
use crate::types::{
    AccountId, CodeChallenge, CodeVerifier, DpopVerified, GrantId, GrantType, Nonce, PkceVerified, ResourceUri, Scope,
    TokenHash,
};

use super::client_auth::AuthenticatedClient;

/// Refresh tokens rotated within the reuse grace: one record per rotated
/// token, `open` until a second successor is issued, then `used`.
pub(crate) const REFRESH_GRACE: RecordKind = RecordKind::new("refresh_grace");

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
    /// `device_code` (RFC 8628 3.4)
    pub device_code: Option<&'a str>,
    /// `resource` (RFC 8707): at the code, refresh and device grants it must be the
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
    /// `Bearer`, or `DPoP` for an access token bound to a key (RFC 9449 5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The scope of the access token.
    pub scope: String,
    /// A new refresh token, when the grant and the client allow one.
    pub refresh_token: Option<String>,
    /// An ID token, for a code or device flow with `openid` and its refreshes.
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Runs a token request for an authenticated client, with the checked
    /// DPoP proof of the request if it had one. `peer` feeds the password
    /// grant's throttle.
    pub async fn token(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        dpop: Option<DpopVerified>,
        peer: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        let grant = GrantType::parse(req.grant_type.ok_or(Error::InvalidRequest("grant_type is required"))?)?;
        if !self.settings.grants.contains(&grant) {
            return Err(Error::UnsupportedGrantType);
        }
        if !client.client().allows(grant) {
            return Err(Error::UnauthorizedClient("the client may not use this grant type"));
        }
        if dpop.is_none() && self.requires_dpop(client.client()) {
            return Err(Error::InvalidDpopProof("this client's tokens must be DPoP-bound: a DPoP proof is required"));
        }
        let dpop = dpop.as_ref();
        match grant {
            GrantType::AuthorizationCode => self.code_grant(client, req, dpop).await,
            GrantType::RefreshToken => self.refresh_grant(client, req, dpop).await,
            GrantType::ClientCredentials => self.client_credentials_grant(client, req, dpop).await,
            GrantType::Password => self.password_grant(client, req, dpop, peer).await,
            GrantType::DeviceCode => self.device_code_grant(client, req, dpop).await,
        }
    }

    async fn code_grant(
        &self,
        authenticated: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        dpop: Option<&DpopVerified>,
    ) -> Result<TokenResponse> {
        let code = req.code.ok_or(Error::InvalidRequest("code is required"))?;
        let redirect_uri = req.redirect_uri.ok_or(Error::InvalidRequest("redirect_uri is required"))?;
        let verifier = req.code_verifier.map(CodeVerifier::parse).transpose()?;
        let client = authenticated.client();
        let now = self.now();
        let grant_id = self.new_grant_id()?;
        let expires_at = self.grant_retention(self.issues_refresh_tokens(client), now);

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
        if let Some(bound) = session.dpop_jkt() {
            // RFC 9449 10: a code bound to a key goes only to its holder.
            let same = dpop.is_some_and(|d| bool::from(d.jkt().as_bytes().ct_eq(bound.as_bytes())));
            if !same {
                return Err(Error::InvalidDpopProof(
                    "the code is bound to a DPoP key: a proof by that key is required",
                ));
            }
        }
        let tokens = self.exchange_code(authenticated, &session, pkce, dpop, grant_id, expires_at, now).await?;
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
        dpop: Option<&DpopVerified>,
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
        let expires_at = self.grant_retention(self.issues_refresh_tokens(client), now);
        let grant = self.new_grant(client, grant_id, account.id, (scope, resource), None, expires_at, now);
        self.issue_for_account(authenticated, grant, dpop, None, now).await
    }

    /// Issues the tokens of a redeemed code: the last step of RFC 6749 4.1.3.
    /// It takes the proof that the code's PKCE binding was checked, by value,
    /// so no path to the code's tokens can skip that check.
    #[allow(clippy::too_many_arguments, reason = "each argument is a checked part of one exchange")]
    async fn exchange_code(
        &self,
        client: &AuthenticatedClient,
        session: &AuthorizationSession,
        pkce: PkceVerified,
        dpop: Option<&DpopVerified>,
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
        // A session stored before OpenID Connect has no authentication; its
        // login happened after the session opened.
        let authentication =
            session.authentication().copied().unwrap_or(Authentication { auth_time: session.created_at(), sid: None });
        let grant = self.new_grant(
            client.client(),
            grant_id,
            account,
            (scope, resource),
            Some(authentication),
            expires_at,
            now,
        );
        self.issue_for_account(client, grant, dpop, session.nonce(), now).await
    }

    async fn client_credentials_grant(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        dpop: Option<&DpopVerified>,
    ) -> Result<TokenResponse> {
        let client = client.client();
        let resource = self.resolve_resource(client, req.resource)?;
        let scope = self.resolve_scope_for(client, req.scope, resource.as_ref())?;
        let now = self.now();
        let jkt = dpop.map(DpopVerified::jkt);
        let (access_token, claims) = self
            .mint_access_token(client.id(), client.id().to_string(), scope, None, resource.as_ref(), jkt, now)
            .await?;
        Ok(self.response(access_token, &claims, None, None))
    }

    async fn refresh_grant(
        &self,
        client: &AuthenticatedClient,
        req: &TokenRequest<'_>,
        dpop: Option<&DpopVerified>,
    ) -> Result<TokenResponse> {
        let presented = req.refresh_token.ok_or(Error::InvalidRequest("refresh_token is required"))?;
        let requested = req.scope.map(Scope::parse).transpose()?;
        let client = client.client();
        let now = self.now();
        let old = TokenHash::of(presented);
        let found = self.services.store.refresh_token(&old, now).await?;
        let found = found.ok_or(Error::InvalidGrant("unknown or expired refresh token"))?;
        let grant = &found.grant;
        if grant.revoked {
            return Err(Error::InvalidGrant("the refresh token was revoked"));
        }
        if &grant.client_id != client.id() {
            return Err(Error::InvalidGrant("the refresh token was issued to another client"));
        }
        same_resource(req.resource, grant.resource.as_ref())?;
        // Checked before reuse detection: a bound token in the hands of
        // someone without its key is worthless, and must not be able to
        // revoke its holder's family either.
        if let Some(bound) = &grant.dpop_jkt {
            let same = dpop.is_some_and(|d| bool::from(d.jkt().as_bytes().ct_eq(bound.as_bytes())));
            if !same {
                return Err(Error::InvalidGrant("the refresh token is bound to another DPoP key"));
            }
        }
        let grace = self.settings.refresh_reuse_grace.is_positive();
        if found.record.rotated && !grace {
            // Presented again after its rotation: two parties hold the family.
            return Err(self.revoke_reused(client.id(), grant.id).await?);
        }
        let scope = match requested {
            None => grant.scope.clone(),
            Some(s) if s.is_subset(&grant.scope) => s,
            Some(_) => return Err(Error::InvalidScope("the scope exceeds the original grant")),
        };
        let account = grant.account.ok_or(Error::InvalidGrant("unknown or expired refresh token"))?;
        if found.record.rotated {
            // Reuse, which the grace lets through once.
            return match self.grace_successor(&found, &old, now).await? {
                Some(token) => self.refreshed(client, &found, account, scope, dpop, token, now).await,
                None => Err(self.revoke_reused(client.id(), grant.id).await?),
            };
        }
        // The rule of `active_account`, on the account the store read with
        // the token rather than in a read (a round trip) of its own.
        if !found.account.as_ref().is_some_and(|a| a.id == account && !a.disabled) {
            return Err(Error::InvalidGrant("the account is disabled"));
        }
        if !self.rotates_refresh_tokens() {
            // Without rotation the token is used again until it expires
            // (FAPI 2.0 5.3.2.1): nothing is written.
            return self.refreshed(client, &found, account, scope, dpop, presented.to_owned(), now).await;
        }
        if grace {
            // Of concurrent presentations only the one that opens the grace
            // record rotates; the others are reuse within the grace.
            let opened = Record {
                kind: REFRESH_GRACE,
                key: old,
                owner: None,
                value: b"open".to_vec(),
                expires_at: now + self.settings.refresh_reuse_grace,
            };
            if !self.services.store.insert_record(&opened, now).await? {
                return match self.grace_successor(&found, &old, now).await? {
                    Some(token) => self.refreshed(client, &found, account, scope, dpop, token, now).await,
                    None => Err(self.revoke_reused(client.id(), grant.id).await?),
                };
            }
        }
        let (refresh_token, hash) = self.opaque_secret()?;
        let next = self.successor(&found, hash, now);
        match self.services.store.rotate_refresh(&old, &next, now).await? {
            Rotation::Rotated => {}
            Rotation::Reused(_) => {
                // Another request rotated it first; the store revoked the family.
                self.report(SecurityEvent::RefreshTokenReused { client_id: client.id().clone(), grant: grant.id });
                return Err(Error::InvalidGrant("the refresh token was already used; its family is revoked"));
            }
            _ => return Err(Error::InvalidGrant("unknown or expired refresh token")),
        }
        self.refreshed(client, &found, account, scope, dpop, refresh_token, now).await
    }

    /// A refresh token to follow `found` in its family: a fresh idle lifetime
    /// within the family's.
    fn successor(&self, found: &RefreshLookup, hash: TokenHash, now: OffsetDateTime) -> RefreshRecord {
        RefreshRecord {
            hash,
            grant: found.grant.id,
            generation: found.record.generation + 1,
            issued_at: now,
            expires_at: (now + self.settings.refresh_token_ttl).min(self.family_end(found.grant.created_at)),
            rotated: false,
        }
    }

    /// The reuse grace (`refresh_reuse_grace`): a token rotated within the
    /// grace gets one more successor, beside the first. Of concurrent reuses
    /// one wins the swap of the token's grace record from `open` to `used`;
    /// `None` for the others, for a second reuse, and after the grace (the
    /// record has expired).
    async fn grace_successor(
        &self,
        found: &RefreshLookup,
        old: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<String>> {
        let Some(open) = self.services.store.record(REFRESH_GRACE, old, now).await? else {
            return Ok(None);
        };
        if open.value != b"open" {
            return Ok(None);
        }
        let used = Record { value: b"used".to_vec(), ..open.clone() };
        if !self.services.store.replace_record(&open, &used).await? {
            return Ok(None);
        }
        if let Some(account) = found.grant.account {
            self.active_account(account).await?;
        }
        let (token, hash) = self.opaque_secret()?;
        if !self.services.store.add_refresh_token(&self.successor(found, hash, now), now).await? {
            return Err(Error::InvalidGrant("unknown or expired refresh token"));
        }
        Ok(Some(token))
    }

    /// Revokes the family of a reused refresh token, and the error to answer.
    async fn revoke_reused(&self, client_id: &crate::ClientId, grant: GrantId) -> Result<Error> {
        self.report(SecurityEvent::RefreshTokenReused { client_id: client_id.clone(), grant });
        self.services.store.revoke_grant(grant).await?;
        Ok(Error::InvalidGrant("the refresh token was already used; its family is revoked"))
    }

    /// The response of a refresh: a new access token of the family, bound to
    /// the proof's key if there was a proof, and `refresh_token`.
    #[allow(clippy::too_many_arguments, reason = "each argument is a checked part of one refresh")]
    async fn refreshed(
        &self,
        client: &crate::Client,
        found: &RefreshLookup,
        account: AccountId,
        scope: Scope,
        dpop: Option<&DpopVerified>,
        refresh_token: String,
        now: OffsetDateTime,
    ) -> Result<TokenResponse> {
        let jkt = dpop.map(DpopVerified::jkt);
        let (access_token, claims) = self
            .mint_access_token(
                client.id(),
                account.to_string(),
                scope,
                Some(found.grant.id),
                found.grant.resource.as_ref(),
                jkt,
                now,
            )
            .await?;
        // The ID token of a refresh repeats the login (`auth_time`, `sid`)
        // and has no `nonce` (OpenID Connect Core 12.2).
        let login = found.grant.authentication.as_ref().map(|a| (a, None));
        let id_token = self.id_token_for(client, account, &found.grant.scope, login, &access_token, now).await?;
        Ok(self.response(access_token, &claims, Some(refresh_token), id_token))
    }

    /// When a grant made now may be forgotten ([`Grant::expires_at`]): once
    /// its last access token has expired, plus the leeway, so that revoking the
    /// grant refuses every token minted from it for as long as a verifier
    /// accepts them. The last access token is minted now, or, when the family
    /// has refresh tokens, at the latest at the family's end.
    pub(super) fn grant_retention(&self, refreshable: bool, now: OffsetDateTime) -> OffsetDateTime {
        let last_minted = if refreshable { self.family_end(now) } else { now };
        last_minted + self.settings.access_token_ttl + self.settings.leeway
    }

    /// The absolute end of the refresh-token family of a grant made at
    /// `created_at`: no refresh token outlives it, whatever the other
    /// lifetimes are, and rotation never extends it.
    fn family_end(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at + self.settings.refresh_token_max_lifetime
    }

    /// A new grant for `account` of `scope` for `resource`, made now, not yet
    /// bound to a DPoP key.
    #[allow(clippy::too_many_arguments, reason = "each is one field of the grant")]
    pub(super) fn new_grant(
        &self,
        client: &crate::Client,
        id: GrantId,
        account: AccountId,
        (scope, resource): (Scope, Option<ResourceUri>),
        authentication: Option<Authentication>,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Grant {
        Grant {
            id,
            client_id: client.id().clone(),
            account: Some(account),
            scope,
            created_at: now,
            expires_at,
            revoked: false,
            resource,
            dpop_jkt: None,
            authentication,
        }
    }

    /// Stores `grant` (with a first refresh token when the client may
    /// refresh) and mints its access token, and its ID token when the grant
    /// is an OpenID Connect login (`nonce` from its request). With a DPoP
    /// proof the access token is bound to its key, and so is the family of a
    /// public client (RFC 9449 5): a confidential client's refresh tokens are
    /// bound to its authentication already.
    pub(super) async fn issue_for_account(
        &self,
        client: &AuthenticatedClient,
        mut grant: Grant,
        dpop: Option<&DpopVerified>,
        nonce: Option<&Nonce>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse> {
        let client = client.client();
        let account = grant.account.ok_or(Error::Internal("a grant for an account without one".into()))?;
        let jkt = dpop.map(DpopVerified::jkt);
        grant.dpop_jkt = jkt.filter(|_| !client.is_confidential()).map(str::to_owned);
        let refresh = if self.issues_refresh_tokens(client) {
            let (token, hash) = self.opaque_secret()?;
            let expires_at = (now + self.settings.refresh_token_ttl).min(self.family_end(now));
            let record =
                RefreshRecord { hash, grant: grant.id, generation: 0, issued_at: now, expires_at, rotated: false };
            Some((token, record))
        } else {
            None
        };
        self.services.store.insert_grant(&grant, refresh.as_ref().map(|(_, r)| r)).await?;
        let (access_token, claims) = self
            .mint_access_token(
                client.id(),
                account.to_string(),
                grant.scope.clone(),
                Some(grant.id),
                grant.resource.as_ref(),
                jkt,
                now,
            )
            .await?;
        let login = grant.authentication.as_ref().map(|a| (a, nonce));
        let id_token = self.id_token_for(client, account, &grant.scope, login, &access_token, now).await?;
        Ok(self.response(access_token, &claims, refresh.map(|(t, _)| t), id_token))
    }

    /// Refuses a grant whose account is gone or disabled.
    pub(super) async fn active_account(&self, id: AccountId) -> Result<()> {
        match self.services.store.account(id).await? {
            Some(a) if !a.disabled => Ok(()),
            _ => Err(Error::InvalidGrant("the account is disabled")),
        }
    }

    fn response(
        &self,
        access_token: String,
        claims: &crate::AccessTokenClaims,
        refresh_token: Option<String>,
        id_token: Option<String>,
    ) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: if claims.jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.settings.access_token_ttl.whole_seconds(),
            scope: claims.scope.to_string(),
            refresh_token,
            id_token,
        }
    }
}

/// RFC 8707 at the code and refresh grants: a `resource` named at `/token`
/// must be the one the grant was authorized for (SPEC-2); the tokens are for
/// the authorized one whether or not it is named again.
pub(super) fn same_resource(requested: Option<&str>, authorized: Option<&ResourceUri>) -> Result<()> {
    match requested {
        None => Ok(()),
        Some(r) if authorized.is_some_and(|a| a.as_str() == r) => Ok(()),
        Some(_) => Err(Error::InvalidTarget("the resource is not the one authorized")),
    }
}
