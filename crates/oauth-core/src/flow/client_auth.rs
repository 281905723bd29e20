//! Client authentication at `/token`, `/revoke`, `/introspect` and `/par`
//! (RFC 6749 2.3): a secret, `private_key_jwt` (RFC 7523 2.2, OpenID Connect
//! Core 9), or for a public client its `client_id` alone.

use std::net::IpAddr;
use std::sync::Arc;

use time::Duration;

use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::services::SecurityEvent;
use crate::store::{Record, RecordKind};
use crate::throttle::Counted;
use crate::types::{ClientId, TokenHash};

/// The replay cache of client assertions: one record per client and `jti`,
/// kept until the assertion expires.
pub(crate) const CLIENT_ASSERTIONS: RecordKind = RecordKind::new("client_assertion");

/// How far ahead a client assertion's `exp` may lie (SPEC-2: 5 minutes), so
/// that its replay record is short-lived.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::minutes(5);

/// The client's identification: `Authorization: Basic`, or `client_id` and
/// `client_secret` in the body, or a `client_assertion` (whose type the front
/// end has checked), or a public client's `client_id` alone. The front end
/// refuses a request that uses two methods, and decodes Basic credentials per
/// RFC 6749 2.3.1.
#[derive(Clone, Copy, Default)]
pub struct ClientCredentials<'a> {
    /// The `client_id` as sent; with an assertion it may be left out
    /// (RFC 7521 4.2), and the assertion's `sub` names the client.
    pub client_id: Option<&'a str>,
    /// The secret as sent.
    pub secret: Option<&'a str>,
    /// The `client_assertion` as sent (`private_key_jwt`).
    pub assertion: Option<&'a str>,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A client that passed authentication, and how. Only
/// [`Authority::authenticate_client`] makes one, and every grant demands one, so
/// a grant cannot run for an unauthenticated client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Arc<Client>,
    method: ClientAuthMethod,
}

impl AuthenticatedClient {
    /// The authenticated client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How it authenticated.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }
}

/// How a client proved who it is (RFC 7591 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// A public client: its `client_id` and no secret (`none`).
    None,
    /// `client_secret_basic` or `client_secret_post`: the secret matched the
    /// stored hash.
    ClientSecret,
    /// `private_key_jwt` (RFC 7523): an assertion signed by one of the
    /// client's keys, for this server, not expired, and not seen before.
    PrivateKeyJwt,
}

impl Authority {
    /// Authenticates a client. Every failure is [`Error::InvalidClient`]
    /// (401, whatever the method): an unknown client, a confidential client
    /// without its secret or with a wrong one, a public client that sends a
    /// secret, a secret for a `private_key_jwt` client, and every assertion
    /// that is not signed by one of the client's keys, names another client
    /// or another audience, is expired or lives over
    /// [`MAX_ASSERTION_LIFETIME`](crate::MAX_ASSERTION_LIFETIME), or repeats a
    /// `jti`. Under FAPI 2.0 only `private_key_jwt` authenticates.
    ///
    /// The attempt is counted before the secret or assertion is checked,
    /// against the peer address and, for a confidential client, its
    /// `client_id`; a bad assertion is a failure like a bad secret. Past a
    /// limit the answer is [`Error::Throttled`] with `invalid_client`.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials<'_>,
        peer: Option<IpAddr>,
    ) -> Result<AuthenticatedClient> {
        let named = match (creds.client_id, creds.assertion) {
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(a)) => self.services.proofs.assertion_subject(a),
            (None, None) => None,
        };
        let client = match named.as_deref().map(ClientId::parse) {
            Some(Ok(id)) => self.services.clients.client(&id).await?,
            _ => None,
        };
        // A public client has no secret to guess, and an unknown id names
        // nobody: those count against the address only (SPEC), so nobody can
        // lock a public client out.
        let who = match &client {
            Some(c) if c.is_confidential() => Counted::Client(c.id().as_str()),
            _ => Counted::AddressOnly,
        };
        let attempt = self.throttle_count(who, peer, ErrorCode::InvalidClient).await?;
        let method = match (creds.secret, creds.assertion) {
            (Some(_), None) => ClientAuthMethod::ClientSecret,
            (None, Some(_)) => ClientAuthMethod::PrivateKeyJwt,
            _ => ClientAuthMethod::None,
        };
        let ok = match (&client, creds.secret, creds.assertion) {
            (Some(c), Some(secret), None) => match c.secret() {
                Some(hash) => self.services.verifier.verify(Some(hash), secret).await,
                None => Ok(false),
            },
            (Some(c), None, Some(assertion)) if c.jwks().is_some() => self.check_assertion(assertion, c).await,
            (Some(c), None, None) => Ok(!c.is_confidential()),
            // Two methods at once (the front end refuses these first), an
            // assertion for a client without keys, or nobody.
            _ => Ok(false),
        };
        let allowed = !self.settings.fapi2 || method == ClientAuthMethod::PrivateKeyJwt;
        match (client, ok) {
            (Some(client), Ok(true)) if allowed => {
                self.throttle_release(attempt);
                Ok(AuthenticatedClient { client, method })
            }
            (_, Ok(_)) => {
                self.throttle_failed(attempt).await?;
                Err(Error::InvalidClient)
            }
            (_, Err(e)) => {
                self.throttle_release(attempt);
                Err(e)
            }
        }
    }

    /// Checks a `private_key_jwt` assertion of `client` (RFC 7523 3): its
    /// signature by one of the client's keys (the
    /// [`ProofChecker`](crate::ProofChecker)), `iss` and `sub` the
    /// `client_id`, an `aud` of this server
    /// ([`Settings::assertion_audiences`](crate::Settings::assertion_audiences)),
    /// `exp` not passed and at most [`MAX_ASSERTION_LIFETIME`] ahead, `nbf`
    /// and `iat` not in the future (each within the leeway), and a `jti`
    /// not seen before, which is then kept until the assertion expires.
    /// `Ok(false)` for every refusal; `Err` only when the store fails.
    async fn check_assertion(&self, assertion: &str, client: &Client) -> Result<bool> {
        let claims = match self.services.proofs.client_assertion(assertion, client) {
            Ok(c) => c,
            Err(Error::InvalidClient) => return Ok(false),
            Err(e) => return Err(e),
        };
        let now = self.now();
        let leeway = self.settings.leeway;
        let id = client.id().as_str();
        let ours = claims.audience.iter().any(|a| self.settings.assertion_audiences.iter().any(|ours| ours == a));
        // `exp` is the client's: a far one (year 9999) would overflow the
        // time type when the leeway is added, so the sum is checked, and an
        // `exp` with no room for it is refused with the others.
        let Some(kept_until) = claims.expires_at.checked_add(leeway) else {
            return Ok(false);
        };
        let fresh = now < kept_until
            && claims.expires_at <= now + MAX_ASSERTION_LIFETIME + leeway
            && claims.not_before.is_none_or(|t| t <= now + leeway)
            && claims.issued_at.is_none_or(|t| t <= now + leeway);
        if claims.issuer != id || claims.subject != id || !ours || !fresh || claims.jti.is_empty() {
            return Ok(false);
        }
        let record = Record {
            kind: CLIENT_ASSERTIONS,
            key: TokenHash::of(&format!("{id}\0{}", claims.jti)),
            owner: None,
            value: Vec::new(),
            expires_at: kept_until,
        };
        let fresh = self.services.store.insert_record(&record, now).await?;
        if !fresh {
            self.report(SecurityEvent::ClientAssertionReplayed { client_id: client.id().clone() });
        }
        Ok(fresh)
    }
}
