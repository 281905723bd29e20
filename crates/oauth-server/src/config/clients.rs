//! `[[clients]]` and `[[accounts]]`: the arrays of tables.

use std::collections::{BTreeMap, BTreeSet};

use oauth_core::{
    Client, ClientError, ClientId, ClientSettings, ConsentRule, GrantType, IdTokenAlg, RedirectPolicy, RedirectUri,
    ResourceUri, Scope, ScopeRule, SecretHash, WebOrigin,
};
use oauth_jwt::SigningAlg;
use oauth_runtime::credentials::check_hash;
use toml::Table;

use super::medmij::MedmijSection;
use super::reader::{Keys, Reader};

/// The keys of one `[[clients]]` entry.
pub(super) const CLIENT_KEYS: &[&str] = &[
    "client_id",
    "name",
    "client_secret_hash",
    "redirect_uris",
    "grant_types",
    "scopes",
    "require_pkce",
    "allowed_cors_origins",
    "resources",
    "token_endpoint_auth_method",
    "jwks",
    "dpop_bound_access_tokens",
    "require_pushed_authorization_requests",
    "post_logout_redirect_uris",
    "id_token_signed_response_alg",
    "skip_consent",
];

/// The keys of one `[[resources]]` entry.
pub(super) const RESOURCE_KEYS: &[&str] = &["uri", "scopes"];

/// Every `[[resources]]` entry (RFC 8707): its URI and the scopes it
/// understands. URIs are unique.
pub(super) fn resources(reader: &mut Reader, root: &Table) -> BTreeMap<ResourceUri, Scope> {
    let mut out = BTreeMap::new();
    for (table, path) in reader.array_of_tables(root, "resources") {
        let mut keys = reader.keys(table, path, RESOURCE_KEYS);
        let at = keys.path("uri");
        let uri = keys.required_string("uri").and_then(|u| match ResourceUri::parse(&u) {
            Ok(r) => Some(r),
            Err(e) => {
                keys.error(at.clone(), e.description());
                None
            }
        });
        let scopes = keys.scope("scopes");
        if let (Some(uri), Some(scopes)) = (uri, scopes) {
            if out.insert(uri.clone(), scopes).is_some() {
                keys.error(at, format!("{} is defined twice", uri.as_str()));
            }
        }
    }
    out
}

/// The keys of one `[[accounts]]` entry.
pub(super) const ACCOUNT_KEYS: &[&str] = &["username", "password_hash", "disabled", "attributes"];

/// A `[[accounts]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct AccountEntry {
    pub(crate) username: String,
    pub(crate) password_hash: Option<SecretHash>,
    pub(crate) disabled: bool,
    pub(crate) attributes: BTreeMap<String, String>,
}

/// Every `[[clients]]` entry that is valid. A `client_id` must be unique,
/// ignoring ASCII case, also against the OCL's hostnames. `signing_alg` is
/// the server's, which `id_token_signed_response_alg` may name.
/// Under `[profile] fapi2`, each client must authenticate with
/// `private_key_jwt`: a public client, or one with a secret, is an error.
pub(super) fn clients(
    reader: &mut Reader,
    root: &Table,
    grants: &BTreeSet<GrantType>,
    medmij: Option<&MedmijSection>,
    resources: &BTreeMap<ResourceUri, Scope>,
    fapi2: bool,
    signing_alg: Option<SigningAlg>,
) -> Vec<Client> {
    let mut seen: BTreeSet<String> = medmij
        .map(|m| m.ocl.clients.iter().map(|c| c.hostname.as_str().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (table, path) in reader.array_of_tables(root, "clients") {
        let mut keys = reader.keys(table, path, CLIENT_KEYS);
        if let Some(c) = client(&mut keys, grants, &mut seen, resources, fapi2, signing_alg) {
            out.push(c);
        }
    }
    out
}

/// How a configured client authenticates (RFC 7591
/// `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    /// `client_secret_basic` or `client_secret_post`: both are accepted.
    Secret,
    PrivateKeyJwt,
    None,
}

fn client(
    keys: &mut Keys<'_, '_>,
    grants: &BTreeSet<GrantType>,
    seen: &mut BTreeSet<String>,
    known: &BTreeMap<ResourceUri, Scope>,
    fapi2: bool,
    signing_alg: Option<SigningAlg>,
) -> Option<Client> {
    let at_id = keys.path("client_id");
    let id = keys.required_string("client_id").and_then(|id| {
        ClientId::parse(&id).map_err(|_| keys.error(at_id.clone(), "must be 1 to 255 visible ASCII characters")).ok()
    });
    if let Some(id) = &id {
        if !seen.insert(id.as_str().to_ascii_lowercase()) {
            keys.error(at_id, format!("{id} is defined twice (or is an OCL hostname)"));
        }
    }
    let name = keys.string("name");
    let at = keys.path("client_secret_hash");
    let secret = keys.string("client_secret_hash").and_then(|h| match check_hash(&h, false) {
        Ok(()) => Some(SecretHash::new(h)),
        Err(e) => {
            keys.error(at, e.to_string());
            None
        }
    });
    let mut redirects = Vec::new();
    let at = keys.path("redirect_uris");
    for (j, u) in keys.strings("redirect_uris").unwrap_or_default().iter().enumerate() {
        match RedirectUri::parse(u) {
            Ok(r) => redirects.push(r),
            Err(e) => keys.error(at.index(j), e.to_string()),
        }
    }
    let mut grant_types = BTreeSet::new();
    let at = keys.path("grant_types");
    let names =
        keys.strings("grant_types").unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    for (j, g) in names.iter().enumerate() {
        match GrantType::parse(g) {
            Ok(g) => {
                if !grants.contains(&g) {
                    keys.warn(
                        at.index(j),
                        format!("{g} is switched off in [grants]; it answers unsupported_grant_type"),
                    );
                }
                grant_types.insert(g);
            }
            Err(_) => keys.error(at.index(j), format!("unknown grant type {g:?}")),
        }
    }
    let scopes = keys.scope("scopes");
    let require_pkce = keys.boolean("require_pkce", true);
    let mut allowed_cors_origins = Vec::new();
    let at = keys.path("allowed_cors_origins");
    for (j, o) in keys.strings("allowed_cors_origins").unwrap_or_default().iter().enumerate() {
        match WebOrigin::parse(o) {
            Ok(origin) => allowed_cors_origins.push(origin),
            Err(e) => keys.error(at.index(j), e.to_string()),
        }
    }
    let mut resources = BTreeSet::new();
    let at = keys.path("resources");
    for (j, r) in keys.strings("resources").unwrap_or_default().iter().enumerate() {
        match ResourceUri::parse(r) {
            Ok(r) if known.contains_key(&r) => {
                resources.insert(r);
            }
            Ok(_) => keys.error(at.index(j), "is not a [[resources]] uri"),
            Err(e) => keys.error(at.index(j), e.description()),
        }
    }
    let has_secret = keys.has("client_secret_hash");
    let at_method = keys.path("token_endpoint_auth_method");
    let method = match keys.string("token_endpoint_auth_method").as_deref() {
        None if has_secret => AuthMethod::Secret,
        None => AuthMethod::None,
        Some("client_secret_basic" | "client_secret_post") => AuthMethod::Secret,
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some("none") => AuthMethod::None,
        Some(other) => {
            let message =
                format!("must be client_secret_basic, client_secret_post, private_key_jwt or none, not {other:?}");
            keys.error(at_method.clone(), message);
            AuthMethod::None
        }
    };
    let at_secret = keys.path("client_secret_hash");
    match (method, has_secret) {
        (AuthMethod::Secret, false) => keys.error(at_secret.clone(), "is required for a client_secret method"),
        (AuthMethod::PrivateKeyJwt | AuthMethod::None, true) => {
            keys.error(at_secret.clone(), "is only for the client_secret methods")
        }
        _ => {}
    }
    let at_jwks = keys.path("jwks");
    let jwks = keys.string("jwks");
    match (method, &jwks) {
        (AuthMethod::PrivateKeyJwt, None) => keys.error(at_jwks, "is required for private_key_jwt"),
        (AuthMethod::PrivateKeyJwt, Some(text)) => {
            if let Err(e) = oauth_jwt::check_client_jwks(text) {
                keys.error(at_jwks, format!("must be a JWK Set of public signing keys as JSON: {e}"));
            }
        }
        (_, Some(_)) => keys.error(at_jwks, "is only for token_endpoint_auth_method = \"private_key_jwt\""),
        (_, None) => {}
    }
    if fapi2 {
        // FAPI 2.0 5.3.2.1: confidential clients, and private_key_jwt (or
        // mTLS, which this server does not offer) only.
        match method {
            AuthMethod::Secret => {
                keys.error(at_secret, "FAPI 2.0 ([profile] fapi2): clients authenticate with private_key_jwt only")
            }
            AuthMethod::None => keys.error(at_method, "FAPI 2.0 ([profile] fapi2): public clients are not allowed"),
            AuthMethod::PrivateKeyJwt => {}
        }
    }
    let dpop_bound_access_tokens = keys.boolean("dpop_bound_access_tokens", false);
    let require_pushed_authorization_requests = keys.boolean("require_pushed_authorization_requests", false);
    let mut post_logout_redirect_uris = Vec::new();
    let at = keys.path("post_logout_redirect_uris");
    for (j, u) in keys.strings("post_logout_redirect_uris").unwrap_or_default().iter().enumerate() {
        match RedirectUri::parse(u) {
            Ok(r) => post_logout_redirect_uris.push(r),
            Err(e) => keys.error(at.index(j), e.to_string()),
        }
    }
    let id_token_alg = id_token_alg(keys, signing_alg);
    let consent = if keys.boolean("skip_consent", false) { ConsentRule::Skip } else { ConsentRule::Remember };
    let (id, scopes) = (id?, scopes?);
    let settings = ClientSettings {
        name: name.unwrap_or_else(|| id.to_string()),
        id,
        secret,
        jwks: jwks.filter(|_| method == AuthMethod::PrivateKeyJwt),
        redirect: RedirectPolicy::Registered(redirects),
        grant_types,
        scopes,
        scope_rule: ScopeRule::Subset,
        require_pkce,
        allowed_cors_origins,
        resources,
        dpop_bound_access_tokens,
        require_pushed_authorization_requests,
        post_logout_redirect_uris,
        id_token_alg,
        consent,
    };
    // Each rule is named by the key that breaks it (SPEC), not only by the
    // client's table.
    Client::new(settings)
        .map_err(|e| {
            let at = match e {
                ClientError::PublicWithoutPkce => keys.path("require_pkce"),
                ClientError::NoRedirectUri => keys.path("redirect_uris"),
                ClientError::PublicClientCredentials => keys.path("grant_types"),
                _ => keys.here(),
            };
            keys.error(at, e.to_string())
        })
        .ok()
}

/// `id_token_signed_response_alg`: `RS256` (the default), or the server's own
/// `signing_alg` when that is a public-key algorithm (an HMAC key is the
/// server's secret, so a client could not check the signature).
fn id_token_alg(keys: &mut Keys<'_, '_>, signing_alg: Option<SigningAlg>) -> IdTokenAlg {
    let Some(name) = keys.string("id_token_signed_response_alg") else {
        return IdTokenAlg::Rs256;
    };
    match signing_alg {
        _ if name == "RS256" => IdTokenAlg::Rs256,
        Some(own) if name == own.name() && !own.is_symmetric() => IdTokenAlg::ServerAlg,
        _ => {
            let own = signing_alg.filter(|a| !a.is_symmetric()).map(|a| format!(" or {}", a.name()));
            let at = keys.path("id_token_signed_response_alg");
            keys.error(at, format!("must be RS256{}, not {name:?}", own.unwrap_or_default()));
            IdTokenAlg::Rs256
        }
    }
}

/// Every `[[accounts]]` entry with a username; usernames are unique.
pub(super) fn accounts(reader: &mut Reader, root: &Table) -> Vec<AccountEntry> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (table, path) in reader.array_of_tables(root, "accounts") {
        let mut keys = reader.keys(table, path, ACCOUNT_KEYS);
        let Some(username) = keys.string("username").filter(|u| !u.is_empty()) else {
            let at = keys.path("username");
            keys.error(at, "is required");
            continue;
        };
        if !seen.insert(username.clone()) {
            let at = keys.path("username");
            keys.error(at, format!("{username:?} is defined twice"));
        }
        let at = keys.path("password_hash");
        let password_hash = keys.string("password_hash").and_then(|h| match check_hash(&h, true) {
            Ok(()) => Some(SecretHash::new(h)),
            Err(e) => {
                keys.error(at, e.to_string());
                None
            }
        });
        let disabled = keys.boolean("disabled", false);
        let attributes = keys.string_map("attributes");
        out.push(AccountEntry { username, password_hash, disabled, attributes });
    }
    out
}
