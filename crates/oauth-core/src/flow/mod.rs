//! The flows, as methods of [`Authority`](crate::Authority). Each module is one
//! endpoint's logic, free of HTTP: the front end parses the request into the
//! flow's input type and renders its output or [`Error`](crate::Error).

mod authorize;
mod client_auth;
mod device;
mod dpop;
mod login;
mod logout;
mod oidc;
mod redirect;
mod sso;
mod token;
mod token_status;

pub use authorize::{
    AuthorizeRejection, AuthorizeRequest, PUSHED_REQUEST_TTL, PushedAuthorization, REQUEST_URI_PREFIX,
};
pub use client_auth::{AuthenticatedClient, ClientAuthMethod, ClientCredentials, MAX_ASSERTION_LIFETIME};
pub use device::{DeviceAuthorization, DeviceAuthorizationRequest};
pub(crate) use dpop::NonceCache;
pub use dpop::{DpopRequest, NONCE_WINDOW};
pub use login::{LoginOutcome, SignedIn};
pub use logout::{CheckedLogout, LogoutOutcome, LogoutRequest};
pub use oidc::{ClaimValue, OPENID, UserInfo, claims_supported};
pub use sso::Step;
pub use token::{TokenRequest, TokenResponse};
pub use token_status::{BearerPrincipal, Introspection};
