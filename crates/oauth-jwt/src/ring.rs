//! The key ring: the key that signs now, the keys that still verify, and the
//! JWKS that publishes them; and how keys are created, loaded and rotated
//! through the store.
//!
//! A key's retirement time is recorded in the store. A retired key keeps
//! verifying (and stays in the JWKS) for `retention` after it, which the server
//! sets to `access_token_ttl + leeway`: long enough for every token it signed to
//! expire. Then it is dropped.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use oauth_core::{SigningKeyRecord, Store};
use time::{Duration, OffsetDateTime};

use crate::Error;
use crate::keys::{SigningAlg, SigningKey, VerifyingKey};

/// The keys one server signs and verifies with.
#[derive(Clone)]
pub struct KeyRing {
    signer: SigningKey,
    /// By kid: the key, and when it stops verifying (`None`: while it signs).
    verifiers: BTreeMap<String, (VerifyingKey, Option<OffsetDateTime>)>,
    /// How long a retired key keeps verifying.
    retention: Duration,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("signer", &self.signer).field("verifiers", &self.verifiers.keys()).finish()
    }
}

impl KeyRing {
    /// A ring of one key, with nothing stored (tests, or a resource server that
    /// shares an HMAC secret).
    pub fn single(key: SigningKey) -> Self {
        let mut verifiers = BTreeMap::new();
        verifiers.insert(key.kid().to_owned(), (key.verifying().clone(), None));
        KeyRing { signer: key, verifiers, retention: Duration::ZERO }
    }

    /// Loads the newest stored key for `alg` that is not retired, or generates
    /// one and stores it durably before first use. Retired keys within their
    /// retention keep verifying.
    pub async fn load_or_generate(
        store: &dyn Store,
        alg: SigningAlg,
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let records = store.signing_keys().await?;
        let current = records
            .iter()
            .filter(|r| r.retired_at.is_none() && r.algorithm == alg.name() && !r.secret.is_empty())
            .max_by_key(|r| r.created_at);
        let signer = match current {
            Some(rec) => SigningKey::from_record(rec)?,
            None => {
                let key = SigningKey::generate(alg)?;
                store.put_signing_key(&key.to_record(now, true)?).await?;
                key
            }
        };
        Self::assemble(signer, &records, now, retention)
    }

    /// Uses `key` (from a `key_file`) to sign. Its public half is recorded in the
    /// store, and any other key that was signing is retired now, so a replaced
    /// `key_file` key stays in the JWKS for `retention`.
    pub async fn with_key_file(
        store: &dyn Store,
        key: SigningKey,
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let mut records = store.signing_keys().await?;
        for rec in records.iter_mut().filter(|r| r.retired_at.is_none() && r.kid != key.kid()) {
            rec.retired_at = Some(now);
            store.put_signing_key(rec).await?;
        }
        if !records.iter().any(|r| r.kid == key.kid()) {
            let rec = key.to_record(now, false)?;
            store.put_signing_key(&rec).await?;
            records.push(rec);
        }
        Self::assemble(key, &records, now, retention)
    }

    /// Retires the signing key for `alg` and stores a new one, which signs from
    /// the next start. Returns the new key id. The caller must hold the store
    /// alone (with sled, the server stopped).
    pub async fn rotate(store: &dyn Store, alg: SigningAlg, now: OffsetDateTime) -> Result<String, Error> {
        for mut rec in store.signing_keys().await?.into_iter().filter(|r| r.retired_at.is_none()) {
            rec.retired_at = Some(now);
            store.put_signing_key(&rec).await?;
        }
        let key = SigningKey::generate(alg)?;
        // One second later, so the new key is the newest even on a coarse clock.
        store.put_signing_key(&key.to_record(now + Duration::SECOND, true)?).await?;
        Ok(key.kid().to_owned())
    }

    fn assemble(
        signer: SigningKey,
        records: &[SigningKeyRecord],
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let mut ring = Self::single(signer);
        ring.retention = retention;
        for rec in records.iter().filter(|r| r.kid != ring.signer.kid()) {
            let until = rec.retired_at.map(|t| t + retention);
            // A key that is neither signing nor retired is another node's
            // current key (several nodes, one store): it verifies too.
            if until.is_none_or(|u| now < u) {
                ring.verifiers.insert(rec.kid.clone(), (VerifyingKey::from_record(rec)?, until));
            }
        }
        Ok(ring)
    }

    /// The same signer, verifying what `records` (the store's keys, read
    /// again) say verifies at `now`: the other nodes' current keys, a key
    /// that `keys rotate` added, and retired keys within the retention.
    pub(crate) fn reassembled(&self, records: &[SigningKeyRecord], now: OffsetDateTime) -> Result<Self, Error> {
        Self::assemble(self.signer.clone(), records, now, self.retention)
    }

    /// The kids this ring verifies.
    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifiers.keys().map(String::as_str)
    }

    /// The key that signs.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// The key that verifies `kid` at `now`, if any.
    pub(crate) fn verifier(&self, kid: &str, now: OffsetDateTime) -> Option<&VerifyingKey> {
        self.verifiers.get(kid).filter(|(_, until)| until.is_none_or(|u| now < u)).map(|(k, _)| k)
    }

    /// The JWKS (RFC 7517) of the public keys that verify at `now`. HMAC keys
    /// and private material never appear.
    pub fn jwks(&self, now: OffsetDateTime) -> JwkSet {
        let keys = self
            .verifiers
            .values()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .filter_map(|(k, _)| k.jwk.clone())
            .collect();
        JwkSet { keys }
    }
}
