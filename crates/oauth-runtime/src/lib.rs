//! The runtime services of oauth-rs: the halves of `oauth-core`'s service
//! traits that need the operating system or an executor, and a gate in front
//! of the store.
//!
//! - [`credentials`]: [`HashVerifier`] (Argon2id on one worker thread per core,
//!   each reusing its 19 MiB, and `$sha256$` verification in constant time),
//!   [`OsSecrets`] (operating-system randomness), [`SystemClock`], and the
//!   hashing that `oauth-server hash-secret` and the benchmark use.
//! - [`GatedStore`]: bounds how long a request waits for the store, and times
//!   every store operation.
//!
//! Nothing here knows HTTP: `oauth-http` renders, this crate runs. Use it
//! beside `oauth-core` when you embed the flows in your own server; use the
//! test doubles of `oauth-core`'s `testing` feature in tests instead.
//!
//! # Feature flags
//!
//! None.
//!
//! # Stability
//!
//! Pre-1.0: the API may change in any minor release. The hash formats it
//! writes and accepts (Argon2id PHC strings, `$sha256$` with 64 hex digits)
//! are stable.

#![forbid(unsafe_code)]

pub mod credentials;
mod gate;

pub use credentials::{HashVerifier, OsSecrets, SystemClock};
pub use gate::{GatedStore, StoreTimings};
