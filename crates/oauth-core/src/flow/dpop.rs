//! DPoP (RFC 9449): checking a proof, its replay cache, and the server's
//! nonces.
//!
//! The [`ProofChecker`](crate::ProofChecker) (`oauth-jwt`) checks a proof's
//! form and signature; this module checks what the proof says: the request's
//! method and URL (`htm`, `htu`), its age (`iat` at most `[dpop] max_age` old
//! and at most the leeway ahead), the access token it presents (`ath`), the
//! server's nonce, and that its `jti` was never seen with this key. Only then
//! does it make the [`DpopVerified`] the grants bind tokens with.
//!
//! The replay cache is a [`Record`] per proof in the store, so every node sees
//! every proof, a restart forgets none, and the sweep removes each once its
//! proof is too old to be accepted anyway.
//!
//! Nonces need no record per nonce. Time is cut into windows of
//! [`NONCE_WINDOW`]; the first node to need a window's nonce draws it at random
//! and stores it as a record, and every node reads that record, so all nodes
//! hand out and accept the same nonces. A nonce is accepted in its own window
//! and the next, so it lives between one and two windows.

use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::services::SecurityEvent;
use crate::store::{Record, RecordKind};
use crate::types::{DpopVerified, TokenHash};

/// The replay cache of DPoP proofs: one record per key and `jti`.
pub(crate) const DPOP_PROOFS: RecordKind = RecordKind::new("dpop_proof");

/// The nonce of each window, one record per window.
pub(crate) const DPOP_NONCES: RecordKind = RecordKind::new("dpop_nonce");

/// How long each nonce window lasts.
pub const NONCE_WINDOW: Duration = Duration::seconds(300);

/// The request a DPoP proof came with: what its `htm`, `htu` and `ath` must
/// say.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The URL of the endpoint, without query or fragment, as this server
    /// names it (from its issuer).
    pub url: &'a str,
    /// The access token presented with the proof, at a resource; `None` at
    /// the token and PAR endpoints.
    pub access_token: Option<&'a str>,
    /// Whether this endpoint issues tokens or codes (`/token`, `/par`), where
    /// `[dpop] require_nonce` applies.
    pub issuing: bool,
}

/// The nonces of the two windows in which a nonce is accepted, as this node
/// last read them from the store.
#[derive(Debug, Default)]
pub(crate) struct NonceCache(Mutex<Vec<(i64, String)>>);

impl NonceCache {
    fn get(&self, window: i64) -> Option<String> {
        let cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cached.iter().find(|(w, _)| *w == window).map(|(_, n)| n.clone())
    }

    fn put(&self, window: i64, nonce: String) {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cached.retain(|(w, _)| *w >= window - 1 && *w != window);
        cached.push((window, nonce));
    }
}

fn window_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(NONCE_WINDOW.whole_seconds())
}

fn window_key(window: i64) -> TokenHash {
    TokenHash::of(&format!("dpop nonce window {window}"))
}

impl Authority {
    /// Checks the DPoP proof `proof` sent with `request`, and answers the
    /// proof value that binds tokens to its key. With `expected_jkt`, the
    /// proof must be signed by that key (a code's `dpop_jkt`, a bound
    /// token's `cnf.jkt`).
    ///
    /// Every failure is [`Error::InvalidDpopProof`], except a missing or
    /// outdated nonce where `[dpop] require_nonce` asks for one, which is
    /// [`Error::UseDpopNonce`] with the nonce to use. A proof is recorded as
    /// used only once every other check has passed, so a refused proof leaves
    /// nothing in the store.
    pub async fn check_dpop(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        expected_jkt: Option<&str>,
    ) -> Result<DpopVerified> {
        let claims = self.services.proofs.dpop_proof(proof)?;
        let now = self.now();
        if claims.htm != request.method {
            return Err(Error::InvalidDpopProof("htm is not the request's method"));
        }
        // RFC 9449 4.3: the URL is compared without its query and fragment.
        let htu = claims.htu.split(['?', '#']).next().unwrap_or_default();
        if htu != request.url {
            return Err(Error::InvalidDpopProof("htu is not this endpoint's URL"));
        }
        let max_age = self.settings.dpop.max_age;
        if claims.iat < now - max_age {
            return Err(Error::InvalidDpopProof("the proof is too old (iat)"));
        }
        if claims.iat > now + self.settings.leeway {
            return Err(Error::InvalidDpopProof("the proof is from the future (iat)"));
        }
        match (request.access_token, claims.ath.as_deref()) {
            (Some(token), Some(ath)) => {
                let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
                if !bool::from(expected.as_bytes().ct_eq(ath.as_bytes())) {
                    return Err(Error::InvalidDpopProof("ath is not the hash of the access token"));
                }
            }
            (Some(_), None) => return Err(Error::InvalidDpopProof("ath is required with an access token")),
            // At the token endpoint there is no access token to hash.
            (None, _) => {}
        }
        self.check_nonce(claims.nonce.as_deref(), request.issuing, now).await?;
        if let Some(expected) = expected_jkt {
            if !bool::from(expected.as_bytes().ct_eq(claims.jkt.as_bytes())) {
                return Err(Error::InvalidDpopProof("the proof is signed by another key"));
            }
        }
        // The proof is refused as stale once `iat + max_age` has passed; until
        // then its record keeps it from being used again.
        let record = Record {
            kind: DPOP_PROOFS,
            key: TokenHash::of(&format!("{}\0{}", claims.jkt, claims.jti)),
            owner: None,
            value: Vec::new(),
            expires_at: claims.iat + max_age + Duration::SECOND,
        };
        if !self.services.store.insert_record(&record, now).await? {
            self.report(SecurityEvent::DpopProofReplayed { jkt: claims.jkt });
            return Err(Error::InvalidDpopProof("the proof was used before (jti)"));
        }
        Ok(DpopVerified::new(claims.jkt))
    }

    /// The DPoP nonce to hand out now (in a `DPoP-Nonce` header). Every node
    /// gives the same one within a window.
    pub async fn dpop_nonce(&self) -> Result<String> {
        let window = window_of(self.now());
        if let Some(nonce) = self.nonce_of(window).await? {
            return Ok(nonce);
        }
        let mut b = [0u8; 32];
        self.services.secrets.fill(&mut b)?;
        let drawn = URL_SAFE_NO_PAD.encode(b);
        let record = Record {
            kind: DPOP_NONCES,
            key: window_key(window),
            owner: None,
            value: drawn.clone().into_bytes(),
            // Accepted in the next window too.
            expires_at: OffsetDateTime::from_unix_timestamp((window + 2) * NONCE_WINDOW.whole_seconds())
                .map_err(|_| Error::Internal("nonce window out of range".into()))?,
        };
        if self.services.store.insert_record(&record, self.now()).await? {
            self.nonces.put(window, drawn.clone());
            return Ok(drawn);
        }
        // Another node drew this window's nonce first: use that one.
        self.nonce_of(window).await?.ok_or_else(|| Error::Internal("the window's nonce vanished".into()))
    }

    /// The stored nonce of `window`, if one was drawn.
    async fn nonce_of(&self, window: i64) -> Result<Option<String>> {
        if let Some(n) = self.nonces.get(window) {
            return Ok(Some(n));
        }
        let found = self.services.store.record(DPOP_NONCES, &window_key(window), self.now()).await?;
        let nonce = found.and_then(|r| String::from_utf8(r.value).ok());
        if let Some(n) = &nonce {
            self.nonces.put(window, n.clone());
        }
        Ok(nonce)
    }

    /// A proof's nonce must be one this server gave, of this window or the
    /// last; where nonces are required (`issuing` endpoints), a missing or
    /// outdated one asks the client to use the current one.
    async fn check_nonce(&self, sent: Option<&str>, issuing: bool, now: OffsetDateTime) -> Result<()> {
        let required = issuing && self.settings.dpop.require_nonce;
        let Some(sent) = sent else {
            return if required { Err(Error::UseDpopNonce { nonce: self.dpop_nonce().await? }) } else { Ok(()) };
        };
        let window = window_of(now);
        for w in [window, window - 1] {
            if let Some(ours) = self.nonce_of(w).await? {
                if bool::from(ours.as_bytes().ct_eq(sent.as_bytes())) {
                    return Ok(());
                }
            }
        }
        if required {
            Err(Error::UseDpopNonce { nonce: self.dpop_nonce().await? })
        } else {
            Err(Error::InvalidDpopProof("the nonce is not one this server gave"))
        }
    }
}
