//! The MedMij profile for oauth-rs.
//!
//! In MedMij, a care provider's authorization server trusts the personal
//! health apps on the scheme's *OAuth Client List* (OCL), an XML file the
//! scheme authority publishes. This crate:
//!
//! - parses and checks the OCL ([`Ocl`]);
//! - turns every OCL hostname into a public client ([`OclClients`], a
//!   `ClientRegistry`): grant `authorization_code` only, exactly one of the
//!   provider's data-service scopes per request, redirect URIs that are `https`
//!   on the client's own host, PKCE as the profile configures it, and the
//!   organisation name on the consent page;
//! - reloads the list, keeping the last good one when a new one is malformed
//!   or older (a lower sequence number);
//! - runs the resource availability check for OCL clients ([`MedMijCheck`]):
//!   the account needs a `bsn` attribute and must be `min_age` or older on
//!   today's date in Europe/Amsterdam.
//!
//! Use it with `oauth-core` directly or through `oauth-server`'s `[medmij]`
//! table.
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

mod age;
mod check;
mod clients;
mod ocl;

pub use age::{age_reached, amsterdam_date};
pub use check::MedMijCheck;
pub use clients::{OclClients, Profile};
pub use ocl::{NAMESPACE, Ocl, OclClient};

/// What can go wrong with an OCL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not well-formed XML of the OCL schema.
    #[error("malformed OCL: {0}")]
    Malformed(String),
    /// The root element is not in the OCL namespace.
    #[error("the OCL is not in namespace {NAMESPACE}")]
    Namespace,
    /// A hostname that cannot be a client id, or appears twice.
    #[error("bad OCL hostname {0:?}")]
    Hostname(String),
    /// A reload with a sequence number lower than the list in use.
    #[error("OCL sequence number {new} is lower than the current {current}")]
    Older {
        /// The list in use.
        current: u64,
        /// The list offered.
        new: u64,
    },
    /// A profile scope that is not a valid scope token.
    #[error("bad MedMij scope {0:?}")]
    Scope(String),
}
