//! The raw limits: the one expensive step each route cannot avoid, measured
//! in this process on the code path the server uses.
//!
//! - ES256 sign and verify as `oauth-jwt` does them: signing with the key
//!   parsed once (aws-lc-rs, the primitive jsonwebtoken's backend calls) over
//!   the JSON and base64url of a header and claims shaped like an access
//!   token; verifying with `jsonwebtoken::decode`;
//! - Argon2id verify with the server's own parameters, each thread reusing
//!   its memory as the server's Argon2 workers do;
//! - a durable sled write: an insert, a flush and an `fdatasync` of sled's log
//!   (the server's default `durability = "power"`), from 32 tasks, each on
//!   the blocking pool (SPEC facts: `flush_async` stalls under that load).
//!
//! Each is run for a fixed time on one thread per core (the sled write on 32
//! tasks), and reported as operations per second and CPU time per operation.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey, Header, Validation};

use crate::{Error, procfs};

/// One limit: how fast, and how much CPU per operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) per_second: f64,
    pub(crate) cpu: Duration,
}

/// A step some route cannot avoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Es256Sign,
    Es256Verify,
    Argon2Verify,
    DurableWrite,
    /// An ID token's signature: RSASSA-PKCS1-v1_5 with SHA-256 and a
    /// 2048-bit key parsed once, as the server signs.
    Rs256Sign,
}

impl Step {
    /// Every step, in report order.
    pub(crate) const ALL: [Step; 5] =
        [Step::Es256Sign, Step::Es256Verify, Step::Argon2Verify, Step::DurableWrite, Step::Rs256Sign];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Es256Sign => "ES256 sign",
            Step::Es256Verify => "ES256 verify",
            Step::Argon2Verify => "Argon2id verify",
            Step::DurableWrite => "sled insert + flush + fdatasync",
            Step::Rs256Sign => "RS256 sign",
        }
    }
}

/// The measured limits, by step (a step not measured is `None`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits([Option<Limit>; 5]);

impl Limits {
    pub(crate) fn get(&self, step: Step) -> Option<Limit> {
        self.0[step as usize]
    }

    /// The mean of two measurements, one taken before a run and one after:
    /// this machine's speed drifts within a minute, and a floor taken on one
    /// side of the run alone follows the drift.
    pub(crate) fn mean(&self, other: &Limits) -> Limits {
        let mut out = Limits::default();
        for step in Step::ALL {
            out.0[step as usize] = match (self.get(step), other.get(step)) {
                (Some(a), Some(b)) => {
                    Some(Limit { per_second: (a.per_second + b.per_second) / 2.0, cpu: (a.cpu + b.cpu) / 2 })
                }
                (a, b) => a.or(b),
            };
        }
        out
    }
}

/// Measures `steps`, each for `each` (Argon2id twice as long, since one
/// operation takes tens of milliseconds).
pub(crate) fn measure(steps: &[Step], each: Duration, password_hash: &str) -> Result<Limits, Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (pair, decoding) = es256_keys()?;
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:8080", "sub": "5f0c6a2e-4b7e-4d0a-9a57-0f0d6f1c2b3a",
        "aud": "http://127.0.0.1:8080", "client_id": "bench-app", "scope": "read write",
        "iat": 1_764_000_000u64, "exp": 4_102_444_800u64, "jti": "9b2d4f7e-1c3a-4e5b-8d6f-7a8b9c0d1e2f",
        "gid": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
    });
    let mut header = Header::new(JwtAlgorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("bench-kid-0123456789abcdefghijklmnopqrstuvw".into());
    let sign = || -> Option<String> {
        let mut input = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&claims).ok()?, &mut input);
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).ok()?;
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut input);
        Some(input)
    };
    let token = sign().ok_or_else(|| Error::Setup("ES256 signing failed".into()))?;
    let mut validation = Validation::new(JwtAlgorithm::ES256);
    validation.set_issuer(&["http://127.0.0.1:8080"]);
    validation.set_audience(&["http://127.0.0.1:8080"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

    let mut limits = Limits::default();
    for &step in steps {
        let limit = match step {
            Step::Es256Sign => on_threads(threads, each, || sign().is_some())?,
            Step::Es256Verify => on_threads(threads, each, || {
                jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).is_ok()
            })?,
            Step::Argon2Verify => {
                on_threads(threads, each * 2, || argon2_verify(password_hash, crate::BENCH_PASSWORD))?
            }
            Step::DurableWrite => sled_writes(32, each)?,
            Step::Rs256Sign => {
                let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| Error::Setup("cannot generate an RSA key".into()))?;
                on_threads(threads, each, || {
                    let mut signature = vec![0u8; rsa.public_modulus_len()];
                    let input = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAifQ";
                    rsa.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut signature)
                        .is_ok()
                })?
            }
        };
        limits.0[step as usize] = Some(limit);
    }
    Ok(limits)
}

/// One Argon2id verification as the server's workers do it: the PHC string
/// parsed per call, each thread hashing into its one reused memory area.
fn argon2_verify(phc: &str, password: &str) -> bool {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    let mut out = vec![0u8; expected.len()];
    MEMORY.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), Block::default());
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..]).is_ok()
    }) && out == expected.as_bytes()
}

/// A fresh P-256 key pair, parsed once, and its public half for jsonwebtoken.
fn es256_keys() -> Result<(EcdsaKeyPair, DecodingKey), Error> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| Error::Setup("cannot generate a P-256 key".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| Error::Setup("cannot read the P-256 key".into()))?;
    // The public key is the uncompressed point 0x04 || x || y.
    let point = pair.public_key().as_ref();
    let (x, y) = point.get(1..33).zip(point.get(33..65)).ok_or_else(|| Error::Setup("bad P-256 point".into()))?;
    let decoding = DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))?;
    Ok((pair, decoding))
}

/// Runs `op` on `threads` threads for `time`; every call must succeed.
fn on_threads(threads: usize, time: Duration, op: impl Fn() -> bool + Sync) -> Result<Limit, Error> {
    let me = std::process::id();
    let ops = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let cpu_before = procfs::cpu_time(me)?;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while started.elapsed() < time {
                    if !op() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let wall = started.elapsed();
    if failed.load(Ordering::Relaxed) {
        return Err(Error::Setup("a raw operation failed".into()));
    }
    Ok(limit(ops.load(Ordering::Relaxed), wall, procfs::cpu_time(me)? - cpu_before))
}

fn limit(ops: u64, wall: Duration, cpu: Duration) -> Limit {
    let n = ops.max(1) as f64;
    Limit { per_second: n / wall.as_secs_f64(), cpu: cpu.div_f64(n) }
}

/// `tasks` tokio tasks each inserting a record, flushing it and syncing the
/// log's data on the blocking pool, in a throwaway sled directory, for `time`.
fn sled_writes(tasks: usize, time: Duration) -> Result<Limit, Error> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new().path(dir.path()).open()?;
    let tree = db.open_tree("bench")?;
    let log = Arc::new(std::fs::File::open(dir.path().join("db"))?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let me = std::process::id();
    let cpu_before = procfs::cpu_time(me)?;
    let started = Instant::now();
    let ops = runtime.block_on(async {
        let ops = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for task in 0..tasks {
            let (tree, ops, log) = (tree.clone(), ops.clone(), log.clone());
            handles.push(tokio::spawn(async move {
                let value = [7u8; 160];
                let mut i = 0u64;
                while started.elapsed() < time {
                    let key = format!("{task:04}-{i:012}");
                    i += 1;
                    tree.insert(key.as_bytes(), &value[..])?;
                    let (t, log) = (tree.clone(), log.clone());
                    tokio::task::spawn_blocking(move || {
                        t.flush().map_err(Error::from).and_then(|_| Ok(log.sync_data()?))
                    })
                    .await
                    .map_err(|e| Error::Setup(e.to_string()))??;
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, Error>(())
            }));
        }
        for h in handles {
            h.await.map_err(|e| Error::Setup(e.to_string()))??;
        }
        Ok::<_, Error>(ops.load(Ordering::Relaxed))
    })?;
    let wall = started.elapsed();
    Ok(limit(ops, wall, procfs::cpu_time(me)? - cpu_before))
}
