//! The HTTP front end of oauth-rs, on hyper 1.x.
//!
//! [`Frontend`] answers every endpoint of the server (RFC 8414 and OpenID
//! Connect metadata, the JWKS, `/authorize` with its login and consent pages
//! in English and Dutch, `/token`, `/revoke`, `/introspect`, `/userinfo`,
//! `/logout`, `/healthz`, `/metrics`) by parsing each request into an
//! `oauth_core` flow input and rendering the flow's answer, with the CORS
//! headers a browser app on another origin needs. [`serve`]
//! runs it on a listener with the connection limit, timeouts and graceful
//! shutdown. The [`bearer`] module is the resource-server helper
//! (`examples/resource_server.rs` is a separate API built on it).
//! [`SecurityEventLog`] is where the flows report security events: a WARN line
//! and a count at `/metrics` for each.
//!
//! Only this crate knows HTTP: core types are converted at its edge, and every
//! error on the wire comes from `oauth_core::Error`.
//!
//! This crate parses, routes and renders, and nothing else: the services it
//! runs on that need the operating system or an executor (Argon2id workers,
//! randomness, the clock, the store gate) are in `oauth-runtime`.
//!
//! Use `oauth-server` for a finished binary; use this crate to put the endpoints
//! in your own hyper server with your own store.
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

mod admin;
pub mod bearer;
mod cors;
mod endpoints;
mod events;
mod frontend;
mod i18n;
mod metrics;
mod openapi;
mod pages;
mod request;
mod response;
mod server;
mod wire;

pub use admin::{AdminApi, Backup};
pub use events::SecurityEventLog;
pub use frontend::{Frontend, HttpConfig};
pub use request::MAX_BODY;
pub use response::Body;
pub use server::{Handler, serve};

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
