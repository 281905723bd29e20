//! RFC 7591 client metadata on the wire, shared by the admin API and dynamic
//! registration: the JSON a client or operator sends, and the JSON a client
//! is shown as.
//!
//! Unknown metadata members are ignored (RFC 7591 2: a server ignores what it
//! does not understand); a member of the wrong type is
//! `invalid_client_metadata`. The JSON parser bounds nesting (serde_json stops
//! at 128 levels) and the body is at most 64 KiB, so no body costs more than
//! that to refuse.

use oauth_core::{ClientMetadata, ClientSource, ClientView, ConsentRule, Error, GrantType, IdTokenAlg, Issued};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::request::ReadError;

/// Parses a JSON body into `T`; `client` picks RFC 7591's error code for a
/// body that is not the metadata.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], client: bool) -> Result<T, ReadError> {
    serde_json::from_slice(bytes).map_err(|_| {
        ReadError::Invalid(if client {
            Error::InvalidClientMetadata("the body must be a JSON object of RFC 7591 client metadata")
        } else {
            Error::InvalidRequest("the body must be a JSON object with the documented members")
        })
    })
}

/// RFC 7591 2 client metadata as sent.
#[derive(Deserialize, Default)]
pub(crate) struct ClientMetadataIn {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    require_pkce: Option<bool>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    allowed_cors_origins: Option<Vec<String>>,
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    skip_consent: Option<bool>,
    #[serde(default)]
    client_secret: Option<String>,
}

impl ClientMetadataIn {
    pub(crate) fn into_core(self) -> ClientMetadata {
        ClientMetadata {
            client_id: self.client_id,
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            response_types: self.response_types,
            scope: self.scope,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            resources: self.resources,
            require_pkce: self.require_pkce,
            jwks: self.jwks,
            allowed_cors_origins: self.allowed_cors_origins,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            skip_consent: self.skip_consent,
            client_secret: self.client_secret,
        }
    }
}

/// A client as RFC 7591 3.2.1 shows it, with where it is defined.
/// `server_alg` is the name of the server's `signing_alg`, which a client's
/// `id_token_signed_response_alg` may be.
pub(crate) fn client_view(v: &ClientView, server_alg: Option<&str>) -> Value {
    let c = &v.client;
    let redirect_uris: Vec<&str> = match c.redirect() {
        oauth_core::RedirectPolicy::Registered(uris) => uris.iter().map(|u| u.as_str()).collect(),
        _ => Vec::new(),
    };
    let grant_types: Vec<&str> = c.grant_types().iter().map(|g| g.as_str()).collect();
    let response_types: Vec<&str> = if c.allows(GrantType::AuthorizationCode) { vec!["code"] } else { vec![] };
    let mut out = json!({
        "client_id": c.id().as_str(),
        "client_name": c.name(),
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "scope": c.scopes().to_string(),
        "token_endpoint_auth_method": if c.is_confidential() { "client_secret_basic" } else { "none" },
        "require_pkce": c.require_pkce(),
        "resources": c.resources().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "allowed_cors_origins": c.settings().allowed_cors_origins.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "post_logout_redirect_uris": c.settings().post_logout_redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "id_token_signed_response_alg": match c.id_token_alg() {
            IdTokenAlg::ServerAlg => server_alg.unwrap_or("RS256"),
            _ => "RS256",
        },
        "skip_consent": c.settings().consent == ConsentRule::Skip,
        "source": v.source.as_str(),
        "read_only": v.source.read_only(),
    });
    if let Some(host) = match c.redirect() {
        oauth_core::RedirectPolicy::HttpsHost(h) => Some(h.as_str()),
        _ => None,
    } {
        out["redirect_host"] = json!(host);
    }
    if let Some(t) = v.created_at {
        out["client_id_issued_at"] = json!(t.unix_timestamp());
    }
    if let Some(jwks) = v.jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) {
        out["jwks"] = jwks;
    }
    out
}

/// A client just created or changed, with its secrets shown this once
/// (RFC 7591 3.2.1, RFC 7592 3).
pub(crate) fn issued(i: &Issued, registration_client_uri: Option<String>, server_alg: Option<&str>) -> Value {
    let mut out = client_view(&i.view, server_alg);
    if let Some(secret) = &i.client_secret {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = &i.registration_access_token {
        out["registration_access_token"] = json!(token);
    }
    if let Some(uri) = registration_client_uri {
        out["registration_client_uri"] = json!(uri);
    }
    if i.view.source == ClientSource::Registration {
        // RFC 7592 clients see no operator-side fields.
        if let Some(o) = out.as_object_mut() {
            o.remove("source");
            o.remove("read_only");
        }
    }
    out
}
