//! The core of oauth-rs: an OAuth 2.0 / 2.1 authorization server's logic with no
//! IO.
//!
//! This crate holds the domain types and their validation, the authorization
//! session state machine, and every flow (authorization request, login,
//! single sign-on, resource check, consent, the four grants, ID tokens,
//! UserInfo, logout, revocation, introspection, bearer checks) as async
//! methods of [`Authority`]. It does no IO of its own: no
//! tokio, no hyper, no files, no clock and no randomness except through the
//! traits in [`Store`], [`ClientRegistry`], [`Clock`], [`SecretSource`],
//! [`SecretVerifier`], [`AccessTokenCodec`], [`IdTokenCodec`],
//! [`ProofChecker`] and [`ResourceCheck`]. So every
//! flow runs the same under test, with a fixed clock and an in-memory store, as
//! in production. It does not log either: a replayed code, a reused refresh
//! token or a throttle lockout is reported to [`SecurityEvents`] as a
//! [`SecurityEvent`], and the front end writes and counts it.
//!
//! Use this crate alone to embed the state machine in your own server. For a
//! ready HTTP front end use `oauth-http`; for a store, `oauth-store-sled` (the
//! durable default) or `oauth-store-mem`; for JWT access tokens, `oauth-jwt`.
//!
//! # How a flow reads
//!
//! Security checks leave proof values that only the checking function can make,
//! and the functions after them take those values, so a skipped check does not
//! compile: every grant takes an [`AuthenticatedClient`]; the authorization
//! session keeps its [`RedirectUriMatched`], so every response it sends goes to
//! a checked URI; the code exchange that issues tokens takes a [`PkceVerified`]
//! by value; and a grant binds tokens to a DPoP key only given the
//! [`DpopVerified`] that [`Authority::check_dpop`] makes.
//! Every error is an [`Error`] that knows its RFC 6749 / 6750 code, its HTTP
//! status and whether it may be redirected.
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
//! - `testing` (off): test doubles and a ready fixture in [`testing`], for
//!   store conformance tests and for tests of code built on this crate.
//!
//! # Stability
//!
//! Pre-1.0: the API may change in any minor release. The wire behaviour it
//! implements (codes, statuses, parameters) follows the RFCs and is stable.

#![forbid(unsafe_code)]

mod account;
mod admin;
mod authority;
mod client;
pub mod device;
mod error;
mod flow;
mod forward;
mod registry;
mod services;
mod session;
mod sso;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod types;

pub use account::{Account, AccountOrigin};
pub use admin::{
    AccountPatch, Admin, Admission, BROWSER_SESSIONS, CONSENTS, ClientMetadata, ClientView, DEFAULT_PAGE, Issued,
    MAX_PAGE, NewAccount, Page, Registrant,
};
pub use authority::{Authority, DpopSettings, RegistrationSettings, Services, Settings};
pub use client::{
    Client, ClientError, ClientOrigin, ClientRecord, ClientRegistry, ClientSettings, ConsentRule, ScopeRule, SecretHash,
};
pub use error::{Error, ErrorCode, Result};
pub use flow::{
    AuthenticatedClient, AuthorizeRejection, AuthorizeRequest, BearerPrincipal, CheckedLogout, ClaimValue,
    ClientAuthMethod, ClientCredentials, DeviceAuthorization, DeviceAuthorizationRequest, DpopRequest, Introspection,
    LoginOutcome, LogoutOutcome, LogoutRequest, MAX_ASSERTION_LIFETIME, NONCE_WINDOW, OPENID, PUSHED_REQUEST_TTL,
    PushedAuthorization, REQUEST_URI_PREFIX, SignedIn, Step, TokenRequest, TokenResponse, UserInfo, claims_supported,
};
pub use registry::{ClientSource, FixedClients, LayeredClients, NoFixedClients, StoredClients};
pub use services::{
    AccessTokenClaims, AccessTokenCodec, AllowAll, AssertionClaims, Clock, DpopProof, IdTokenAlg, IdTokenClaims,
    IdTokenCodec, IdTokenHint, IgnoreEvents, ProofChecker, ResourceCheck, ResourceDecision, SecretHasher, SecretSource,
    SecretVerifier, SecurityEvent, SecurityEventKind, SecurityEvents, ThrottleSubject,
};
pub use session::{Authentication, AuthorizationSession, SessionState};
pub use sso::{BROWSER_SESSION, ConsentGiven, LiveBrowserSession, REMEMBERED_CONSENT};
pub use store::{
    CodeRedemption, Grant, Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SigningKeyRecord, Store,
    StoreError, Swept, ThrottleKey, add_failure, remove_failure, rotation_family,
};
pub use throttle::{ThrottleSettings, take_throttle_wait};
pub use types::{
    AccessTokenId, AccountId, ClientId, CodeChallenge, CodeVerifier, DpopVerified, GrantId, GrantType, Hint, MaxAge,
    Nonce, PkceVerified, Prompt, RedirectPolicy, RedirectUri, RedirectUriMatched, ResourceUri, ResponseType, Scope,
    SessionId, Sid, State, TokenHash, USER_CODE_ALPHABET, USER_CODE_LEN, UserCode, WebOrigin,
};
pub use types::{OriginError, RedirectUriError};
