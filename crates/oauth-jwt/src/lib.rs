//! JWT access tokens for oauth-rs (RFC 9068) and OpenID Connect ID tokens,
//! with signing keys, rotation and the JWKS (RFC 7517).
//!
//! [`JwtCodec`] implements `oauth_core::AccessTokenCodec`: the server mints
//! with it and checks bearer tokens with it. It implements
//! `oauth_core::IdTokenCodec` too: ID tokens (signed by the RS256 key the
//! ring keeps for them, or the access-token key), and the check of an
//! `id_token_hint`. [`KeyRing`] holds the key that
//! signs and the keys that still verify, and creates, loads and rotates them
//! through the store, so every node and every restart sees the same keys.
//! [`Verifier`] is for a resource server that only checks tokens, with keys
//! from the issuer's JWKS. [`JwtProofs`] checks the JWTs clients sign: DPoP
//! proofs (RFC 9449) and `private_key_jwt` client assertions (RFC 7523).
//!
//! Only this crate knows JWT. Refresh tokens are not JWTs: they are opaque
//! secrets handled by `oauth-core`, so no JWT verifier here can ever accept
//! one, and an access token is never accepted where a refresh token is due.
//!
//! # Verification rules
//!
//! The algorithm comes from the key the `kid` names, never from the token
//! header, so `alg: none` and algorithm confusion (an HMAC token "signed" with a
//! public key) fail. `typ` must be `at+jwt`; `iss`, `aud` and `exp` are
//! required; `exp`, `nbf` and `iat` are checked against the caller's clock with
//! a leeway of at most 60 s. An access token bound to a DPoP key carries its
//! thumbprint in `cnf.jkt` (RFC 9449 6.1).
//!
//! # Crypto backend
//!
//! `jsonwebtoken` with `aws_lc_rs`. Measured on these machines, ES256 costs
//! about 27 µs per sign and 55 µs per verify with aws-lc, against 390 µs and
//! 240 µs with `rust_crypto` (see `docs/benchmarks.md` for this crate's own
//! figures). ES256, the default, is on every token request's path, so the
//! backend decides much of the server's cost per request.
//!
//! # Examples
//!
//! Two runnable programs show how the crates fit together when embedded
//! (`cargo xtask test` builds both):
//! - [`oauth-core/examples/medmij_steps.rs`](https://example.invalid/oauth-rs/crates/oauth-core/examples/medmij_steps.rs)
//!   (`cargo run -p oauth-core --example medmij_steps`): only the core, over a
//!   store of its own, driving the MedMij steps (create session, check
//!   resource, decide, exchange);
//! - [`oauth-http/examples/embed_http.rs`](https://example.invalid/oauth-rs/crates/oauth-http/examples/embed_http.rs)
//!   (`cargo run -p oauth-http --example embed_http`): every endpoint served
//!   by `oauth-http` on the memory store, with a resource check of its own.
//!
//! # Feature flags
//!
//! None.

#![forbid(unsafe_code)]

mod codec;
mod id_token;
mod keys;
mod proofs;
mod remote;
mod ring;

pub use codec::{ACCESS_TOKEN_TYP, JwtCodec, MAX_LEEWAY};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keys::{SigningAlg, SigningKey};
pub use proofs::{DPOP_TYP, JwtProofs, check_client_jwks};
pub use remote::{JwksSource, Verifier};
pub use ring::KeyRing;

/// Why a key could not be made, loaded or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The algorithm name is not one of ES256, EdDSA, RS256, HS256, HS512.
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// An HMAC key shorter than its hash output.
    #[error("{alg} needs a key of at least {min} bytes, got {len}")]
    KeyTooShort {
        /// The algorithm.
        alg: &'static str,
        /// The shortest accepted length.
        min: usize,
        /// The length given.
        len: usize,
    },
    /// Key material that does not parse or does not work for its algorithm.
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// The crypto library failed.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    /// Reading or writing keys in the store failed.
    #[error(transparent)]
    Store(#[from] oauth_core::StoreError),
}

/// Installs the aws-lc provider as jsonwebtoken's process default. Called by
/// every constructor that signs or verifies; harmless when already installed.
/// Without it, a second crate in the build that enables jsonwebtoken's
/// `rust_crypto` feature would leave no default and make signing panic.
pub(crate) fn install_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
}
