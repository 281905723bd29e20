//! The runtime implementations of core's secret services: password and client
//! secret hashing and verification, operating-system randomness, and the
//! system clock.
//!
//! Two hash forms are accepted (SPEC, `hash-secret`):
//! - Argon2id PHC strings, for passwords and for human-chosen client secrets;
//!   at least m=19 MiB, t=2, p=1 (OWASP's floor).
//! - `$sha256$` and 64 hex digits, for machine-generated client secrets of at
//!   least 32 bytes: they carry 256 bits of entropy, so a slow hash adds
//!   nothing, and a login then costs one Argon2 verification, not two.
//!
//! Argon2 runs on tokio's blocking pool behind a semaphore of one permit per
//! core: verifications queue, and are never shed for load.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use oauth_core::{Clock, Error, SecretHash, SecretSource, SecretVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

/// Argon2id memory cost, KiB (19 MiB).
pub const ARGON2_M_KIB: u32 = 19_456;
/// Argon2id iterations.
pub const ARGON2_T: u32 = 2;
/// Argon2id parallelism.
pub const ARGON2_P: u32 = 1;
/// The shortest secret `$sha256$` may hash.
pub const SHA256_MIN_SECRET: usize = 32;

const SHA256_PREFIX: &str = "$sha256$";

/// Why a hash string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Neither an Argon2id PHC string nor `$sha256$` with 64 hex digits.
    #[error("not an Argon2id PHC string or a $sha256$ hash")]
    Format,
    /// Argon2id with parameters below m=19456, t=2, p=1.
    #[error("Argon2id parameters are weaker than m=19456, t=2, p=1")]
    Weak,
    /// A `$sha256$` hash where only Argon2id is allowed (passwords).
    #[error("passwords must be hashed with Argon2id")]
    NotArgon2,
    /// A secret shorter than 32 bytes for `$sha256$`.
    #[error("a $sha256$ secret must be at least 32 bytes")]
    ShortSecret,
    /// The hasher failed.
    #[error("hashing failed")]
    Hashing,
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).map_err(|_| HashError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password (or a human-chosen secret) as an Argon2id PHC string.
pub fn hash_argon2(secret: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| HashError::Hashing)?;
    let hash = argon2()?.hash_password_with_salt(secret.as_bytes(), &salt).map_err(|_| HashError::Hashing)?;
    Ok(hash.to_string())
}

/// Hashes a machine-generated secret of at least 32 bytes as `$sha256$<hex>`.
pub fn hash_sha256(secret: &str) -> Result<String, HashError> {
    if secret.len() < SHA256_MIN_SECRET {
        return Err(HashError::ShortSecret);
    }
    Ok(format!("{SHA256_PREFIX}{}", hex(&Sha256::digest(secret.as_bytes()))))
}

/// Checks a stored hash's form. `password` refuses `$sha256$`.
pub fn check_hash(hash: &str, password: bool) -> Result<(), HashError> {
    if let Some(hex) = hash.strip_prefix(SHA256_PREFIX) {
        if password {
            return Err(HashError::NotArgon2);
        }
        let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        return if ok { Ok(()) } else { Err(HashError::Format) };
    }
    let phc = PasswordHash::new(hash).map_err(|_| HashError::Format)?;
    if phc.algorithm.as_str() != "argon2id" {
        return if password { Err(HashError::NotArgon2) } else { Err(HashError::Format) };
    }
    let params = Params::try_from(&phc).map_err(|_| HashError::Format)?;
    if params.m_cost() < ARGON2_M_KIB || params.t_cost() < ARGON2_T || params.p_cost() < ARGON2_P {
        return Err(HashError::Weak);
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The [`SecretVerifier`] of the server.
#[derive(Debug, Clone)]
pub struct HashVerifier {
    permits: Arc<Semaphore>,
    /// Verified against when the account is unknown, so that path costs one
    /// real Argon2id verification too.
    dummy: Arc<String>,
}

impl HashVerifier {
    /// A verifier running at most `parallel` Argon2 verifications at once
    /// (one per core is right: each is CPU-bound and takes 19 MiB).
    pub fn new(parallel: usize) -> Result<Self, HashError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|_| HashError::Hashing)?;
        let dummy = hash_argon2(&hex(&random))?;
        Ok(HashVerifier { permits: Arc::new(Semaphore::new(parallel.max(1))), dummy: Arc::new(dummy) })
    }

    async fn argon2_verify(&self, phc: String, presented: String) -> Result<bool, Error> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Internal("verifier closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let Ok(hash) = PasswordHash::new(&phc) else { return false };
            // The parameters come from the stored hash; `check_hash` refused
            // weak ones when the configuration was loaded.
            Argon2::default().verify_password(presented.as_bytes(), &hash).is_ok()
        })
        .await
        .map_err(|_| Error::Internal("password verification task failed".into()))
    }
}

#[async_trait]
impl SecretVerifier for HashVerifier {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool, Error> {
        match stored.map(SecretHash::as_str) {
            Some(h) if h.starts_with(SHA256_PREFIX) => {
                let expected = &h.as_bytes()[SHA256_PREFIX.len()..];
                let actual = hex(&Sha256::digest(presented.as_bytes()));
                Ok(bool::from(actual.as_bytes().ct_eq(expected)))
            }
            Some(phc) => self.argon2_verify(phc.to_owned(), presented.to_owned()).await,
            None => {
                self.argon2_verify(self.dummy.to_string(), presented.to_owned()).await?;
                Ok(false)
            }
        }
    }
}

/// Randomness from the operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSecrets;

impl SecretSource for OsSecrets {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::fill(buf).map_err(|e| Error::Internal(format!("operating-system randomness failed: {e}")))
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "this is the one clock implementation")]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_round_trips_with_the_required_parameters() {
        let phc = hash_argon2("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_hash(&phc, true), Ok(()));
        let v = HashVerifier::new(2).unwrap();
        let stored = SecretHash::new(phc);
        assert!(v.verify(Some(&stored), "correct horse").await.unwrap());
        assert!(!v.verify(Some(&stored), "wrong").await.unwrap());
        assert!(!v.verify(None, "correct horse").await.unwrap());
    }

    #[tokio::test]
    async fn sha256_secrets_verify_and_need_32_bytes() {
        let secret = "0123456789abcdef0123456789abcdef";
        let stored = SecretHash::new(hash_sha256(secret).unwrap());
        assert_eq!(check_hash(stored.as_str(), false), Ok(()));
        assert_eq!(check_hash(stored.as_str(), true), Err(HashError::NotArgon2));
        let v = HashVerifier::new(1).unwrap();
        assert!(v.verify(Some(&stored), secret).await.unwrap());
        assert!(!v.verify(Some(&stored), "0123456789abcdef0123456789abcdeF").await.unwrap());
        assert_eq!(hash_sha256("short"), Err(HashError::ShortSecret));
    }

    #[test]
    fn weak_or_foreign_hashes_are_refused() {
        let weak = "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert_eq!(check_hash(weak, true), Err(HashError::Weak));
        let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert_eq!(check_hash(argon2i, true), Err(HashError::NotArgon2));
        for bad in ["", "plain", "$sha256$abc", "$sha256$", &format!("$sha256${}", "G".repeat(64))] {
            assert!(check_hash(bad, false).is_err(), "{bad}");
        }
    }
}
