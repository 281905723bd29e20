//! Run-time administration (SPEC-2): clients and accounts kept in the store and
//! changed while the server runs, an account's grants, consents and sessions,
//! and dynamic client registration (RFC 7591) with the management of one's own
//! registration (RFC 7592).
//!
//! [`Admin`] is what the admin API and the `/register` endpoints of
//! `oauth-http` call; it knows no HTTP. Every client, however it arrives, is
//! checked by the same rules ([`ClientMetadata`], then [`Client::new`]); what
//! differs is who registers ([`Registrant`]): the operator through the admin
//! API may do anything the configuration file may, a holder of the initial
//! access token may register confidential clients, and open registration gets
//! public clients with loopback or https redirect URIs, within the scopes and
//! resources of `[registration]`, throttled per peer address and bounded in
//! number.
//!
//! Clients of the configuration file and of the OAuth Client List are listed
//! but never changed here ([`Error::Conflict`]): the file would undo the change
//! at the next start. The same holds for accounts seeded from the file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::account::{Account, AccountOrigin};
use crate::authority::Authority;
use crate::client::{Client, ClientError, ClientOrigin, ClientRecord, ClientRegistry};
use crate::error::{Error, Result};
use crate::registry::{ClientSource, FixedClients};
use crate::services::{IdTokenAlg, SecretHasher};
use crate::store::{Grant, Record, RecordKind, Store, StoreError};
use crate::types::{
    AccountId, ClientId, GrantId, GrantType, RedirectUri, RedirectUriError, ResourceUri, Scope, TokenHash, WebOrigin,
};

/// The browser sessions of single sign-on, owned by their account: the kind
/// the single sign-on flow owns ([`crate::BROWSER_SESSION`]).
pub const BROWSER_SESSIONS: RecordKind = crate::sso::BROWSER_SESSION;
/// Remembered consents, owned by their account: the kind the single sign-on
/// flow owns ([`crate::REMEMBERED_CONSENT`]).
pub const CONSENTS: RecordKind = crate::sso::REMEMBERED_CONSENT;
/// Open registrations counted per peer address and window.
const REGISTRATIONS: RecordKind = RecordKind::new("open_registrations");

/// The most entries a list answers (`?limit=`).
pub const MAX_PAGE: usize = 1000;
/// The entries a list answers when `?limit=` is not given.
pub const DEFAULT_PAGE: usize = 100;

const MAX_REDIRECT_URIS: usize = 32;
const MAX_RESOURCES: usize = 32;
const MAX_NAME: usize = 200;
const MAX_JWKS_KEYS: usize = 16;
const MAX_USERNAME: usize = 255;
const MAX_PASSWORD: usize = 1024;
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_LEN: usize = 1024;

/// RFC 7591 client metadata as sent, before any check. The front end parses
/// the JSON; [`Admin`] decides what it is worth.
#[derive(Debug, Clone, Default)]
pub struct ClientMetadata {
    /// `client_id`: the admin API uses it when given; registration ignores it
    /// (the server issues ids), and RFC 7592 updates must repeat the client's.
    pub client_id: Option<String>,
    /// `client_name`.
    pub client_name: Option<String>,
    /// `redirect_uris`.
    pub redirect_uris: Option<Vec<String>>,
    /// `grant_types` (RFC 7591 default: `authorization_code`).
    pub grant_types: Option<Vec<String>>,
    /// `response_types` (only `code`).
    pub response_types: Option<Vec<String>>,
    /// `scope`, space-separated.
    pub scope: Option<String>,
    /// `token_endpoint_auth_method`: `none`, `client_secret_basic`,
    /// `client_secret_post` or `private_key_jwt` (with `jwks`).
    pub token_endpoint_auth_method: Option<String>,
    /// `resources` (RFC 8707 resource URIs this client may ask for; ours).
    pub resources: Option<Vec<String>>,
    /// `require_pkce` (ours; the admin API only, registered clients always
    /// use PKCE).
    pub require_pkce: Option<bool>,
    /// `jwks`: a JWK Set of public keys.
    pub jwks: Option<serde_json::Value>,
    /// `allowed_cors_origins` (ours, as in the configuration file): web
    /// origins besides those of the redirect URIs whose pages may call the
    /// token endpoint.
    pub allowed_cors_origins: Option<Vec<String>>,
    /// `post_logout_redirect_uris` (OpenID Connect RP-Initiated Logout 1.0
    /// 3.1).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `id_token_signed_response_alg` (OpenID Connect Dynamic Client
    /// Registration 1.0 2): `RS256` or the server's own `signing_alg`.
    pub id_token_signed_response_alg: Option<String>,
    /// `skip_consent` (ours, as in the configuration file; the admin API
    /// only): a first-party client that shows no consent page.
    pub skip_consent: Option<bool>,
    /// `client_secret`, in an RFC 7592 update: must be the client's.
    pub client_secret: Option<String>,
}

/// Who registers a client, which decides what they may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant {
    /// The operator, through the admin API: anything the configuration file
    /// allows.
    Admin,
    /// A client holding the initial access token (RFC 7591 3): confidential
    /// clients, but neither the password grant nor scopes or resources beyond
    /// `[registration]`.
    Trusted,
    /// Anyone (open registration): public clients only, loopback or https
    /// redirect URIs, the code and refresh grants.
    Open,
}

/// A registration that [`Admin::admit`] let in, by the initial access token
/// or as an open one; only `admit` makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission(Registrant);

/// A client as the admin API and registration show it.
#[derive(Debug, Clone)]
pub struct ClientView {
    /// The client.
    pub client: Arc<Client>,
    /// Where it is defined.
    pub source: ClientSource,
    /// When it was stored (store clients only).
    pub created_at: Option<OffsetDateTime>,
    /// Its registered JWK Set, as JSON text.
    pub jwks: Option<String>,
    /// The key its ID tokens are signed with now, which is what its
    /// `id_token_signed_response_alg` is shown as: the one it registered,
    /// or under FAPI 2.0 the server's `signing_alg` whatever it registered
    /// (a client stored before the profile was turned on may say RS256).
    pub id_token_alg: IdTokenAlg,
}

/// A client just created or changed, with the secrets shown this once.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The client.
    pub view: ClientView,
    /// Its new secret, when one was generated: the store keeps only its hash.
    pub client_secret: Option<String>,
    /// Its new registration access token (RFC 7592), for registered clients.
    pub registration_access_token: Option<String>,
}

/// One page of a list: the items, and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A new account, as the admin API sends it.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// The login name; unique.
    pub username: String,
    /// The password, hashed with Argon2id before it is stored; none for
    /// accounts that log in through an external authenticator only.
    pub password: Option<String>,
    /// Whether it starts disabled.
    pub disabled: bool,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
}

/// A change to an account: what is `Some` is replaced.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    /// A new username.
    pub username: Option<String>,
    /// A new password.
    pub password: Option<String>,
    /// Disable (`true`) or enable (`false`). Disabling ends its sessions.
    pub disabled: Option<bool>,
    /// New attributes, replacing all.
    pub attributes: Option<BTreeMap<String, String>>,
}

/// The administration of one server: see the module docs.
#[derive(Clone)]
pub struct Admin {
    authority: Authority,
    fixed: Arc<dyn FixedClients>,
    hasher: Arc<dyn SecretHasher>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// How a stored client authenticates at the token endpoint: its
/// `token_endpoint_auth_method`, with `client_secret_basic` and
/// `client_secret_post` one (the server accepts either for a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    /// A public client (`none`).
    None,
    /// A confidential client with a generated secret.
    Secret,
    /// A confidential client with no secret that signs assertions with one
    /// of its `jwks` (RFC 7523).
    PrivateKeyJwt,
}

/// What a metadata check leaves: the parts of a [`ClientRecord`] that come
/// from the metadata.
struct Checked {
    name: Option<String>,
    redirect_uris: Vec<RedirectUri>,
    grant_types: BTreeSet<GrantType>,
    scopes: Scope,
    require_pkce: bool,
    resources: BTreeSet<ResourceUri>,
    method: AuthMethod,
    jwks: Option<String>,
    allowed_cors_origins: Vec<WebOrigin>,
    post_logout_redirect_uris: Vec<RedirectUri>,
    id_token_alg: IdTokenAlg,
    skip_consent: bool,
}

impl Admin {
    /// The administration of `authority`'s server. `fixed` are the read-only
    /// clients (also the first layer of `authority`'s registry); `hasher`
    /// hashes new passwords and secrets.
    pub fn new(authority: Authority, fixed: Arc<dyn FixedClients>, hasher: Arc<dyn SecretHasher>) -> Self {
        Admin { authority, fixed, hasher }
    }

    /// The authority this administers.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.authority.services.store
    }

    fn registry(&self) -> &Arc<dyn ClientRegistry> {
        &self.authority.services.clients
    }

    fn random(&self, n: usize) -> Result<Vec<u8>> {
        let mut b = vec![0u8; n];
        self.authority.services.secrets.fill(&mut b)?;
        Ok(b)
    }

    /// A fresh opaque secret: 256 bits in unpadded base64url.
    fn secret(&self) -> Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.random(32)?))
    }

    fn new_client_id(&self) -> Result<ClientId> {
        let mut b = [0u8; 16];
        self.authority.services.secrets.fill(&mut b)?;
        ClientId::parse(&uuid::Builder::from_random_bytes(b).into_uuid().hyphenated().to_string())
    }

    // --- clients ------------------------------------------------------------------------

    /// One page of every client, the read-only ones included, in `client_id`
    /// order.
    pub async fn clients(&self, after: Option<&str>, limit: usize) -> Result<Page<ClientView>> {
        let limit = page_size(limit)?;
        let after = after.map(|c| decode_cursor(c).and_then(|raw| ClientId::parse(&raw))).transpose()?;
        let beyond = |id: &ClientId| after.as_ref().is_none_or(|a| id.as_str().as_bytes() > a.as_str().as_bytes());
        let mut merged: BTreeMap<Vec<u8>, ClientView> = BTreeMap::new();
        for (client, source) in self.fixed.fixed_clients() {
            if beyond(client.id()) {
                merged.insert(client.id().as_str().as_bytes().to_vec(), fixed_view(&self.authority, client, source));
            }
            if merged.len() > limit {
                break;
            }
        }
        for record in self.store().client_records(after.as_ref(), limit + 1).await? {
            // A stored client with the id of a fixed one is shadowed by it.
            if self.fixed.fixed_client(&record.id).is_none() {
                merged.entry(record.id.as_str().as_bytes().to_vec()).or_insert(stored_view(&self.authority, &record)?);
            }
        }
        let mut items: Vec<ClientView> = merged.into_values().collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|v| encode_cursor(v.client.id().as_str()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The client `id`, wherever it is defined.
    pub async fn client(&self, id: &str) -> Result<ClientView> {
        let id = ClientId::parse(id).map_err(|_| Error::NotFound("no such client"))?;
        if let Some((client, source)) = self.fixed.fixed_client(&id) {
            return Ok(fixed_view(&self.authority, client, source));
        }
        let record = self.store().client_record(&id).await?.ok_or(Error::NotFound("no such client"))?;
        stored_view(&self.authority, &record)
    }

    /// Creates a client from `meta`: its `client_id` when given (409 when
    /// taken), else a fresh one; a confidential client gets a new secret, shown
    /// once.
    pub async fn create_client(&self, meta: &ClientMetadata) -> Result<Issued> {
        let id = match &meta.client_id {
            Some(raw) => ClientId::parse(raw)
                .map_err(|_| Error::InvalidClientMetadata("client_id must be 1 to 255 visible ASCII characters"))?,
            None => self.new_client_id()?,
        };
        if self.fixed.fixed_client(&id).is_some() {
            return Err(Error::Conflict("a client with this client_id is defined in the configuration or the OCL"));
        }
        let checked = self.check_metadata(meta, Registrant::Admin)?;
        let (secret, hash) = self.new_secret_if(checked.method == AuthMethod::Secret)?;
        let record = self.record(id, checked, hash, ClientOrigin::Admin, None)?;
        self.store().insert_client(&record).await.map_err(|e| conflict(e, "a client with this client_id exists"))?;
        self.registry().forget(&record.id);
        Ok(Issued {
            view: stored_view(&self.authority, &record)?,
            client_secret: secret,
            registration_access_token: None,
        })
    }

    /// Replaces the metadata of a stored client. A client with a secret keeps
    /// it; one that changes to a secret gets a new one; one that changes to
    /// `none` or `private_key_jwt` loses it.
    pub async fn replace_client(&self, id: &str, meta: &ClientMetadata) -> Result<Issued> {
        let existing = self.changeable_client(id).await?;
        if meta.client_id.as_deref().is_some_and(|c| c != existing.id.as_str()) {
            return Err(Error::InvalidClientMetadata("client_id differs from the client's"));
        }
        let checked = self.check_metadata(meta, Registrant::Admin)?;
        let (secret, hash) = self.kept_or_new_secret(&existing, checked.method)?;
        let record = ClientRecord {
            created_at: existing.created_at,
            ..self.record(existing.id.clone(), checked, hash, existing.origin, existing.registration_token)?
        };
        let replaced = self.store().replace_client(&record).await?;
        self.registry().forget(&record.id);
        if !replaced {
            return Err(Error::NotFound("no such client"));
        }
        Ok(Issued {
            view: stored_view(&self.authority, &record)?,
            client_secret: secret,
            registration_access_token: None,
        })
    }

    /// Deletes a stored client: it stops authenticating at once on this node,
    /// and its access tokens are refused.
    pub async fn delete_client(&self, id: &str) -> Result<()> {
        let existing = self.changeable_client(id).await?;
        let deleted = self.store().delete_client(&existing.id).await?;
        self.registry().forget(&existing.id);
        if deleted { Ok(()) } else { Err(Error::NotFound("no such client")) }
    }

    /// The stored client `id`, or why the admin API may not change it.
    async fn changeable_client(&self, id: &str) -> Result<ClientRecord> {
        let id = ClientId::parse(id).map_err(|_| Error::NotFound("no such client"))?;
        if self.fixed.fixed_client(&id).is_some() {
            return Err(Error::Conflict("the client is defined in the configuration or the OCL; change it there"));
        }
        self.store().client_record(&id).await?.ok_or(Error::NotFound("no such client"))
    }

    /// The secret of `existing` under its new `method`: kept if it still
    /// authenticates by secret, a new one (shown once) if it now starts to,
    /// and none otherwise.
    fn kept_or_new_secret(
        &self,
        existing: &ClientRecord,
        method: AuthMethod,
    ) -> Result<(Option<String>, Option<crate::SecretHash>)> {
        match (&existing.secret, method) {
            (Some(kept), AuthMethod::Secret) => Ok((None, Some(kept.clone()))),
            (None, AuthMethod::Secret) => self.new_secret_if(true),
            (_, AuthMethod::None | AuthMethod::PrivateKeyJwt) => Ok((None, None)),
        }
    }

    fn new_secret_if(&self, confidential: bool) -> Result<(Option<String>, Option<crate::SecretHash>)> {
        if !confidential {
            return Ok((None, None));
        }
        let secret = self.secret()?;
        let hash = self.hasher.hash_secret(&secret)?;
        Ok((Some(secret), Some(hash)))
    }

    fn record(
        &self,
        id: ClientId,
        checked: Checked,
        secret: Option<crate::SecretHash>,
        origin: ClientOrigin,
        registration_token: Option<TokenHash>,
    ) -> Result<ClientRecord> {
        let record = ClientRecord {
            name: checked.name.unwrap_or_else(|| id.to_string()),
            id,
            secret,
            redirect_uris: checked.redirect_uris,
            grant_types: checked.grant_types,
            scopes: checked.scopes,
            require_pkce: checked.require_pkce,
            resources: checked.resources,
            allowed_cors_origins: checked.allowed_cors_origins,
            created_at: self.authority.now(),
            origin,
            registration_token,
            jwks: checked.jwks,
            private_key_jwt: checked.method == AuthMethod::PrivateKeyJwt,
            post_logout_redirect_uris: checked.post_logout_redirect_uris,
            id_token_alg: checked.id_token_alg,
            skip_consent: checked.skip_consent,
        };
        record.to_client().map_err(client_error)?;
        Ok(record)
    }

    /// Checks client metadata for `who`. Every failure is RFC 7591's
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    fn check_metadata(&self, meta: &ClientMetadata, who: Registrant) -> Result<Checked> {
        let settings = &self.authority.settings;
        let name = match &meta.client_name {
            Some(n) if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) => {
                return Err(Error::InvalidClientMetadata("client_name must be 1 to 200 characters, no control ones"));
            }
            other => other.clone(),
        };

        let raw_uris = meta.redirect_uris.clone().unwrap_or_default();
        if raw_uris.len() > MAX_REDIRECT_URIS {
            return Err(Error::InvalidRedirectUriMetadata("at most 32 redirect URIs"));
        }
        let mut redirect_uris = Vec::new();
        for raw in &raw_uris {
            if raw.len() > 2048 {
                return Err(Error::InvalidRedirectUriMetadata("a redirect URI is over 2,048 bytes"));
            }
            let uri = RedirectUri::parse(raw).map_err(|e| {
                Error::InvalidRedirectUriMetadata(match e {
                    RedirectUriError::Fragment => "a redirect URI has a fragment",
                    RedirectUriError::HttpNotLoopback => "a redirect URI uses http on a host that is not loopback",
                    _ => "a redirect URI is not an absolute URI",
                })
            })?;
            if who == Registrant::Open && !(raw.starts_with("https://") || raw.starts_with("http://")) {
                return Err(Error::InvalidRedirectUriMetadata(
                    "open registration takes https or loopback http redirect URIs only",
                ));
            }
            if redirect_uris.contains(&uri) {
                return Err(Error::InvalidRedirectUriMetadata("a redirect URI is listed twice"));
            }
            redirect_uris.push(uri);
        }

        let names = meta.grant_types.clone().unwrap_or_else(|| vec!["authorization_code".into()]);
        let mut grant_types = BTreeSet::new();
        for g in &names {
            let grant = GrantType::parse(g).map_err(|_| Error::InvalidClientMetadata("unknown grant type"))?;
            let allowed = match who {
                Registrant::Admin => true,
                Registrant::Trusted => grant != GrantType::Password,
                Registrant::Open => matches!(grant, GrantType::AuthorizationCode | GrantType::RefreshToken),
            };
            if !allowed {
                return Err(Error::InvalidClientMetadata("this grant type may not be registered here"));
            }
            grant_types.insert(grant);
        }
        if let Some(types) = &meta.response_types {
            let code_only = !types.is_empty() && types.iter().all(|t| t == "code");
            if !code_only {
                return Err(Error::InvalidClientMetadata("response_types may only be [\"code\"]"));
            }
            if !grant_types.contains(&GrantType::AuthorizationCode) {
                return Err(Error::InvalidClientMetadata("response type code needs the authorization_code grant"));
            }
        }

        let default_method = if who == Registrant::Open { "none" } else { "client_secret_basic" };
        let method = match meta.token_endpoint_auth_method.as_deref().unwrap_or(default_method) {
            "none" => AuthMethod::None,
            "client_secret_basic" | "client_secret_post" | "private_key_jwt" if who == Registrant::Open => {
                return Err(Error::InvalidClientMetadata("open registration creates public clients only"));
            }
            "client_secret_basic" | "client_secret_post" => AuthMethod::Secret,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            _ => return Err(Error::InvalidClientMetadata("unsupported token_endpoint_auth_method")),
        };
        if settings.fapi2 && method != AuthMethod::PrivateKeyJwt {
            // FAPI 2.0 5.3.2.1 (and `check-config` for the file's clients):
            // confidential clients only, authenticating by private_key_jwt
            // (mTLS is not offered). A metadata without the method is refused
            // too, never given private_key_jwt in its place: RFC 7591 2 makes
            // its default client_secret_basic, so such a client expects a
            // secret, and a client with no keys registered could not sign.
            // RFC 7591 3.2.1 lets a server replace a value, but an explicit
            // refusal tells the client what to send instead of a token
            // endpoint that answers invalid_client later.
            return Err(Error::InvalidClientMetadata(
                "FAPI 2.0: token_endpoint_auth_method must be private_key_jwt, with jwks",
            ));
        }

        let registration = &settings.registration;
        let registrable_resources: BTreeSet<ResourceUri> = match &registration.resources {
            Some(listed) => listed.iter().filter(|r| settings.resources.contains_key(*r)).cloned().collect(),
            None => settings.resources.keys().cloned().collect(),
        };
        let scopes = match (&meta.scope, who) {
            (Some(raw), _) => {
                Scope::parse(raw).map_err(|_| Error::InvalidClientMetadata("scope must be RFC 6749 scope tokens"))?
            }
            (None, Registrant::Admin) => Scope::empty(),
            (None, _) => registration.scopes.clone(),
        };
        if who != Registrant::Admin && !scopes.is_subset(&registration.scopes) {
            return Err(Error::InvalidClientMetadata("the scope exceeds what registered clients may ask for"));
        }

        let resources = match (&meta.resources, who) {
            (Some(list), _) => {
                if list.len() > MAX_RESOURCES {
                    return Err(Error::InvalidClientMetadata("at most 32 resources"));
                }
                let mut set = BTreeSet::new();
                for raw in list {
                    let r = ResourceUri::parse(raw)
                        .map_err(|_| Error::InvalidClientMetadata("a resource must be an absolute URI"))?;
                    if !settings.resources.contains_key(&r) {
                        return Err(Error::InvalidClientMetadata("a resource is not one this server knows"));
                    }
                    if who != Registrant::Admin && !registrable_resources.contains(&r) {
                        return Err(Error::InvalidClientMetadata("a resource is not open to registered clients"));
                    }
                    set.insert(r);
                }
                set
            }
            (None, Registrant::Admin) => BTreeSet::new(),
            (None, _) => registrable_resources,
        };

        let require_pkce = match who {
            Registrant::Admin => meta.require_pkce.unwrap_or(true),
            // RFC 9700 2.1.1 for every client that registers itself.
            _ => true,
        };
        let jwks = meta.jwks.as_ref().map(check_jwks).transpose()?;
        if method == AuthMethod::PrivateKeyJwt {
            // RFC 7591 2: jwks (jwks_uri is not served) holds the keys its
            // assertions are signed with; they must be keys that can verify.
            let keys = jwks.as_deref().ok_or(Error::InvalidClientMetadata(
                "private_key_jwt needs jwks: the public keys the client signs its assertions with",
            ))?;
            self.authority.services.proofs.check_client_keys(keys)?;
        }
        let raw_origins = meta.allowed_cors_origins.clone().unwrap_or_default();
        if raw_origins.len() > MAX_REDIRECT_URIS {
            return Err(Error::InvalidClientMetadata("at most 32 allowed_cors_origins"));
        }
        let allowed_cors_origins =
            raw_origins.iter().map(|o| WebOrigin::parse(o)).collect::<std::result::Result<Vec<_>, _>>().map_err(
                |_| Error::InvalidClientMetadata("an allowed_cors_origins entry is not scheme://host[:port]"),
            )?;
        let post_logout_redirect_uris = self.check_post_logout_uris(meta, who)?;
        let id_token_alg = match meta.id_token_signed_response_alg.as_deref() {
            // FAPI 2.0 5.4 allows no RS256: ID tokens are signed with the
            // server's signing_alg, and the metadata a client gets back says
            // so rather than a default the server would not follow.
            None if settings.fapi2 => IdTokenAlg::ServerAlg,
            Some("RS256") if settings.fapi2 => {
                return Err(Error::InvalidClientMetadata(
                    "FAPI 2.0: id_token_signed_response_alg must be the server's signing_alg, not RS256",
                ));
            }
            None | Some("RS256") => IdTokenAlg::Rs256,
            Some(name) if self.authority.services.id_tokens.server_alg() == Some(name) => IdTokenAlg::ServerAlg,
            Some(_) => {
                return Err(Error::InvalidClientMetadata(
                    "id_token_signed_response_alg must be RS256 or the server's signing_alg",
                ));
            }
        };
        // Skipping consent is the operator's word for a first-party client;
        // a client registering itself cannot say it of itself.
        let skip_consent = meta.skip_consent.unwrap_or(false);
        if skip_consent && who != Registrant::Admin {
            return Err(Error::InvalidClientMetadata("skip_consent is for clients of the admin API only"));
        }
        Ok(Checked {
            name,
            redirect_uris,
            grant_types,
            scopes,
            require_pkce,
            resources,
            method,
            jwks,
            allowed_cors_origins,
            post_logout_redirect_uris,
            id_token_alg,
            skip_consent,
        })
    }

    /// Checks `post_logout_redirect_uris` by the rules of redirect URIs (no
    /// fragment, http on loopback only, each once, at most 32; https or
    /// loopback http for open registration).
    fn check_post_logout_uris(&self, meta: &ClientMetadata, who: Registrant) -> Result<Vec<RedirectUri>> {
        let raw_uris = meta.post_logout_redirect_uris.clone().unwrap_or_default();
        if raw_uris.len() > MAX_REDIRECT_URIS {
            return Err(Error::InvalidClientMetadata("at most 32 post_logout_redirect_uris"));
        }
        let mut uris = Vec::new();
        for raw in &raw_uris {
            let bad = Error::InvalidClientMetadata(
                "a post_logout_redirect_uri is not an absolute URI without a fragment, http on loopback only",
            );
            if raw.len() > 2048 {
                return Err(Error::InvalidClientMetadata("a post_logout_redirect_uri is over 2,048 bytes"));
            }
            let uri = RedirectUri::parse(raw).map_err(|_| bad.clone())?;
            if who == Registrant::Open && !(raw.starts_with("https://") || raw.starts_with("http://")) {
                return Err(bad);
            }
            if uris.contains(&uri) {
                return Err(Error::InvalidClientMetadata("a post_logout_redirect_uri is listed twice"));
            }
            uris.push(uri);
        }
        Ok(uris)
    }

    // --- accounts -----------------------------------------------------------------------

    /// One page of accounts, in id order.
    pub async fn accounts(&self, after: Option<&str>, limit: usize) -> Result<Page<Account>> {
        let limit = page_size(limit)?;
        let after =
            after.map(|c| decode_cursor(c).and_then(|raw| AccountId::parse(&raw).ok_or(bad_cursor()))).transpose()?;
        let mut items = self.store().accounts_after(after, limit + 1).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|a| encode_cursor(&a.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The account with this username, if any.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        Ok(self.store().account_by_username(username).await?)
    }

    /// The account `id` (its `sub`).
    pub async fn account(&self, id: &str) -> Result<Account> {
        let id = AccountId::parse(id).ok_or(Error::NotFound("no such account"))?;
        self.store().account(id).await?.ok_or(Error::NotFound("no such account"))
    }

    /// Creates an account; its password is stored as Argon2id only.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        check_username(&new.username)?;
        check_attributes(&new.attributes)?;
        if self.store().account_by_username(&new.username).await?.is_some() {
            return Err(Error::Conflict("an account with this username exists"));
        }
        let password_hash = match &new.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let mut b = [0u8; 16];
        self.authority.services.secrets.fill(&mut b)?;
        let account = Account {
            id: AccountId::from_random_bytes(b),
            username: new.username,
            password_hash,
            disabled: new.disabled,
            attributes: new.attributes,
            origin: AccountOrigin::Admin,
        };
        self.store().put_account(&account).await.map_err(|e| conflict(e, "an account with this username exists"))?;
        Ok(account)
    }

    /// Changes an account. Disabling it ends its sessions; its tokens stop
    /// working at once (every use reads the account).
    pub async fn update_account(&self, id: &str, patch: AccountPatch) -> Result<Account> {
        let mut account = self.changeable_account(id).await?;
        if let Some(username) = patch.username {
            check_username(&username)?;
            account.username = username;
        }
        if let Some(attributes) = patch.attributes {
            check_attributes(&attributes)?;
            account.attributes = attributes;
        }
        if let Some(password) = &patch.password {
            account.password_hash = Some(self.hash_password(password).await?);
        }
        if let Some(disabled) = patch.disabled {
            account.disabled = disabled;
        }
        self.store().put_account(&account).await.map_err(|e| conflict(e, "an account with this username exists"))?;
        if account.disabled {
            self.store().delete_records_of(BROWSER_SESSIONS, account.id).await?;
        }
        Ok(account)
    }

    /// Deletes an account, its sessions and its remembered consents. Its
    /// tokens stop working at once.
    pub async fn delete_account(&self, id: &str) -> Result<()> {
        let account = self.changeable_account(id).await?;
        self.store().delete_records_of(BROWSER_SESSIONS, account.id).await?;
        self.store().delete_records_of(CONSENTS, account.id).await?;
        if self.store().delete_account(account.id).await? { Ok(()) } else { Err(Error::NotFound("no such account")) }
    }

    async fn changeable_account(&self, id: &str) -> Result<Account> {
        let account = self.account(id).await?;
        if account.origin == AccountOrigin::Configuration {
            return Err(Error::Conflict("the account is defined in the configuration file; change it there"));
        }
        Ok(account)
    }

    async fn hash_password(&self, password: &str) -> Result<crate::SecretHash> {
        if password.is_empty() || password.len() > MAX_PASSWORD {
            return Err(Error::InvalidRequest("a password must be 1 to 1,024 bytes"));
        }
        self.hasher.hash_password(password).await
    }

    /// One page of the account's live grants, in id order.
    pub async fn grants(&self, account: &str, after: Option<&str>, limit: usize) -> Result<Page<Grant>> {
        let limit = page_size(limit)?;
        let account = self.account(account).await?;
        let after =
            after.map(|c| decode_cursor(c).and_then(|raw| GrantId::parse(&raw).ok_or(bad_cursor()))).transpose()?;
        let now = self.authority.now();
        let mut items = self.store().grants_of(account.id, after, limit + 1, now).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|g| encode_cursor(&g.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Revokes a grant: its refresh tokens and access tokens are refused from
    /// now on, and it is no longer listed.
    pub async fn revoke_grant(&self, id: &str) -> Result<()> {
        let id = GrantId::parse(id).ok_or(Error::NotFound("no such grant"))?;
        let now = self.authority.now();
        match self.store().grant(id, now).await? {
            Some(g) if !g.revoked => Ok(self.store().revoke_grant(id).await?),
            _ => Err(Error::NotFound("no such grant")),
        }
    }

    /// Forgets the account's remembered consents; answers how many there were.
    pub async fn forget_consents(&self, account: &str) -> Result<u64> {
        let account = self.account(account).await?;
        Ok(self.store().delete_records_of(CONSENTS, account.id).await?)
    }

    /// Logs the account out everywhere; answers how many sessions ended.
    pub async fn end_sessions(&self, account: &str) -> Result<u64> {
        let account = self.account(account).await?;
        Ok(self.store().delete_records_of(BROWSER_SESSIONS, account.id).await?)
    }

    // --- dynamic registration (RFC 7591, RFC 7592) ----------------------------------------

    /// Admits a registration (RFC 7591 3) before its metadata is read. With
    /// `[registration] initial_access_token_hash` set, `initial_token` must
    /// match it (else 401 `invalid_token`); without, registration is open.
    /// The token decides first, so a caller without it learns nothing of
    /// how its metadata would fare (RFC 6750 3.1).
    pub async fn admit(&self, initial_token: Option<&str>) -> Result<Admission> {
        let registration = &self.authority.settings.registration;
        if !registration.enabled {
            return Err(Error::NotFound("dynamic registration is off"));
        }
        let who = match &registration.initial_access_token {
            Some(hash) => {
                let presented = initial_token.ok_or(Error::InvalidToken("an initial access token is required"))?;
                if !self.authority.services.verifier.verify(Some(hash), presented).await? {
                    return Err(Error::InvalidToken("wrong initial access token"));
                }
                Registrant::Trusted
            }
            None => Registrant::Open,
        };
        Ok(Admission(who))
    }

    /// Registers a client (RFC 7591 3) that [`Admin::admit`] let in; an
    /// open registration is counted per `peer`.
    pub async fn register(&self, meta: &ClientMetadata, admitted: Admission, peer: Option<IpAddr>) -> Result<Issued> {
        let Admission(who) = admitted;
        let checked = self.check_metadata(meta, who)?;
        if who == Registrant::Open {
            self.count_open_registration(peer).await?;
        }
        let id = self.new_client_id()?;
        let (secret, hash) = self.new_secret_if(checked.method == AuthMethod::Secret)?;
        let token = self.secret()?;
        let record = self.record(id, checked, hash, ClientOrigin::Registration, Some(TokenHash::of(&token)))?;
        self.store().insert_client(&record).await.map_err(|e| conflict(e, "the client_id was taken; retry"))?;
        Ok(Issued {
            view: stored_view(&self.authority, &record)?,
            client_secret: secret,
            registration_access_token: Some(token),
        })
    }

    /// A registered client's own registration (RFC 7592 2.1).
    pub async fn registration(&self, id: &str, token: &str) -> Result<ClientView> {
        stored_view(&self.authority, &self.registered(id, token).await?)
    }

    /// Replaces a registered client's metadata (RFC 7592 2.2) and issues a
    /// new registration access token: the old one stops working.
    ///
    /// The update is judged by today's `[registration]` rules, which may be
    /// looser than those the client registered by (the operator may have
    /// set an initial access token since). So the one thing that decides
    /// which rules those were, `token_endpoint_auth_method`, cannot change
    /// here: a public client stays public, a secret client keeps its secret
    /// and a `private_key_jwt` client its method (its `jwks` may change). A
    /// request to change it is `invalid_client_metadata` (RFC 7592 2.2 lets
    /// the server refuse a value); the operator changes it through the admin
    /// API. An update that omits the method keeps the client's (RFC 7592
    /// 2.2 lets the server ignore an omitted value), rather than taking RFC
    /// 7591's default, which would be a change.
    pub async fn update_registration(&self, id: &str, token: &str, meta: &ClientMetadata) -> Result<Issued> {
        let existing = self.registered(id, token).await?;
        let kept = auth_method_of(&existing);
        if meta.client_id.as_deref() != Some(existing.id.as_str()) {
            return Err(Error::InvalidClientMetadata("client_id must be the client's own"));
        }
        if let Some(sent) = &meta.client_secret {
            let matches = match &existing.secret {
                Some(hash) => self.authority.services.verifier.verify(Some(hash), sent).await?,
                None => false,
            };
            if !matches {
                return Err(Error::InvalidClientMetadata("client_secret is not the client's"));
            }
        }
        let who = if self.authority.settings.registration.initial_access_token.is_some() {
            Registrant::Trusted
        } else {
            Registrant::Open
        };
        let checked = if meta.token_endpoint_auth_method.is_some() {
            self.check_metadata(meta, who)?
        } else {
            let name = match kept {
                AuthMethod::None => "none",
                AuthMethod::Secret => "client_secret_basic",
                AuthMethod::PrivateKeyJwt => "private_key_jwt",
            };
            let meta = ClientMetadata { token_endpoint_auth_method: Some(name.to_owned()), ..meta.clone() };
            self.check_metadata(&meta, who)?
        };
        if checked.method != kept {
            return Err(Error::InvalidClientMetadata(
                "token_endpoint_auth_method cannot change through RFC 7592; the operator changes it",
            ));
        }
        let (secret, hash) = self.kept_or_new_secret(&existing, checked.method)?;
        let new_token = self.secret()?;
        let record = ClientRecord {
            created_at: existing.created_at,
            ..self.record(existing.id.clone(), checked, hash, existing.origin, Some(TokenHash::of(&new_token)))?
        };
        let replaced = self.store().replace_client(&record).await?;
        self.registry().forget(&record.id);
        if !replaced {
            return Err(Error::InvalidToken("unknown client or wrong registration access token"));
        }
        Ok(Issued {
            view: stored_view(&self.authority, &record)?,
            client_secret: secret,
            registration_access_token: Some(new_token),
        })
    }

    /// Deletes a registered client (RFC 7592 2.3).
    pub async fn delete_registration(&self, id: &str, token: &str) -> Result<()> {
        let existing = self.registered(id, token).await?;
        self.store().delete_client(&existing.id).await?;
        self.registry().forget(&existing.id);
        Ok(())
    }

    /// The registered client `id` whose registration access token is `token`.
    /// Every failure, an unknown client included, is the same 401, so the
    /// answer tells nothing about which clients exist.
    async fn registered(&self, id: &str, token: &str) -> Result<ClientRecord> {
        let refused = Error::InvalidToken("unknown client or wrong registration access token");
        let id = ClientId::parse(id).map_err(|_| refused.clone())?;
        let record = self.store().client_record(&id).await?.ok_or(refused.clone())?;
        let presented = TokenHash::of(token);
        let matches = record
            .registration_token
            .as_ref()
            .is_some_and(|stored| bool::from(stored.as_bytes().ct_eq(presented.as_bytes())));
        if matches && record.origin == ClientOrigin::Registration { Ok(record) } else { Err(refused) }
    }

    /// Counts an open registration from `peer` within the current window,
    /// refusing it past `max_per_ip`, or when the store holds `max_clients`.
    /// The count is a record swapped by compare-and-swap, so concurrent
    /// registrations never get past the limit together.
    async fn count_open_registration(&self, peer: Option<IpAddr>) -> Result<()> {
        let registration = &self.authority.settings.registration;
        let window = registration.window.whole_seconds().max(1);
        let now = self.authority.now();
        let index = now.unix_timestamp().div_euclid(window);
        let window_end = OffsetDateTime::from_unix_timestamp((index + 1) * window)
            .map_err(|_| Error::Internal("registration window out of range".into()))?;
        let retry_after = u64::try_from((window_end - now).whole_seconds().max(1)).unwrap_or(1);
        if self.store().count_clients().await? >= registration.max_clients {
            return Err(Error::RateLimited { retry_after });
        }
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let key = TokenHash::of(&format!("{peer}\0{index}"));
        for _ in 0..32 {
            let next = match self.store().record(REGISTRATIONS, &key, now).await? {
                None => {
                    let first =
                        Record { kind: REGISTRATIONS, key, owner: None, value: b"1".to_vec(), expires_at: window_end };
                    if self.store().insert_record(&first, now).await? {
                        return Ok(());
                    }
                    continue;
                }
                Some(current) => current,
            };
            let count: u32 = std::str::from_utf8(&next.value).ok().and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
            if count >= registration.max_per_ip {
                return Err(Error::RateLimited { retry_after });
            }
            let counted = Record { value: (count + 1).to_string().into_bytes(), ..next.clone() };
            if self.store().replace_record(&next, &counted).await? {
                return Ok(());
            }
        }
        // Lost the swap 32 times in a row: the address is registering hard.
        Err(Error::RateLimited { retry_after })
    }
}

/// How `record` authenticates now.
fn auth_method_of(record: &ClientRecord) -> AuthMethod {
    match (record.private_key_jwt, &record.secret) {
        (true, _) => AuthMethod::PrivateKeyJwt,
        (false, Some(_)) => AuthMethod::Secret,
        (false, None) => AuthMethod::None,
    }
}

fn fixed_view(authority: &Authority, client: Arc<Client>, source: ClientSource) -> ClientView {
    let jwks = client.jwks().map(str::to_owned);
    let id_token_alg = authority.id_token_alg(&client);
    ClientView { client, source, created_at: None, jwks, id_token_alg }
}

fn stored_view(authority: &Authority, record: &ClientRecord) -> Result<ClientView> {
    let client = record.to_client().map_err(|_| Error::Store(StoreError::Corrupt("stored client".into())))?;
    let source = match record.origin {
        ClientOrigin::Admin => ClientSource::Admin,
        ClientOrigin::Registration => ClientSource::Registration,
    };
    let id_token_alg = authority.id_token_alg(&client);
    Ok(ClientView {
        client: Arc::new(client),
        source,
        created_at: Some(record.created_at),
        jwks: record.jwks.clone(),
        id_token_alg,
    })
}

fn client_error(e: ClientError) -> Error {
    match e {
        ClientError::NoRedirectUri => {
            Error::InvalidRedirectUriMetadata("the authorization_code grant needs at least one redirect URI")
        }
        ClientError::PublicWithoutPkce => Error::InvalidClientMetadata("a public client must require PKCE"),
        ClientError::PublicClientCredentials => {
            Error::InvalidClientMetadata("client_credentials is for confidential clients only")
        }
        ClientError::SecretAndKeys => Error::InvalidClientMetadata("a client has a secret or keys, not both"),
    }
}

/// A store conflict is the caller's 409; anything else stays a store error.
fn conflict(e: StoreError, what: &'static str) -> Error {
    match e {
        StoreError::Conflict(_) => Error::Conflict(what),
        other => Error::Store(other),
    }
}

fn page_size(limit: usize) -> Result<usize> {
    if (1..=MAX_PAGE).contains(&limit) { Ok(limit) } else { Err(Error::InvalidRequest("limit must be 1 to 1000")) }
}

fn bad_cursor() -> Error {
    Error::InvalidRequest("malformed cursor")
}

fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Result<String> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    String::from_utf8(raw).map_err(|_| bad_cursor())
}

fn check_username(username: &str) -> Result<()> {
    let ok = !username.is_empty()
        && username.len() <= MAX_USERNAME
        && !username.chars().any(char::is_control)
        && username.trim() == username;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest("a username must be 1 to 255 bytes, no control characters or outer spaces"))
    }
}

fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<()> {
    let ok = attributes.len() <= MAX_ATTRIBUTES
        && attributes.iter().all(|(k, v)| {
            !k.is_empty() && k.len() <= 64 && v.len() <= MAX_ATTRIBUTE_LEN && !k.chars().any(char::is_control)
        });
    if ok { Ok(()) } else { Err(Error::InvalidRequest("at most 64 attributes, names 1 to 64 bytes, values 1 KiB")) }
}

/// Checks a `jwks` (RFC 7517 5): an object whose `keys` are objects with a
/// `kty`, none of them holding private or symmetric key material. Answers
/// the set as compact JSON.
fn check_jwks(jwks: &serde_json::Value) -> Result<String> {
    // RFC 7518 6.2.2, 6.3.2 and 6.4: the members of private and symmetric keys.
    const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or(Error::InvalidClientMetadata("jwks must be an object with a keys array"))?;
    if keys.is_empty() || keys.len() > MAX_JWKS_KEYS {
        return Err(Error::InvalidClientMetadata("jwks must hold 1 to 16 keys"));
    }
    for key in keys {
        let key = key.as_object().ok_or(Error::InvalidClientMetadata("every jwks key must be an object"))?;
        if !key.get("kty").is_some_and(serde_json::Value::is_string) {
            return Err(Error::InvalidClientMetadata("every jwks key needs a kty"));
        }
        if PRIVATE.iter().any(|m| key.contains_key(*m)) {
            return Err(Error::InvalidClientMetadata("jwks must hold public keys only"));
        }
    }
    serde_json::to_string(jwks).map_err(|_| Error::InvalidClientMetadata("jwks is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_with_private_or_symmetric_keys_is_refused() {
        let public = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]});
        assert!(check_jwks(&public).is_ok());
        for bad in [
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]}),
            serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            serde_json::json!({"keys": [{"kty": "RSA", "n": "a", "e": "AQAB", "p": "x"}]}),
            serde_json::json!({"keys": []}),
            serde_json::json!({"keys": [{"crv": "P-256"}]}),
            serde_json::json!([1, 2]),
        ] {
            assert!(matches!(check_jwks(&bad), Err(Error::InvalidClientMetadata(_))), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid_request() {
        assert_eq!(decode_cursor(&encode_cursor("a b/c")).unwrap(), "a b/c");
        assert!(matches!(decode_cursor("!!"), Err(Error::InvalidRequest(_))));
        assert!(matches!(page_size(0), Err(Error::InvalidRequest(_))));
        assert!(matches!(page_size(1001), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn usernames_are_bounded_and_plain() {
        assert!(check_username("alice").is_ok());
        for bad in ["", " alice", "al\nice", &"a".repeat(256)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
