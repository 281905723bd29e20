//! The key ring: the key that signs now, the keys that still verify, and the
//! JWKS that publishes them; and how keys are created, loaded and rotated
//! through the store.
//!
//! Two keys sign: the access-token key (the configured algorithm) and the
//! RS256 key for ID tokens, which OpenID Connect requires of every provider.
//! When the configured algorithm is RS256 they are one key. The ID-token key
//! is the newest stored RS256 key with its private half that is not retired,
//! generated and stored durably at first start like the other.
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
    /// The RS256 key that signs ID tokens; `None` in a ring made by
    /// [`KeyRing::single`] without one.
    id_signer: Option<SigningKey>,
    /// By kid: the key, and when it stops verifying (`None`: while it signs).
    verifiers: BTreeMap<String, (VerifyingKey, Option<OffsetDateTime>)>,
    /// How long a retired key keeps verifying.
    retention: Duration,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signer", &self.signer)
            .field("id_signer", &self.id_signer)
            .field("verifiers", &self.verifiers.keys())
            .finish()
    }
}

impl KeyRing {
    /// A ring of one key, with nothing stored (tests, or a resource server that
    /// shares an HMAC secret). An RS256 key also signs ID tokens; add another
    /// one for them with [`KeyRing::with_id_token_key`].
    pub fn single(key: SigningKey) -> Self {
        let mut verifiers = BTreeMap::new();
        verifiers.insert(key.kid().to_owned(), (key.verifying().clone(), None));
        let id_signer = (key.alg() == SigningAlg::Rs256).then(|| key.clone());
        KeyRing { signer: key, id_signer, verifiers, retention: Duration::ZERO }
    }

    /// The same ring, signing ID tokens with `key` (an RS256 key), which
    /// verifies too.
    pub fn with_id_token_key(mut self, key: SigningKey) -> Result<Self, Error> {
        if key.alg() != SigningAlg::Rs256 {
            return Err(Error::BadKey("the ID-token key is an RS256 key"));
        }
        self.verifiers.insert(key.kid().to_owned(), (key.verifying().clone(), None));
        self.id_signer = Some(key);
        Ok(self)
    }

    /// Loads the newest stored key for `alg` that is not retired, and the
    /// ID-token key, generating either when there is none and storing it
    /// durably before first use. Retired keys within their retention keep
    /// verifying.
    pub async fn load_or_generate(
        store: &dyn Store,
        alg: SigningAlg,
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let mut records = store.signing_keys().await?;
        let signer = Self::current_or_new(store, &mut records, alg, now).await?;
        let id_signer = Self::current_or_new(store, &mut records, SigningAlg::Rs256, now).await?;
        Self::assemble(signer, Some(id_signer), &records, now, retention)
    }

    /// The newest stored key of `alg` that is not retired and has its private
    /// half, or a new one, stored before it is returned (and added to
    /// `records`).
    async fn current_or_new(
        store: &dyn Store,
        records: &mut Vec<SigningKeyRecord>,
        alg: SigningAlg,
        now: OffsetDateTime,
    ) -> Result<SigningKey, Error> {
        let current = records
            .iter()
            .filter(|r| r.retired_at.is_none() && r.algorithm == alg.name() && !r.secret.is_empty())
            .max_by_key(|r| r.created_at);
        match current {
            Some(rec) => SigningKey::from_record(rec),
            None => {
                let key = SigningKey::generate(alg)?;
                let rec = key.to_record(now, true)?;
                store.put_signing_key(&rec).await?;
                records.push(rec);
                Ok(key)
            }
        }
    }

    /// Uses `key` (from a `key_file`) to sign access tokens. Its public half is
    /// recorded in the store, and any other key that was signing is retired
    /// now, so a replaced `key_file` key stays in the JWKS for `retention`.
    /// An RS256 `key` signs ID tokens too; otherwise the stored ID-token key
    /// stays (or is generated), since it is not the file's to replace.
    pub async fn with_key_file(
        store: &dyn Store,
        key: SigningKey,
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let mut records = store.signing_keys().await?;
        let id_key_kid = match key.alg() {
            SigningAlg::Rs256 => None,
            _ => records
                .iter()
                .filter(|r| r.retired_at.is_none() && r.algorithm == SigningAlg::Rs256.name() && !r.secret.is_empty())
                .max_by_key(|r| r.created_at)
                .map(|r| r.kid.clone()),
        };
        for rec in records
            .iter_mut()
            .filter(|r| r.retired_at.is_none() && r.kid != key.kid() && Some(&r.kid) != id_key_kid.as_ref())
        {
            rec.retired_at = Some(now);
            store.put_signing_key(rec).await?;
        }
        if !records.iter().any(|r| r.kid == key.kid()) {
            let rec = key.to_record(now, false)?;
            store.put_signing_key(&rec).await?;
            records.push(rec);
        }
        let id_signer = match key.alg() {
            SigningAlg::Rs256 => key.clone(),
            _ => Self::current_or_new(store, &mut records, SigningAlg::Rs256, now).await?,
        };
        Self::assemble(key, Some(id_signer), &records, now, retention)
    }

    /// Retires every signing key and stores new ones (for `alg`, and an RS256
    /// key for ID tokens when `alg` is another), which sign from the next
    /// start. Returns the new key ids. The caller must hold the store alone
    /// (with sled, the server stopped).
    pub async fn rotate(store: &dyn Store, alg: SigningAlg, now: OffsetDateTime) -> Result<Vec<String>, Error> {
        for mut rec in store.signing_keys().await?.into_iter().filter(|r| r.retired_at.is_none()) {
            rec.retired_at = Some(now);
            store.put_signing_key(&rec).await?;
        }
        let mut kids = Vec::new();
        for alg in if alg == SigningAlg::Rs256 { vec![alg] } else { vec![alg, SigningAlg::Rs256] } {
            let key = SigningKey::generate(alg)?;
            // One second later, so the new key is the newest even on a coarse clock.
            store.put_signing_key(&key.to_record(now + Duration::SECOND, true)?).await?;
            kids.push(key.kid().to_owned());
        }
        Ok(kids)
    }

    /// Retires the stored ID-token key and stores a new one, which signs from
    /// the next start; for a server whose access-token key comes from a
    /// `key_file` (rotated by replacing the file). Returns the new key id.
    /// The caller must hold the store alone.
    pub async fn rotate_id_token_key(store: &dyn Store, now: OffsetDateTime) -> Result<String, Error> {
        let rs256 = SigningAlg::Rs256.name();
        for mut rec in store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|r| r.retired_at.is_none() && r.algorithm == rs256 && !r.secret.is_empty())
        {
            rec.retired_at = Some(now);
            store.put_signing_key(&rec).await?;
        }
        let key = SigningKey::generate(SigningAlg::Rs256)?;
        store.put_signing_key(&key.to_record(now + Duration::SECOND, true)?).await?;
        Ok(key.kid().to_owned())
    }

    fn assemble(
        signer: SigningKey,
        id_signer: Option<SigningKey>,
        records: &[SigningKeyRecord],
        now: OffsetDateTime,
        retention: Duration,
    ) -> Result<Self, Error> {
        let mut ring = Self::single(signer);
        ring.retention = retention;
        if let Some(id) = id_signer {
            ring = ring.with_id_token_key(id)?;
        }
        let signing: Vec<String> =
            [Some(&ring.signer), ring.id_signer.as_ref()].into_iter().flatten().map(|k| k.kid().to_owned()).collect();
        for rec in records.iter().filter(|r| !signing.contains(&r.kid)) {
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
        Self::assemble(self.signer.clone(), self.id_signer.clone(), records, now, self.retention)
    }

    /// The kids this ring verifies.
    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifiers.keys().map(String::as_str)
    }

    /// The key that signs access tokens.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// The RS256 key that signs ID tokens, if the ring has one.
    pub fn id_token_signer(&self) -> Option<&SigningKey> {
        self.id_signer.as_ref()
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
