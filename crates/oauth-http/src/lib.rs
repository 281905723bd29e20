//! The HTTP front end of oauth-rs, on hyper 1.x.
//!
//! [`Frontend`] answers every endpoint of the server (RFC 8414 metadata, the
//! JWKS, `/authorize` with its login and consent pages, `/token`, `/revoke`,
//! `/introspect`, `/userinfo`, `/healthz`, `/metrics`) by parsing each request
//! into an `oauth_core` flow input and rendering the flow's answer. [`serve`]
//! runs it on a listener with the connection limit, timeouts and graceful
//! shutdown. The [`bearer`] module is the resource-server helper.
//!
//! Only this crate knows HTTP: core types are converted at its edge, and every
//! error on the wire comes from `oauth_core::Error`.
//!
//! It also holds the runtime halves of the core's service traits that need an
//! executor or the operating system ([`credentials`]: Argon2id verification on
//! its own worker threads, SHA-256 secret verification, OS randomness, the
//! system clock),
//! and [`GatedStore`], which bounds how long a request waits for the store.
//!
//! Use `oauth-server` for a finished binary; use this crate to put the endpoints
//! in your own hyper server with your own store.
//!
//! # Feature flags
//!
//! None.

#![forbid(unsafe_code)]

pub mod bearer;
pub mod credentials;
mod endpoints;
mod frontend;
mod gate;
mod metrics;
mod pages;
mod request;
mod response;
mod server;

pub use frontend::{Frontend, HttpConfig};
pub use gate::{GatedStore, StoreTimings};
pub use request::MAX_BODY;
pub use response::Body;
pub use server::serve;

/// The error type request bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the front end could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The issuer is not an absolute http(s) URL without query or fragment.
    #[error("the issuer {0:?} is not an absolute http(s) URL without query or fragment")]
    Issuer(String),
}
