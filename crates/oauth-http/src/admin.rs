//! The admin API (SPEC-2): JSON over HTTP on a listener of its own, protected
//! by one bearer token, for clients, accounts, an account's grants, consents
//! and sessions. [`AdminApi`] only parses and renders; every rule is in
//! [`oauth_core::Admin`].
//!
//! The bodies it parses and renders are the types at the end of this file
//! (and [`crate::wire`]'s for clients); the OpenAPI description of
//! [`crate::openapi`] derives its schemas from these same types.
//!
//! The token is compared through the server's [`SecretVerifier`](oauth_core::SecretVerifier)
//! against its `$sha256$` hash, in constant time. A missing or wrong token is
//! 401 before anything else is read, and neither the token nor any password or
//! secret of a body is ever logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use oauth_core::{AccountPatch, Admin, Error, NewAccount, Page, SecretHash};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bearer::{BearerError, bearer_token};
use crate::frontend::HttpConfig;
use crate::request::{Params, ReadError, read_body};
use crate::response::{self, Body, Challenge};
use crate::wire;

/// An online backup of the store (`POST /admin/backup`), supplied by the
/// server, which knows where backups go and which store it runs on.
#[async_trait::async_trait]
pub trait Backup: Send + Sync {
    /// Writes a consistent copy of the store; answers where it went and how
    /// many entries it holds.
    async fn backup(&self) -> Result<(String, u64), Error>;
}

/// The admin API of one server: see the module docs.
pub struct AdminApi {
    admin: Arc<Admin>,
    token_hash: SecretHash,
    config: HttpConfig,
    backup: Option<Arc<dyn Backup>>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi").finish_non_exhaustive()
    }
}

/// One admin route, after the path is split.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    OpenApi,
    Clients,
    Client(String),
    Accounts,
    Account(String),
    AccountGrants(String),
    AccountConsents(String),
    AccountSessions(String),
    Grant(String),
    Backup,
    Unknown,
}

impl Route {
    fn of(path: &str) -> Route {
        let Some(rest) = path.strip_prefix("/admin/") else { return Route::Unknown };
        let segments: Option<Vec<String>> = rest.split('/').map(decode_segment).collect();
        let Some(segments) = segments else { return Route::Unknown };
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["openapi.json"] => Route::OpenApi,
            ["backup"] => Route::Backup,
            ["clients"] => Route::Clients,
            ["clients", id] if !id.is_empty() => Route::Client((*id).to_owned()),
            ["accounts"] => Route::Accounts,
            ["accounts", id] if !id.is_empty() => Route::Account((*id).to_owned()),
            ["accounts", id, "grants"] => Route::AccountGrants((*id).to_owned()),
            ["accounts", id, "consents"] => Route::AccountConsents((*id).to_owned()),
            ["accounts", id, "sessions"] => Route::AccountSessions((*id).to_owned()),
            ["grants", id] if !id.is_empty() => Route::Grant((*id).to_owned()),
            _ => Route::Unknown,
        }
    }

    /// The methods the route serves, for 405 and `Allow`.
    fn methods(&self) -> &'static [Method] {
        match self {
            Route::OpenApi => &[Method::GET],
            Route::Clients | Route::Accounts => &[Method::GET, Method::POST],
            Route::Client(_) => &[Method::GET, Method::PUT, Method::DELETE],
            Route::Account(_) => &[Method::GET, Method::PATCH, Method::DELETE],
            Route::AccountGrants(_) => &[Method::GET],
            Route::Backup => &[Method::POST],
            Route::AccountConsents(_) | Route::AccountSessions(_) | Route::Grant(_) => &[Method::DELETE],
            Route::Unknown => &[],
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Route::OpenApi => "openapi",
            Route::Clients | Route::Client(_) => "clients",
            Route::Accounts | Route::Account(_) => "accounts",
            Route::AccountGrants(_) | Route::Grant(_) => "grants",
            Route::AccountConsents(_) => "consents",
            Route::AccountSessions(_) => "sessions",
            Route::Backup => "backup",
            Route::Unknown => "unknown",
        }
    }
}

/// Every (path template, method) the admin API serves behind its token, for
/// the test that keeps the OpenAPI description true. Each route is reached
/// through [`Route::of`], as a request would be.
#[cfg(test)]
pub(crate) fn served_operations() -> Vec<(&'static str, Method)> {
    let templates = [
        "/admin/openapi.json",
        "/admin/clients",
        "/admin/clients/{id}",
        "/admin/accounts",
        "/admin/accounts/{id}",
        "/admin/accounts/{id}/grants",
        "/admin/accounts/{id}/consents",
        "/admin/accounts/{id}/sessions",
        "/admin/grants/{id}",
        "/admin/backup",
    ];
    let mut out = Vec::new();
    for template in templates {
        let route = Route::of(&template.replace("{id}", "x"));
        // A route added to `Route` without a template here fails to compile
        // until it is listed: the match has no wildcard.
        let documented = match route {
            Route::OpenApi | Route::Unknown => false,
            Route::Clients
            | Route::Client(_)
            | Route::Accounts
            | Route::Account(_)
            | Route::AccountGrants(_)
            | Route::AccountConsents(_)
            | Route::AccountSessions(_)
            | Route::Grant(_)
            | Route::Backup => true,
        };
        assert!(route != Route::Unknown, "{template} is served by no route");
        if documented {
            out.extend(route.methods().iter().map(|m| (template, m.clone())));
        }
    }
    out
}

/// A path segment, percent-decoded; `None` when it does not decode to UTF-8.
fn decode_segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())
}

impl AdminApi {
    /// The admin API over `admin`, for holders of the token whose `$sha256$`
    /// hash is `token_hash`. `config` gives the connection limits and
    /// timeouts of its listener.
    pub fn new(admin: Arc<Admin>, token_hash: SecretHash, config: HttpConfig) -> Self {
        AdminApi { admin, token_hash, config, backup: None }
    }

    /// Serves `POST /admin/backup` through `backup`.
    pub fn with_backup(mut self, backup: Arc<dyn Backup>) -> Self {
        self.backup = Some(backup);
        self
    }

    /// The listener's settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn realm(&self) -> &str {
        &self.admin.authority().settings().issuer
    }

    /// Answers one request. Never panics and never answers 500 for anything a
    /// client can send.
    pub async fn handle<B>(&self, req: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<crate::BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let route = Route::of(parts.uri.path());
        let response = self.dispatch(&route, &parts, body).await;
        tracing::info!(
            method = %parts.method,
            path = %parts.uri.path(),
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            peer = %peer.ip(),
            route = route.name(),
            "admin request"
        );
        response
    }

    async fn dispatch<B>(&self, route: &Route, parts: &Parts, body: B) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<crate::BoxError>,
    {
        if *route == Route::Unknown {
            return response::not_found(StatusCode::NOT_FOUND);
        }
        if !route.methods().contains(&parts.method) {
            let mut r = response::not_found(StatusCode::METHOD_NOT_ALLOWED);
            let allow: Vec<&str> = route.methods().iter().map(Method::as_str).collect();
            if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        if *route == Route::OpenApi {
            return crate::openapi::response();
        }
        if let Err(r) = self.authorize(parts).await {
            return r;
        }
        let query = match Params::from_form(parts.uri.query().unwrap_or("").as_bytes()) {
            Ok(q) => q,
            Err(e) => return self.error(&e),
        };
        let alg = self.server_alg();
        let answer = match (route, &parts.method) {
            (Route::Clients, &Method::GET) => self.list_clients(&query).await,
            (Route::Clients, _) => match self.body::<wire::ClientMetadataIn, B>(parts, body, true).await {
                Ok(meta) => {
                    self.admin.create_client(&meta.into_core()).await.map(|i| created(&wire::issued(&i, None, alg)))
                }
                Err(r) => return r,
            },
            (Route::Client(id), &Method::GET) => self.admin.client(id).await.map(|v| ok(&wire::client_view(&v, alg))),
            (Route::Client(id), &Method::PUT) => {
                match self.body::<wire::ClientMetadataIn, B>(parts, body, true).await {
                    Ok(meta) => {
                        self.admin.replace_client(id, &meta.into_core()).await.map(|i| ok(&wire::issued(&i, None, alg)))
                    }
                    Err(r) => return r,
                }
            }
            (Route::Client(id), _) => self.admin.delete_client(id).await.map(|()| no_content()),
            (Route::Accounts, &Method::GET) => self.list_accounts(&query).await,
            (Route::Accounts, _) => match self.body::<NewAccountIn, B>(parts, body, false).await {
                Ok(new) => self.admin.create_account(new.into_core()).await.map(|a| created(&AccountOut::of(&a))),
                Err(r) => return r,
            },
            (Route::Account(id), &Method::GET) => self.admin.account(id).await.map(|a| ok(&AccountOut::of(&a))),
            (Route::Account(id), &Method::PATCH) => match self.body::<AccountPatchIn, B>(parts, body, false).await {
                Ok(patch) => self.admin.update_account(id, patch.into_core()).await.map(|a| ok(&AccountOut::of(&a))),
                Err(r) => return r,
            },
            (Route::Account(id), _) => self.admin.delete_account(id).await.map(|()| no_content()),
            (Route::AccountGrants(id), _) => {
                let after = query.get("after");
                match limit(&query) {
                    Ok(n) => self.admin.grants(id, after, n).await.map(|p| ok(&GrantList::of(&p))),
                    Err(e) => Err(e),
                }
            }
            (Route::AccountConsents(id), _) => self.admin.forget_consents(id).await.map(|_| no_content()),
            (Route::AccountSessions(id), _) => self.admin.end_sessions(id).await.map(|_| no_content()),
            (Route::Grant(id), _) => self.admin.revoke_grant(id).await.map(|()| no_content()),
            (Route::Backup, _) => match &self.backup {
                Some(b) => b.backup().await.map(|(path, entries)| ok(&BackupDone { path, entries })),
                None => Err(Error::NotFound("no backups here: set admin.backup_dir (sled stores only)")),
            },
            (Route::OpenApi | Route::Unknown, _) => return response::not_found(StatusCode::NOT_FOUND),
        };
        answer.unwrap_or_else(|e| self.error(&e))
    }

    /// Checks the bearer token. A wrong token and a missing one look alike
    /// apart from the RFC 6750 error code.
    async fn authorize(&self, parts: &Parts) -> Result<(), Response<Body>> {
        let token = match bearer_token(&parts.headers) {
            Ok(t) => t,
            Err(BearerError::Missing) => return Err(response::bearer_missing(self.realm())),
            Err(e) => return Err(e.into_response(self.realm())),
        };
        let verifier = &self.admin.authority().services().verifier;
        match verifier.verify(Some(&self.token_hash), token).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!("admin API: wrong bearer token");
                Err(response::oauth_error(&Error::InvalidToken("wrong admin token"), self.realm(), Challenge::Bearer))
            }
            Err(e) => Err(self.error(&e)),
        }
    }

    /// Reads a JSON body into `T`. A body that is not such JSON is RFC 7591's
    /// `invalid_client_metadata` for clients and `invalid_request` otherwise.
    async fn body<T: DeserializeOwned, B>(&self, parts: &Parts, body: B, client: bool) -> Result<T, Response<Body>>
    where
        B: hyper::body::Body,
        B::Error: Into<crate::BoxError>,
    {
        let bytes = read_body(&parts.headers, body, self.config.body_read_timeout)
            .await
            .map_err(|e| response::read_error(e, self.realm()))?;
        wire::parse_json(&bytes, client).map_err(|e| match e {
            ReadError::Invalid(e) => self.error(&e),
            other => response::read_error(other, self.realm()),
        })
    }

    fn error(&self, e: &Error) -> Response<Body> {
        response::oauth_error(e, self.realm(), Challenge::BearerForTokenErrors)
    }

    async fn list_clients(&self, query: &Params) -> Result<Response<Body>, Error> {
        let n = limit(query)?;
        let p = self.admin.clients(query.get("after"), n).await?;
        let alg = self.server_alg();
        Ok(ok(&ClientList { items: p.items.iter().map(|v| wire::client_view(v, alg)).collect(), next: p.next }))
    }

    /// The name of the server's `signing_alg`, which a client's
    /// `id_token_signed_response_alg` may be.
    fn server_alg(&self) -> Option<&'static str> {
        self.admin.authority().services().id_tokens.server_alg()
    }

    async fn list_accounts(&self, query: &Params) -> Result<Response<Body>, Error> {
        if let Some(username) = query.get("username") {
            let found = self.admin.account_by_username(username).await?;
            return Ok(ok(&AccountList { items: found.iter().map(AccountOut::of).collect(), next: None }));
        }
        let n = limit(query)?;
        let p = self.admin.accounts(query.get("after"), n).await?;
        Ok(ok(&AccountList { items: p.items.iter().map(AccountOut::of).collect(), next: p.next }))
    }
}

fn limit(query: &Params) -> Result<usize, Error> {
    match query.get("limit") {
        None => Ok(oauth_core::DEFAULT_PAGE),
        Some(raw) => raw.parse().map_err(|_| Error::InvalidRequest("limit must be 1 to 1000")),
    }
}

fn ok(value: &impl Serialize) -> Response<Body> {
    response::json_no_store_status(StatusCode::OK, value)
}

fn created(value: &impl Serialize) -> Response<Body> {
    response::json_no_store_status(StatusCode::CREATED, value)
}

fn no_content() -> Response<Body> {
    response::no_content()
}

/// An account as the admin API shows it.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Account)]
pub(crate) struct AccountOut {
    /// The account's id, also the `sub` of its tokens.
    pub(crate) id: String,
    pub(crate) username: String,
    /// A disabled account cannot log in, and its tokens stop working.
    pub(crate) disabled: bool,
    /// Free-form attributes.
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) source: AccountSource,
}

/// Where an account is defined.
#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AccountSource {
    /// `[[accounts]]` of the configuration file: read-only here.
    Configuration,
    /// Created through the admin API.
    Admin,
}

impl AccountOut {
    pub(crate) fn of(a: &oauth_core::Account) -> AccountOut {
        AccountOut {
            id: a.id.to_string(),
            username: a.username.clone(),
            disabled: a.disabled,
            attributes: a.attributes.clone(),
            source: match a.origin {
                oauth_core::AccountOrigin::Configuration => AccountSource::Configuration,
                _ => AccountSource::Admin,
            },
        }
    }
}

/// A live grant of an account: one consent to one client, with its refresh
/// and access tokens.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Grant)]
pub(crate) struct GrantOut {
    /// Pass to `DELETE /admin/grants/{id}` to revoke it.
    pub(crate) id: String,
    pub(crate) client_id: String,
    /// Space-separated.
    pub(crate) scope: String,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
    /// Seconds since the epoch.
    pub(crate) expires_at: i64,
    /// The RFC 8707 resource the grant is for, if any.
    #[schema(required = true)]
    pub(crate) resource: Option<String>,
}

impl GrantOut {
    pub(crate) fn of(g: &oauth_core::Grant) -> GrantOut {
        GrantOut {
            id: g.id.to_string(),
            client_id: g.client_id.as_str().to_owned(),
            scope: g.scope.to_string(),
            created_at: g.created_at.unix_timestamp(),
            expires_at: g.expires_at.unix_timestamp(),
            resource: g.resource.as_ref().map(|r| r.as_str().to_owned()),
        }
    }
}

/// A page of clients.
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct ClientList {
    pub(crate) items: Vec<wire::ClientOut>,
    /// Pass as `after` for the next page; null on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<String>,
}

/// A page of accounts (one page at most when looked up by `username`).
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct AccountList {
    pub(crate) items: Vec<AccountOut>,
    /// Pass as `after` for the next page; null on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<String>,
}

/// A page of an account's live grants.
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct GrantList {
    pub(crate) items: Vec<GrantOut>,
    /// Pass as `after` for the next page; null on the last page.
    #[schema(required = true)]
    pub(crate) next: Option<String>,
}

impl GrantList {
    fn of(p: &Page<oauth_core::Grant>) -> GrantList {
        GrantList { items: p.items.iter().map(GrantOut::of).collect(), next: p.next.clone() }
    }
}

/// Where `POST /admin/backup` wrote its copy of the store.
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct BackupDone {
    /// The directory of the copy.
    pub(crate) path: String,
    /// How many entries it holds.
    pub(crate) entries: u64,
}

/// `POST /admin/accounts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewAccount)]
pub(crate) struct NewAccountIn {
    /// The login name; unique; 1 to 255 bytes, no control characters or
    /// outer spaces.
    #[schema(min_length = 1, max_length = 255)]
    username: String,
    /// Hashed with Argon2id before it is stored; none for an account that
    /// logs in through an external authenticator only. 1 to 1,024 bytes.
    #[serde(default)]
    #[schema(write_only, min_length = 1, max_length = 1024)]
    password: Option<String>,
    /// Whether it starts disabled.
    #[serde(default)]
    disabled: bool,
    /// Free-form attributes: at most 64, names 1 to 64 bytes, values 1 KiB.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

impl NewAccountIn {
    fn into_core(self) -> NewAccount {
        NewAccount {
            username: self.username,
            password: self.password,
            disabled: self.disabled,
            attributes: self.attributes,
        }
    }
}

/// `PATCH /admin/accounts/{id}`: the members given replace the account's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccountPatch)]
pub(crate) struct AccountPatchIn {
    /// As in `NewAccount`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    username: Option<String>,
    /// As in `NewAccount`.
    #[serde(default)]
    #[schema(write_only, min_length = 1, max_length = 1024)]
    password: Option<String>,
    /// Disable (`true`) or enable (`false`); disabling ends its sessions.
    #[serde(default)]
    disabled: Option<bool>,
    /// Replaces all attributes; as in `NewAccount`.
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
}

impl AccountPatchIn {
    fn into_core(self) -> AccountPatch {
        AccountPatch {
            username: self.username,
            password: self.password,
            disabled: self.disabled,
            attributes: self.attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_split_into_routes_and_nothing_else_is_one() {
        assert_eq!(Route::of("/admin/clients"), Route::Clients);
        assert_eq!(Route::of("/admin/clients/a%20b"), Route::Client("a b".into()));
        assert_eq!(Route::of("/admin/accounts/x/grants"), Route::AccountGrants("x".into()));
        assert_eq!(Route::of("/admin/grants/g"), Route::Grant("g".into()));
        for other in
            ["/admin", "/admin/", "/admin/clients/", "/admin/clients/a/b", "/token", "/admin/x", "/admin/clients/%ff"]
        {
            assert_eq!(Route::of(other), Route::Unknown, "{other}");
        }
    }
}
