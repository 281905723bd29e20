//! Discovery: RFC 8414 metadata and the JWKS.

use http::{Response, StatusCode};
use oauth_core::GrantType;
use serde::Serialize;

use crate::Frontend;
use crate::response::{self, Body};

#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    userinfo_endpoint: String,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    code_challenge_methods_supported: [&'static str; 1],
    authorization_response_iss_parameter_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
}

impl Frontend {
    /// `GET /.well-known/oauth-authorization-server`.
    pub(crate) fn metadata(&self) -> Response<Body> {
        let issuer = self.issuer();
        let base = issuer.trim_end_matches('/');
        let grants = &self.authority.settings().grants;
        let m = Metadata {
            issuer,
            authorization_endpoint: format!("{base}/authorize"),
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/jwks.json"),
            revocation_endpoint: format!("{base}/revoke"),
            introspection_endpoint: format!("{base}/introspect"),
            userinfo_endpoint: format!("{base}/userinfo"),
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: GrantType::ALL
                .into_iter()
                .filter(|g| grants.contains(g))
                .map(GrantType::as_str)
                .collect(),
            token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
            revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
            introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported: ["S256"],
            authorization_response_iss_parameter_supported: true,
            registration_endpoint: self.admin.as_ref().map(|_| format!("{base}/register")),
        };
        response::json(StatusCode::OK, &m)
    }

    /// `GET /jwks.json`: the public keys that verify now.
    pub(crate) fn jwks(&self) -> Response<Body> {
        let now = self.authority.services().clock.now();
        response::json(StatusCode::OK, &self.codec.ring().jwks(now))
    }
}
