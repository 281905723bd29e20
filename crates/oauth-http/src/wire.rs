//! RFC 7591 client metadata on the wire, shared by the admin API and dynamic
//! registration: the JSON a client or operator sends ([`ClientMetadataIn`]),
//! and the JSON a client is shown as ([`ClientOut`]).
//!
//! These are the types the handlers really parse and render, and the admin
//! API's OpenAPI description derives its schemas from them (`ToSchema`), so
//! the document cannot say one thing while the code sends another.
//!
//! Unknown metadata members are ignored (RFC 7591 2: a server ignores what it
//! does not understand); a member of the wrong type is
//! `invalid_client_metadata`. The JSON parser bounds nesting (serde_json stops
//! at 128 levels) and the body is at most 64 KiB, so no body costs more than
//! that to refuse.

use oauth_core::{ClientMetadata, ClientSource, ClientView, ConsentRule, Error, GrantType, IdTokenAlg, Issued};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};

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

/// RFC 7591 2 client metadata as sent. Every member is optional; members
/// this server does not know are ignored.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = ClientMetadata)]
pub(crate) struct ClientMetadataIn {
    /// The id to give the client (the admin API only; registration issues
    /// its own, and an RFC 7592 update repeats the client's).
    #[serde(default)]
    client_id: Option<String>,
    /// A name shown on the consent page.
    #[serde(default)]
    client_name: Option<String>,
    /// The redirect URIs, matched exactly.
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    /// The grant types (RFC 7591 default: `authorization_code`).
    #[serde(default)]
    #[schema(schema_with = grant_type_names)]
    grant_types: Option<Vec<String>>,
    /// The response types: `["code"]`, with the `authorization_code`
    /// grant.
    #[serde(default)]
    #[schema(schema_with = response_types_in)]
    response_types: Option<Vec<String>>,
    /// The scopes the client may ask for, space-separated.
    #[serde(default)]
    scope: Option<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    #[schema(value_type = Option<TokenEndpointAuthMethodIn>)]
    token_endpoint_auth_method: Option<String>,
    /// RFC 8707 resource URIs the client may ask for (ours).
    #[serde(default)]
    resources: Option<Vec<String>>,
    /// Whether the client must use PKCE (ours; the admin API only).
    #[serde(default)]
    require_pkce: Option<bool>,
    /// A JWK Set of public keys; required with `private_key_jwt`, whose
    /// assertions are signed with one of them.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    jwks: Option<Value>,
    /// Web origins besides those of the redirect URIs whose pages may call
    /// the token endpoint (ours).
    #[serde(default)]
    allowed_cors_origins: Option<Vec<String>>,
    /// OpenID Connect RP-Initiated Logout 1.0 3.1.
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// `RS256` (the default) or the server's `signing_alg`.
    #[serde(default)]
    id_token_signed_response_alg: Option<String>,
    /// A first-party client that shows no consent page (ours; the admin API
    /// only).
    #[serde(default)]
    skip_consent: Option<bool>,
    /// In an RFC 7592 update: must be the client's own secret.
    #[serde(default)]
    #[schema(write_only)]
    client_secret: Option<String>,
}

/// The schema of `grant_types`: the names oauth-core knows
/// ([`GrantType::ALL`]), so a grant type added there is documented here.
fn grant_type_names() -> Array {
    names(GrantType::ALL.iter().map(|g| g.as_str()))
}

/// The schema of `response_types` shown: `code`, the only one OAuth 2.1
/// keeps, for a client with the `authorization_code` grant; none otherwise.
fn response_type_names() -> Array {
    names(["code"])
}

/// The schema of `response_types` sent: when given, it must name `code`.
fn response_types_in() -> Array {
    let mut array = names(["code"]);
    array.min_items = Some(1);
    array
}

fn names<'a>(values: impl IntoIterator<Item = &'a str>) -> Array {
    ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values))).build()
}

/// The `token_endpoint_auth_method` values a client may be registered with;
/// any other value is `invalid_client_metadata`.
#[derive(ToSchema)]
#[schema(as = TokenEndpointAuthMethod, rename_all = "snake_case")]
#[allow(dead_code, reason = "only its schema is used: the member stays a string, which oauth-core checks")]
pub(crate) enum TokenEndpointAuthMethodIn {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523: with `jwks`, whose keys sign the client's assertions.
    PrivateKeyJwt,
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

/// How a client authenticates at the token endpoint, as it is shown.
#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthMethodOut {
    /// A public client.
    None,
    /// A confidential client with a secret.
    ClientSecretBasic,
    /// A confidential client with no secret that signs assertions with one
    /// of its keys (RFC 7523).
    PrivateKeyJwt,
}

/// Where a client is defined, as the admin API shows it.
#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceOut {
    /// `[[clients]]` of the configuration file: read-only.
    Configuration,
    /// The MedMij OAuth Client List: read-only.
    Ocl,
    /// Created through the admin API.
    Admin,
    /// Registered by itself (RFC 7591).
    Registration,
}

impl SourceOut {
    fn of(source: ClientSource) -> SourceOut {
        match source {
            ClientSource::Configuration => SourceOut::Configuration,
            ClientSource::Ocl => SourceOut::Ocl,
            ClientSource::Registration => SourceOut::Registration,
            // `ClientSource` is non-exhaustive: a source added later is a
            // store client, changed through this API, until it is named here.
            _ => SourceOut::Admin,
        }
    }
}

/// A client as RFC 7591 3.2.1 shows it, with where it is defined; a client
/// just created or changed also shows its secrets this once.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Client)]
pub(crate) struct ClientOut {
    pub(crate) client_id: String,
    pub(crate) client_name: String,
    /// The registered redirect URIs (empty for a client whose redirect is a
    /// `redirect_host`).
    pub(crate) redirect_uris: Vec<String>,
    /// The https host any of whose URIs the client may redirect to
    /// (configuration and OCL clients only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub(crate) redirect_host: Option<String>,
    #[schema(schema_with = grant_type_names)]
    pub(crate) grant_types: Vec<String>,
    #[schema(schema_with = response_type_names)]
    pub(crate) response_types: Vec<String>,
    /// Space-separated.
    pub(crate) scope: String,
    pub(crate) token_endpoint_auth_method: AuthMethodOut,
    pub(crate) require_pkce: bool,
    pub(crate) resources: Vec<String>,
    pub(crate) allowed_cors_origins: Vec<String>,
    pub(crate) post_logout_redirect_uris: Vec<String>,
    /// `RS256` or the server's `signing_alg`.
    pub(crate) id_token_signed_response_alg: String,
    pub(crate) skip_consent: bool,
    /// Absent for a registered client reading its own registration (RFC 7592).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = SourceOut)]
    pub(crate) source: Option<SourceOut>,
    /// Whether this API may change the client; absent where `source` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub(crate) read_only: Option<bool>,
    /// When the client was stored (store clients only), in seconds since the
    /// epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub(crate) client_id_issued_at: Option<i64>,
    /// The new secret, shown only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub(crate) client_secret: Option<String>,
    /// 0: the secret does not expire. Present with `client_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub(crate) client_secret_expires_at: Option<i64>,
    /// RFC 7592: the token of the client's own registration (registered
    /// clients only), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub(crate) registration_access_token: Option<String>,
    /// RFC 7592: where the client reads and changes its registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub(crate) registration_client_uri: Option<String>,
    /// The registered JWK Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub(crate) jwks: Option<Value>,
}

/// A client as RFC 7591 3.2.1 shows it, with where it is defined.
/// `server_alg` is the name of the server's `signing_alg`, which a client's
/// `id_token_signed_response_alg` may be.
pub(crate) fn client_view(v: &ClientView, server_alg: Option<&str>) -> ClientOut {
    let c = &v.client;
    let (redirect_uris, redirect_host) = match c.redirect() {
        oauth_core::RedirectPolicy::Registered(uris) => (uris.iter().map(|u| u.as_str().to_owned()).collect(), None),
        oauth_core::RedirectPolicy::HttpsHost(h) => (Vec::new(), Some(h.as_str().to_owned())),
    };
    ClientOut {
        client_id: c.id().as_str().to_owned(),
        client_name: c.name().to_owned(),
        redirect_uris,
        redirect_host,
        grant_types: c.grant_types().iter().map(|g| g.as_str().to_owned()).collect(),
        response_types: if c.allows(GrantType::AuthorizationCode) { vec!["code".to_owned()] } else { Vec::new() },
        scope: c.scopes().to_string(),
        token_endpoint_auth_method: match (c.jwks(), c.is_confidential()) {
            (Some(_), _) => AuthMethodOut::PrivateKeyJwt,
            (None, true) => AuthMethodOut::ClientSecretBasic,
            (None, false) => AuthMethodOut::None,
        },
        require_pkce: c.require_pkce(),
        resources: c.resources().iter().map(|r| r.as_str().to_owned()).collect(),
        allowed_cors_origins: c.settings().allowed_cors_origins.iter().map(|o| o.as_str().to_owned()).collect(),
        post_logout_redirect_uris: c
            .settings()
            .post_logout_redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        id_token_signed_response_alg: match v.id_token_alg {
            IdTokenAlg::ServerAlg => server_alg.unwrap_or("RS256"),
            _ => "RS256",
        }
        .to_owned(),
        skip_consent: c.settings().consent == ConsentRule::Skip,
        source: Some(SourceOut::of(v.source)),
        read_only: Some(v.source.read_only()),
        client_id_issued_at: v.created_at.map(|t| t.unix_timestamp()),
        client_secret: None,
        client_secret_expires_at: None,
        registration_access_token: None,
        registration_client_uri: None,
        jwks: v.jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()),
    }
}

/// A client just created or changed, with its secrets shown this once
/// (RFC 7591 3.2.1, RFC 7592 3).
pub(crate) fn issued(i: &Issued, registration_client_uri: Option<String>, server_alg: Option<&str>) -> ClientOut {
    let mut out = client_view(&i.view, server_alg);
    if let Some(secret) = &i.client_secret {
        out.client_secret = Some(secret.clone());
        out.client_secret_expires_at = Some(0);
    }
    out.registration_access_token.clone_from(&i.registration_access_token);
    out.registration_client_uri = registration_client_uri;
    if i.view.source == ClientSource::Registration {
        // RFC 7592 clients see no operator-side fields.
        out.source = None;
        out.read_only = None;
    }
    out
}
