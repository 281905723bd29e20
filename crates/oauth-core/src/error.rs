//! The one error type of the core, and how each variant appears on the wire.
//!
//! Every variant maps to an RFC 6749 (sections 4.1.2.1 and 5.2), RFC 6750,
//! RFC 7009, RFC 7591, RFC 8628, RFC 8707 or RFC 9449 error code (or, for the admin API, one of
//! its two own: `not_found`, `conflict`), knows its HTTP status, and knows whether it may be sent
//! to the client's `redirect_uri`. Nothing else in the workspace invents error
//! codes for the wire: the HTTP layer renders [`Error::code`],
//! [`Error::status`] and [`Error::description`].

use std::fmt;

/// A `Result` whose error defaults to the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a flow, validation or transition.
///
/// Descriptions are fixed strings: an error never echoes client input, so it is
/// safe to put in an `error_description`, a log line or an HTML page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is missing, repeated, malformed or not allowed here.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed: unknown client, wrong or missing secret, or a
    /// secret sent by a public client (RFC 6749 5.2). Always 401.
    #[error("invalid_client")]
    InvalidClient,
    /// The code, refresh token or resource-owner credentials are invalid, expired,
    /// revoked, already used, or bound to another client or redirect URI.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// The client is not allowed to use this grant or response type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// The grant type is unknown or switched off on this server.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The scope is malformed or exceeds what the client may ask for.
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// The resource owner or the resource availability check refused.
    #[error("access_denied: {0}")]
    AccessDenied(&'static str),
    /// `response_type` is not `code`.
    #[error("unsupported_response_type")]
    UnsupportedResponseType,
    /// `prompt=none`, but the browser has no live session (or the session is
    /// older than `max_age`), so a login page would be needed (OpenID
    /// Connect Core 3.1.2.6).
    #[error("login_required")]
    LoginRequired,
    /// `prompt=none`, but the user has not consented to this client and scope
    /// (or the client always asks), so a consent page would be needed.
    #[error("consent_required")]
    ConsentRequired,
    /// At `/authorize`: the `client_id` is missing or unknown. Never redirected,
    /// since there is no trusted redirect URI to send it to.
    #[error("invalid_request: unknown or missing client_id")]
    UnknownClient,
    /// At `/authorize`: the `redirect_uri` is missing or matches no registered one.
    /// Never redirected (RFC 6749 4.1.2.1, RFC 9700 4.1).
    #[error("invalid_request: missing or unregistered redirect_uri")]
    InvalidRedirectUri,
    /// A bearer token is malformed, expired, revoked or not an access token
    /// (RFC 6750 3.1). Always 401.
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// A DPoP-bound access token was presented with the `Bearer` scheme
    /// (RFC 9449 7.2): refused as `invalid_token`, with a `DPoP` challenge.
    #[error("invalid_token: a DPoP-bound token sent as a bearer token")]
    BoundTokenAsBearer,
    /// The token is valid but cannot be used for this request (RFC 6750 3.1).
    #[error("insufficient_scope: {0}")]
    InsufficientScope(&'static str),
    /// Too many failed attempts for this account, client or peer address. `code`
    /// is the RFC 6749 code the body carries (`invalid_grant` or `invalid_client`).
    #[error("too many failed attempts; retry after {retry_after} s")]
    Throttled {
        /// Seconds until the sliding window lets an attempt through again.
        retry_after: u64,
        /// The body's error code.
        code: ErrorCode,
    },
    /// Too many requests of one kind from one peer address (open client
    /// registrations), or open registration is full. 429 with `Retry-After`.
    #[error("rate limited; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until the window lets a request through again.
        retry_after: u64,
    },
    /// The limit for this account, client or peer address stayed filled by
    /// attempts whose check is still running for longer than the front end
    /// would wait (the throttle itself waits for them to settle). Answered 429
    /// with a short `Retry-After`. `code` is the RFC 6749 code the body
    /// carries.
    #[error("attempts are being checked; retry in a moment")]
    ThrottleBusy {
        /// The body's error code.
        code: ErrorCode,
    },
    /// At `/authorize`: this peer address already has `max_pending_per_ip`
    /// authorization sessions that no one has logged in to. Answered with a
    /// 429 error page, never redirected.
    #[error("too many pending authorization sessions; retry after {retry_after} s")]
    TooManyPending {
        /// Seconds until the oldest of them expires.
        retry_after: u64,
    },
    /// A state-machine transition that the session's current state does not allow.
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The state the session was in.
        from: &'static str,
        /// The state that was asked for.
        to: &'static str,
    },
    /// A DPoP proof (RFC 9449 4.3) is malformed, wrongly signed, stale, replayed,
    /// made for another request or key, or missing where one is required. At
    /// `/token` and `/par` a 400; at a resource a 401 with a `DPoP` challenge.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The server requires a DPoP nonce (RFC 9449 8) and the proof carried
    /// none, or one that is no longer current. The answer carries the nonce to
    /// use in a `DPoP-Nonce` header.
    #[error("use_dpop_nonce")]
    UseDpopNonce {
        /// The current nonce.
        nonce: String,
    },
    /// Device grant (RFC 8628 3.5): the user has not decided yet; poll again
    /// after the interval.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// Device grant (RFC 8628 3.5): the poll came sooner than the interval
    /// after the previous one; the interval is now 5 s longer.
    #[error("slow_down")]
    SlowDown,
    /// Device grant (RFC 8628 3.5): the device code has expired; start again.
    #[error("expired_token")]
    ExpiredToken,
    /// The authorization session ran out of time before it produced a code.
    #[error("invalid_request: the authorization session has expired")]
    SessionExpired,
    /// The requested resource (RFC 8707 `resource`) is malformed, unknown, not
    /// one the client may ask for, or not the one authorized.
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// Client metadata (RFC 7591 2) that breaks a rule: an unknown grant type,
    /// a scope or resource the registrant may not have, private keys in `jwks`.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(&'static str),
    /// A `redirect_uris` entry of client metadata that cannot be registered
    /// (RFC 7591 3.2.2): not absolute, a fragment, `http` off loopback.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUriMetadata(&'static str),
    /// The admin API: no such client, account or grant. 404.
    #[error("not_found: {0}")]
    NotFound(&'static str),
    /// The admin API: the change conflicts with what exists (a taken
    /// `client_id` or username, a client from the configuration file). 409.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The store failed or timed out. Nothing was acknowledged; answered with 503.
    #[error("store unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A server-side component (token signing, secret generation, password hashing)
    /// failed. This is never caused by client input.
    #[error("server_error: {0}")]
    Internal(String),
}

impl Error {
    /// The RFC error code this error is sent as.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest(_)
            | Error::UnknownClient
            | Error::InvalidRedirectUri
            | Error::IllegalTransition { .. }
            | Error::SessionExpired
            | Error::RateLimited { .. } => ErrorCode::InvalidRequest,
            Error::InvalidClient => ErrorCode::InvalidClient,
            Error::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Error::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Error::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            Error::InvalidScope(_) => ErrorCode::InvalidScope,
            Error::AccessDenied(_) => ErrorCode::AccessDenied,
            Error::UnsupportedResponseType => ErrorCode::UnsupportedResponseType,
            Error::LoginRequired => ErrorCode::LoginRequired,
            Error::ConsentRequired => ErrorCode::ConsentRequired,
            Error::AuthorizationPending => ErrorCode::AuthorizationPending,
            Error::SlowDown => ErrorCode::SlowDown,
            Error::ExpiredToken => ErrorCode::ExpiredToken,
            Error::InvalidToken(_) | Error::BoundTokenAsBearer => ErrorCode::InvalidToken,
            Error::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Error::InvalidTarget(_) => ErrorCode::InvalidTarget,
            Error::InvalidClientMetadata(_) => ErrorCode::InvalidClientMetadata,
            Error::InvalidRedirectUriMetadata(_) => ErrorCode::InvalidRedirectUri,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::InvalidDpopProof(_) => ErrorCode::InvalidDpopProof,
            Error::UseDpopNonce { .. } => ErrorCode::UseDpopNonce,
            Error::Throttled { code, .. } | Error::ThrottleBusy { code } => *code,
            Error::Store(_) | Error::TooManyPending { .. } => ErrorCode::TemporarilyUnavailable,
            Error::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// The HTTP status for a direct (non-redirect) answer.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidClient | Error::InvalidToken(_) | Error::BoundTokenAsBearer => 401,
            Error::InsufficientScope(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::Throttled { .. }
            | Error::RateLimited { .. }
            | Error::ThrottleBusy { .. }
            | Error::TooManyPending { .. } => 429,
            Error::Store(_) => 503,
            Error::Internal(_) => 500,
            _ => 400,
        }
    }

    /// Whether an `/authorize` error may go to the client's `redirect_uri`. The
    /// two errors that leave no trusted redirect URI may not, and the pending
    /// cap is answered with a page (SPEC).
    pub fn redirectable(&self) -> bool {
        !matches!(self, Error::UnknownClient | Error::InvalidRedirectUri | Error::TooManyPending { .. })
    }

    /// A fixed, human-readable `error_description`, never containing input.
    pub fn description(&self) -> &'static str {
        match self {
            Error::InvalidRequest(d)
            | Error::InvalidGrant(d)
            | Error::UnauthorizedClient(d)
            | Error::InvalidScope(d)
            | Error::AccessDenied(d)
            | Error::InvalidToken(d)
            | Error::InsufficientScope(d)
            | Error::InvalidTarget(d)
            | Error::InvalidClientMetadata(d)
            | Error::InvalidRedirectUriMetadata(d)
            | Error::NotFound(d)
            | Error::Conflict(d)
            | Error::InvalidDpopProof(d) => d,
            Error::UseDpopNonce { .. } => "the DPoP proof must carry the server's current nonce",
            Error::InvalidClient => "client authentication failed",
            Error::BoundTokenAsBearer => "the token is DPoP-bound: send it with the DPoP scheme and a proof",
            Error::UnsupportedGrantType => "the grant type is not supported",
            Error::UnsupportedResponseType => "only response_type=code is supported",
            Error::LoginRequired => "the user must sign in, and prompt=none forbids a page",
            Error::ConsentRequired => "the user must consent, and prompt=none forbids a page",
            Error::AuthorizationPending => "the user has not decided yet; poll again after the interval",
            Error::SlowDown => "polled too soon; the interval is now 5 seconds longer",
            Error::ExpiredToken => "the device code has expired; start again",
            Error::UnknownClient => "unknown or missing client_id",
            Error::InvalidRedirectUri => "missing or unregistered redirect_uri",
            Error::Throttled { .. } => "too many failed attempts; try again later",
            Error::RateLimited { .. } => "too many requests from this address; try again later",
            Error::ThrottleBusy { .. } => "other attempts are being checked; try again in a moment",
            Error::TooManyPending { .. } => "too many unfinished sign-ins from this address; try again later",
            Error::IllegalTransition { .. } => "the authorization session cannot take this step",
            Error::SessionExpired => "the authorization session has expired; start again",
            Error::Store(_) => "the service is temporarily unavailable",
            Error::Internal(_) => "internal error",
        }
    }
}

/// The error codes of RFC 6749 (4.1.2.1, 5.2), RFC 6750 (3.1), RFC 7591
/// (3.2.2), RFC 8628 (3.5), RFC 8707 (2), RFC 9449 (5, 7.1, 8) and OpenID Connect Core 1.0
/// (3.1.2.6), and the admin API's `not_found` and `conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `invalid_token` (RFC 6750)
    InvalidToken,
    /// `insufficient_scope` (RFC 6750)
    InsufficientScope,
    /// `invalid_target` (RFC 8707)
    InvalidTarget,
    /// `invalid_client_metadata` (RFC 7591)
    InvalidClientMetadata,
    /// `invalid_redirect_uri` (RFC 7591)
    InvalidRedirectUri,
    /// `not_found` (the admin API)
    NotFound,
    /// `conflict` (the admin API)
    Conflict,
    /// `invalid_dpop_proof` (RFC 9449)
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449)
    UseDpopNonce,
    /// `login_required` (OpenID Connect Core 3.1.2.6)
    LoginRequired,
    /// `consent_required` (OpenID Connect Core 3.1.2.6)
    ConsentRequired,
    /// `authorization_pending` (RFC 8628)
    AuthorizationPending,
    /// `slow_down` (RFC 8628)
    SlowDown,
    /// `expired_token` (RFC 8628)
    ExpiredToken,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn client_and_redirect_errors_are_never_redirected() {
        assert!(!Error::UnknownClient.redirectable());
        assert!(!Error::InvalidRedirectUri.redirectable());
        assert!(Error::InvalidScope("x").redirectable());
        assert!(Error::AccessDenied("x").redirectable());
    }

    #[test]
    fn statuses_follow_the_rfcs() {
        assert_eq!(Error::InvalidClient.status(), 401);
        assert_eq!(Error::InvalidToken("x").status(), 401);
        assert_eq!(Error::InsufficientScope("x").status(), 403);
        assert_eq!(Error::InvalidGrant("x").status(), 400);
        let throttled = Error::Throttled { retry_after: 3, code: ErrorCode::InvalidGrant };
        assert_eq!((throttled.status(), throttled.code()), (429, ErrorCode::InvalidGrant));
        assert_eq!(
            (Error::InvalidTarget("x").status(), Error::InvalidTarget("x").code().as_str()),
            (400, "invalid_target")
        );
        assert!(Error::InvalidTarget("x").redirectable());
        assert_eq!(Error::NotFound("x").status(), 404);
        assert_eq!(Error::Conflict("x").status(), 409);
        assert_eq!(Error::InvalidRedirectUriMetadata("x").code().as_str(), "invalid_redirect_uri");
        assert_eq!(Error::RateLimited { retry_after: 1 }.status(), 429);
        assert_eq!(
            (Error::InvalidDpopProof("x").status(), Error::InvalidDpopProof("x").code().as_str()),
            (400, "invalid_dpop_proof")
        );
        let nonce = Error::UseDpopNonce { nonce: "n".into() };
        assert_eq!((nonce.status(), nonce.code().as_str()), (400, "use_dpop_nonce"));
        for (e, code) in [
            (Error::AuthorizationPending, "authorization_pending"),
            (Error::SlowDown, "slow_down"),
            (Error::ExpiredToken, "expired_token"),
        ] {
            assert_eq!((e.status(), e.code().as_str()), (400, code), "RFC 8628 3.5");
        }
        let store = Error::from(StoreError::Unavailable("disk full".into()));
        assert_eq!((store.status(), store.code().as_str()), (503, "temporarily_unavailable"));
    }
}
