//! Discovery: the metadata document (RFC 8414 with RFC 9126's and RFC
//! 9449's fields, and OpenID Connect Discovery 1.0, one document at both
//! well-known paths) and the JWKS.

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
    pushed_authorization_request_endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<String>,
    require_pushed_authorization_requests: bool,
    end_session_endpoint: String,
    scopes_supported: [&'static str; 4],
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: Vec<&'static str>,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: &'static [&'static str],
    token_endpoint_auth_signing_alg_values_supported: &'a [&'static str],
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    revocation_endpoint_auth_signing_alg_values_supported: &'a [&'static str],
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    introspection_endpoint_auth_signing_alg_values_supported: &'a [&'static str],
    dpop_signing_alg_values_supported: &'a [&'static str],
    code_challenge_methods_supported: [&'static str; 1],
    claims_supported: Vec<&'static str>,
    prompt_values_supported: [&'static str; 3],
    ui_locales_supported: [&'static str; 2],
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    authorization_response_iss_parameter_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
}

/// How clients may authenticate at `/token` and `/par` (and `/revoke`,
/// where public clients may come too): every method, or under FAPI 2.0
/// `private_key_jwt` alone.
const TOKEN_AUTH: &[&str] = &["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];
const INTROSPECTION_AUTH: &[&str] = &["client_secret_basic", "client_secret_post", "private_key_jwt"];
const FAPI2_AUTH: &[&str] = &["private_key_jwt"];

impl Frontend {
    /// `GET /.well-known/oauth-authorization-server` and
    /// `/.well-known/openid-configuration`: every field OpenID Connect
    /// Discovery 1.0 requires (`issuer`, the endpoints, `jwks_uri`,
    /// `response_types_supported`, `subject_types_supported`,
    /// `id_token_signing_alg_values_supported`) and what SPEC-2 adds.
    pub(crate) fn metadata(&self) -> Response<Body> {
        let issuer = self.issuer();
        let base = issuer.trim_end_matches('/');
        let settings = self.authority.settings();
        let grants = &settings.grants;
        let proofs = &self.authority.services().proofs;
        let fapi2 = settings.fapi2;
        // RS256, which OpenID Connect requires, and the server's own
        // algorithm, which a client may ask for; never an HMAC algorithm,
        // whose key the client does not have. Under FAPI 2.0 every ID token
        // is signed with the server's algorithm, and RS256 is not offered.
        let mut algs = if fapi2 { vec![] } else { vec!["RS256"] };
        let own = self.codec.ring().signer().alg();
        if !own.is_symmetric() && !algs.contains(&own.name()) {
            algs.push(own.name());
        }
        let m = Metadata {
            issuer,
            authorization_endpoint: format!("{base}/authorize"),
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/jwks.json"),
            revocation_endpoint: format!("{base}/revoke"),
            introspection_endpoint: format!("{base}/introspect"),
            userinfo_endpoint: format!("{base}/userinfo"),
            pushed_authorization_request_endpoint: format!("{base}/par"),
            device_authorization_endpoint: grants
                .contains(&GrantType::DeviceCode)
                .then(|| format!("{base}/device_authorization")),
            require_pushed_authorization_requests: settings.require_pushed_authorization_requests || fapi2,
            end_session_endpoint: format!("{base}/logout"),
            scopes_supported: [oauth_core::OPENID, "profile", "email", "phone"],
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: GrantType::ALL
                .into_iter()
                .filter(|g| grants.contains(g))
                .map(GrantType::as_str)
                .collect(),
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: algs,
            token_endpoint_auth_methods_supported: if fapi2 { FAPI2_AUTH } else { TOKEN_AUTH },
            token_endpoint_auth_signing_alg_values_supported: proofs.assertion_algorithms(),
            revocation_endpoint_auth_methods_supported: if fapi2 { FAPI2_AUTH } else { TOKEN_AUTH },
            revocation_endpoint_auth_signing_alg_values_supported: proofs.assertion_algorithms(),
            introspection_endpoint_auth_methods_supported: if fapi2 { FAPI2_AUTH } else { INTROSPECTION_AUTH },
            introspection_endpoint_auth_signing_alg_values_supported: proofs.assertion_algorithms(),
            dpop_signing_alg_values_supported: proofs.dpop_algorithms(),
            code_challenge_methods_supported: ["S256"],
            claims_supported: oauth_core::claims_supported(),
            prompt_values_supported: ["none", "login", "consent"],
            ui_locales_supported: ["en", "nl"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            // OpenID Connect's `request_uri` is a request object at a URL the
            // client hosts, which this server never fetches; the request_uri
            // of a pushed request is what `pushed_authorization_request_endpoint`
            // announces (RFC 9126 5).
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            registration_endpoint: self.admin.as_ref().map(|_| format!("{base}/register")),
        };
        response::json(StatusCode::OK, &m)
    }

    /// `GET /jwks.json`: the public keys that verify now, the ID-token key
    /// among them.
    pub(crate) fn jwks(&self) -> Response<Body> {
        let now = self.authority.services().clock.now();
        response::json(StatusCode::OK, &self.codec.ring().jwks(now))
    }
}
