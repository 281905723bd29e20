//! Verification for a resource server that only checks tokens: keys come from
//! the authorization server's JWKS, fetched through [`JwksSource`].
//!
//! A token whose `kid` is unknown triggers one JWKS refresh, at most once per
//! `min_refresh` interval, so a flood of tokens with invented key ids cannot
//! turn into a flood of fetches. Revocation is not visible here: a resource
//! server that must see revocations at once asks `/introspect` instead.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use oauth_core::{AccessTokenClaims, Error};
use time::{Duration, OffsetDateTime};

use crate::codec::{MAX_LEEWAY, Rules, verify};
use crate::keys::VerifyingKey;

/// Where the JWKS comes from (an HTTP GET of `/jwks.json`, usually).
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// Fetches the current key set.
    async fn fetch(&self) -> Result<JwkSet, Error>;
}

#[async_trait]
impl<T: JwksSource + ?Sized> JwksSource for std::sync::Arc<T> {
    async fn fetch(&self) -> Result<JwkSet, Error> {
        (**self).fetch().await
    }
}

/// A verifier of access tokens from one issuer.
pub struct Verifier<S> {
    source: S,
    rules: Rules,
    min_refresh: Duration,
    state: RwLock<Cached>,
}

#[derive(Default)]
struct Cached {
    keys: BTreeMap<String, VerifyingKey>,
    fetched_at: Option<OffsetDateTime>,
}

impl<S> std::fmt::Debug for Verifier<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("issuer", &self.rules.issuer).finish_non_exhaustive()
    }
}

impl<S: JwksSource> Verifier<S> {
    /// A verifier for tokens of `issuer` meant for `audience`. `leeway` is
    /// clamped to 60 s; unknown key ids refresh the JWKS at most once per
    /// `min_refresh`.
    pub fn new(source: S, issuer: &str, audience: &str, leeway: Duration, min_refresh: Duration) -> Self {
        let leeway = leeway.clamp(Duration::ZERO, Duration::seconds(MAX_LEEWAY));
        let rules =
            Rules { issuer: issuer.to_owned(), audience: audience.to_owned(), also_audiences: Vec::new(), leeway };
        Verifier { source, rules, min_refresh, state: RwLock::new(Cached::default()) }
    }

    /// Verifies `token` at `now` and returns its claims, or
    /// [`Error::InvalidToken`].
    pub async fn authenticate(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims, Error> {
        let kid = jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .ok_or(Error::InvalidToken("malformed token"))?;
        if self.key(&kid)?.is_none() && self.may_refresh(now)? {
            self.refresh(now).await?;
        }
        let key = self.key(&kid)?;
        verify(token, now, &self.rules, |_| key)
    }

    fn key(&self, kid: &str) -> Result<Option<VerifyingKey>, Error> {
        let state = self.state.read().map_err(|_| Error::Internal("key cache poisoned".into()))?;
        Ok(state.keys.get(kid).cloned())
    }

    fn may_refresh(&self, now: OffsetDateTime) -> Result<bool, Error> {
        let state = self.state.read().map_err(|_| Error::Internal("key cache poisoned".into()))?;
        Ok(state.fetched_at.is_none_or(|t| now >= t + self.min_refresh))
    }

    async fn refresh(&self, now: OffsetDateTime) -> Result<(), Error> {
        let set = self.source.fetch().await?;
        let keys = set
            .keys
            .into_iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                VerifyingKey::from_jwk(jwk, None).ok().map(|k| (kid, k))
            })
            .collect();
        let mut state = self.state.write().map_err(|_| Error::Internal("key cache poisoned".into()))?;
        *state = Cached { keys, fetched_at: Some(now) };
        Ok(())
    }
}
