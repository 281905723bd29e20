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
//! Argon2 runs on a fixed set of worker threads, one per core, each reusing
//! one memory area for every verification: verifications queue, and are never
//! shed for load. Fixed threads matter for memory as well as CPU: run on a
//! pool of many threads, each 19 MiB area stayed behind in a different
//! allocator arena, and a server grew to hundreds of MiB after a burst of
//! logins (measured with `cargo xtask bench`).

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth_core::{Clock, Error, SecretHash, SecretHasher, SecretSource, SecretVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

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

/// The length of a generated client secret before encoding: 256 bits.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// A new client secret and its `$sha256$` hash: 32 bytes from the operating
/// system's CSPRNG, in base64url without padding (43 characters of
/// `A-Z a-z 0-9 - _`). Those characters pass the form encoding of HTTP Basic
/// credentials (RFC 6749 2.3.1) and of a form body unchanged, so a client may
/// send the secret as printed, however its library encodes it.
pub fn generate_client_secret() -> Result<(String, String), HashError> {
    let mut raw = [0u8; GENERATED_SECRET_BYTES];
    getrandom::fill(&mut raw).map_err(|_| HashError::Hashing)?;
    let secret = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash_sha256(&secret)?;
    Ok((secret, hash))
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

/// Lowercase hex, in constant time (the input may be a secret's digest).
fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// The [`SecretHasher`] of the server: Argon2id for passwords (on a blocking
/// thread, off the async workers), `$sha256$` for machine-generated secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hasher;

#[async_trait]
impl SecretHasher for Hasher {
    async fn hash_password(&self, password: &str) -> Result<SecretHash, Error> {
        let password = password.to_owned();
        let hashed = tokio::task::spawn_blocking(move || hash_argon2(&password))
            .await
            .map_err(|_| Error::Internal("the hashing thread failed".into()))?;
        hashed.map(SecretHash::new).map_err(|e| Error::Internal(e.to_string()))
    }

    fn hash_secret(&self, secret: &str) -> Result<SecretHash, Error> {
        hash_sha256(secret).map(SecretHash::new).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// The [`SecretVerifier`] of the server.
#[derive(Debug, Clone)]
pub struct HashVerifier {
    /// The queue the Argon2 workers take jobs from; they end when the last
    /// clone of the verifier is dropped.
    jobs: mpsc::UnboundedSender<Job>,
    /// Verified against when the account is unknown, so that path costs one
    /// real Argon2id verification too.
    dummy: Arc<String>,
}

/// One Argon2id verification: the stored PHC string, the presented secret,
/// and where to send whether they match.
#[derive(Debug)]
struct Job {
    phc: String,
    presented: String,
    answer: oneshot::Sender<bool>,
}

impl HashVerifier {
    /// A verifier with `parallel` Argon2 worker threads (one per core is
    /// right: each verification is CPU-bound and takes 19 MiB).
    pub fn new(parallel: usize) -> Result<Self, HashError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|_| HashError::Hashing)?;
        let dummy = hash_argon2(&hex(&random))?;
        let (jobs, queue) = mpsc::unbounded_channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..parallel.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || argon2_worker(&queue))
                .map_err(|_| HashError::Hashing)?;
        }
        Ok(HashVerifier { jobs, dummy: Arc::new(dummy) })
    }

    async fn argon2_verify(&self, phc: String, presented: String) -> Result<bool, Error> {
        let (answer, answered) = oneshot::channel();
        self.jobs.send(Job { phc, presented, answer }).map_err(|_| Error::Internal("verifier closed".into()))?;
        answered.await.map_err(|_| Error::Internal("password verification failed".into()))
    }
}

/// Takes jobs until the verifier is dropped, hashing into one memory area
/// that lives as long as the thread.
fn argon2_worker(queue: &Mutex<mpsc::UnboundedReceiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        // The lock is held only while waiting; the hashing runs unlocked.
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).blocking_recv();
        let Some(job) = job else { return };
        // Nobody waits for this answer any more (the request was cancelled):
        // the next job gets the core instead.
        if job.answer.is_closed() {
            continue;
        }
        let _ = job.answer.send(argon2_matches(&job.phc, job.presented.as_bytes(), &mut memory));
    }
}

/// Whether `presented` hashes to the Argon2 PHC string `phc`, with the
/// parameters, salt and output length the string records (`check_hash`
/// refused weak ones when the configuration was loaded). The comparison is
/// constant time.
fn argon2_matches(phc: &str, presented: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else { return false };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    argon2.hash_password_into_with_memory(presented, salt, &mut out, &mut memory[..]).is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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
    async fn stronger_parameters_and_other_output_lengths_verify_on_one_worker() {
        // Hashes as another tool might make them; one worker resizes its memory.
        let v = HashVerifier::new(1).unwrap();
        for (m, t, len) in [(32_768, 3, 64), (19_456, 2, 32), (24_576, 2, 16)] {
            let params = Params::new(m, t, 1, Some(len)).unwrap();
            let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let phc = hasher.hash_password_with_salt(b"correct horse", b"0123456789abcdef").unwrap().to_string();
            let stored = SecretHash::new(phc.clone());
            assert!(v.verify(Some(&stored), "correct horse").await.unwrap(), "{phc}");
            assert!(!v.verify(Some(&stored), "correct horsf").await.unwrap(), "{phc}");
        }
    }

    #[tokio::test]
    async fn generated_client_secrets_are_256_bits_of_base64url_and_verify_against_their_hash() {
        let (secret, hash) = generate_client_secret().unwrap();
        assert_eq!(secret.len(), 43, "{secret}");
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), GENERATED_SECRET_BYTES);
        assert_eq!(hash, hash_sha256(&secret).unwrap());
        let v = HashVerifier::new(1).unwrap();
        assert!(v.verify(Some(&SecretHash::new(hash)), &secret).await.unwrap());
        assert_ne!(generate_client_secret().unwrap().0, secret, "each secret is new");
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
