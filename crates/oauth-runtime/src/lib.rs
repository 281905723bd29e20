//! The runtime services of oauth-rs: the halves of `oauth-core`'s service
//! traits that need the operating system or an executor, and a gate in front
//! of the store.
//!
//! - [`credentials`]: [`HashVerifier`] (Argon2id on one worker thread per core,
//!   each reusing its 19 MiB, and `$sha256$` verification in constant time),
//!   [`OsSecrets`] (operating-system randomness), [`SystemClock`], and the
//!   hashing and client-secret generation that `oauth-server hash-secret`,
//!   `gen-secret` and the benchmark use.
//! - [`GatedStore`]: bounds how long a request waits for the store, and times
//!   every store operation.
//!
//! Nothing here knows HTTP: `oauth-http` renders, this crate runs. Use it
//! beside `oauth-core` when you embed the flows in your own server; use the
//! test doubles of `oauth-core`'s `testing` feature in tests instead.
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
