//! The configuration file: reading, checking, and the typed result.
//!
//! The file is read as a TOML table and walked key by key, so that one run
//! reports every problem with its key path (unknown keys in several tables,
//! wrong types, bad values), which `serde(deny_unknown_fields)` cannot: it
//! stops at the first. [`SCHEMA`] lists every key; the configuration reference
//! in `docs/configuration.md` is checked against it by a test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use oauth_core::{
    Client, ClientId, ClientSettings, GrantType, RedirectPolicy, RedirectUri, Scope, ScopeRule, SecretHash,
};
use oauth_http::credentials::check_hash;
use oauth_jwt::{SigningAlg, SigningKey};
use oauth_medmij::Ocl;
use toml::{Table, Value};

/// Every table and its keys; `[[clients]]` and `[[accounts]]` are arrays of
/// tables. The configuration reference must list exactly these.
pub(crate) const SCHEMA: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "issuer",
            "listen",
            "server",
            "throttle",
            "store",
            "tokens",
            "grants",
            "clients",
            "accounts",
            "scope_descriptions",
            "medmij",
        ],
    ),
    (
        "server",
        &[
            "max_connections",
            "header_read_timeout",
            "body_read_timeout",
            "store_timeout",
            "trusted_proxies",
            "idle_timeout",
        ],
    ),
    ("throttle", &["window", "max_failures_per_account", "max_failures_per_ip"]),
    ("store", &["backend", "path", "cache_capacity", "url", "pool_size", "connect_timeout", "sweep_interval"]),
    (
        "tokens",
        &[
            "signing_alg",
            "access_token_ttl",
            "refresh_token_ttl",
            "refresh_token_max_lifetime",
            "authorization_code_ttl",
            "leeway",
            "audience",
            "key_file",
        ],
    ),
    ("grants", &["authorization_code", "refresh_token", "client_credentials", "password"]),
    ("clients", &["client_id", "name", "client_secret_hash", "redirect_uris", "grant_types", "scopes", "require_pkce"]),
    ("accounts", &["username", "password_hash", "disabled", "attributes"]),
    ("medmij", &["ocl", "min_age", "require_pkce", "scopes"]),
];

fn known(table: &str) -> &'static [&'static str] {
    SCHEMA.iter().find(|(t, _)| *t == table).map_or(&[], |(_, k)| k)
}

/// One problem or warning, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The key path, such as `clients[1].redirect_uris[0]`; empty for the file.
    pub(crate) path: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// In memory; gone at exit.
    Mem,
    /// sled, embedded and durable (the default).
    Sled,
    /// PostgreSQL, shared by several nodes.
    Postgres,
}

/// Where the signing key comes from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// Generated at first start and kept in the store.
    Store,
    /// The `key_file`, loaded.
    File(Box<SigningKey>),
}

/// A `[[accounts]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct AccountEntry {
    pub(crate) username: String,
    pub(crate) password_hash: Option<SecretHash>,
    pub(crate) disabled: bool,
    pub(crate) attributes: BTreeMap<String, String>,
}

/// The `[medmij]` table, with its OCL loaded.
#[derive(Debug, Clone)]
pub(crate) struct MedmijEntry {
    pub(crate) ocl_path: PathBuf,
    pub(crate) ocl: Ocl,
    pub(crate) min_age: i16,
    pub(crate) require_pkce: bool,
    pub(crate) scopes: Scope,
}

/// A checked configuration. Durations are whole seconds.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) issuer: String,
    pub(crate) listen: SocketAddr,
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: u64,
    pub(crate) body_read_timeout: u64,
    pub(crate) store_timeout: u64,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) idle_timeout: u64,
    pub(crate) throttle_window: u64,
    pub(crate) max_failures_per_account: u32,
    pub(crate) max_failures_per_ip: u32,
    pub(crate) backend: Backend,
    pub(crate) store_path: PathBuf,
    pub(crate) cache_capacity: u64,
    /// PostgreSQL connection URL (may hold a password: never log it).
    pub(crate) store_url: String,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: u64,
    /// Seconds between sweeps of expired records.
    pub(crate) sweep_interval: u64,
    pub(crate) signing_alg: SigningAlg,
    pub(crate) access_token_ttl: u64,
    pub(crate) refresh_token_ttl: u64,
    pub(crate) refresh_token_max_lifetime: u64,
    pub(crate) authorization_code_ttl: u64,
    pub(crate) leeway: u64,
    pub(crate) audience: String,
    pub(crate) key: KeySource,
    pub(crate) grants: BTreeSet<GrantType>,
    pub(crate) clients: Vec<Client>,
    pub(crate) accounts: Vec<AccountEntry>,
    pub(crate) scope_descriptions: BTreeMap<String, String>,
    pub(crate) medmij: Option<MedmijEntry>,
}

/// The outcome of reading a configuration.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The configuration, when there were no errors.
    pub(crate) config: Option<Config>,
    /// Every error found.
    pub(crate) errors: Vec<Problem>,
    /// Every warning found.
    pub(crate) warnings: Vec<Problem>,
}

impl Config {
    /// The built-in defaults: sled in `./data`, `127.0.0.1:8080`, no clients.
    pub(crate) fn defaults() -> Loaded {
        Self::from_table(&Table::new(), Path::new("."))
    }

    /// Reads and checks the file at `path`; relative paths in it resolve
    /// against its folder.
    pub(crate) fn load(path: &Path) -> Loaded {
        let fail = |message: String| Loaded {
            config: None,
            errors: vec![Problem { path: String::new(), message }],
            warnings: vec![],
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        };
        let table: Table = match text.parse() {
            Ok(t) => t,
            Err(e) => return fail(format!("{} is not valid TOML: {e}", path.display())),
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Self::from_table(&table, dir)
    }

    fn from_table(root: &Table, dir: &Path) -> Loaded {
        let mut r = Reader { dir: dir.to_owned(), errors: Vec::new(), warnings: Vec::new() };
        let config = r.config(root);
        let config = if r.errors.is_empty() { config } else { None };
        Loaded { config, errors: r.errors, warnings: r.warnings }
    }
}

struct Reader {
    dir: PathBuf,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

impl Reader {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem { path: path.into(), message: message.into() });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem { path: path.into(), message: message.into() });
    }

    fn unknown_keys(&mut self, t: &Table, path: &str, schema: &str) {
        for key in t.keys() {
            if !known(schema).contains(&key.as_str()) {
                self.error(join(path, key), "unknown key");
            }
        }
    }

    fn get<'a>(
        &mut self,
        t: &'a Table,
        path: &str,
        key: &str,
        want: &str,
        ok: fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        let v = t.get(key)?;
        if ok(v) {
            Some(v)
        } else {
            self.error(join(path, key), format!("must be {want}, not {}", v.type_str()));
            None
        }
    }

    fn table<'a>(&mut self, t: &'a Table, key: &str) -> Option<&'a Table> {
        let sub = self.get(t, "", key, "a table", Value::is_table)?.as_table()?;
        self.unknown_keys(sub, key, key);
        Some(sub)
    }

    fn string(&mut self, t: &Table, path: &str, key: &str) -> Option<String> {
        self.get(t, path, key, "a string", Value::is_str).and_then(Value::as_str).map(str::to_owned)
    }

    fn boolean(&mut self, t: &Table, path: &str, key: &str, default: bool) -> bool {
        self.get(t, path, key, "a boolean", Value::is_bool).and_then(Value::as_bool).unwrap_or(default)
    }

    fn int(&mut self, t: &Table, path: &str, key: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some(v) = self.get(t, path, key, "an integer", Value::is_integer).and_then(Value::as_integer) else {
            return default;
        };
        if v < min || v > max {
            let range = if max == i64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
            self.error(join(path, key), format!("must be {range}, not {v}"));
            return default;
        }
        v
    }

    /// A duration in whole seconds, at least 1.
    fn secs(&mut self, t: &Table, path: &str, key: &str, default: u64) -> u64 {
        self.int(t, path, key, default as i64, 1, i64::MAX) as u64
    }

    fn strings(&mut self, t: &Table, path: &str, key: &str) -> Option<Vec<String>> {
        let v = self.get(t, path, key, "an array of strings", Value::is_array)?.as_array()?;
        let mut out = Vec::new();
        for (i, item) in v.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => self.error(format!("{}[{i}]", join(path, key)), "must be a string"),
            }
        }
        Some(out)
    }

    fn string_map(&mut self, t: &Table, path: &str, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(m) = self.get(t, path, key, "a table", Value::is_table).and_then(Value::as_table) {
            for (k, v) in m {
                match v.as_str() {
                    Some(s) => {
                        out.insert(k.clone(), s.to_owned());
                    }
                    None => self.error(join(&join(path, key), k), "must be a string"),
                }
            }
        }
        out
    }

    fn file(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_owned() } else { self.dir.join(p) }
    }

    fn config(&mut self, root: &Table) -> Option<Config> {
        self.unknown_keys(root, "", "");
        let empty = Table::new();

        let listen = match self.string(root, "", "listen") {
            Some(s) => s
                .parse::<SocketAddr>()
                .map_err(|_| self.error("listen", "must be an address such as 127.0.0.1:8080"))
                .ok(),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        };
        let issuer = self.string(root, "", "issuer").or_else(|| listen.map(|l| format!("http://{l}")));
        if let Some(i) = &issuer {
            self.check_issuer(i);
        }

        let server = self.table(root, "server").unwrap_or(&empty);
        let max_connections = self.int(server, "server", "max_connections", 1024, 1, 1 << 20) as usize;
        let header_read_timeout = self.secs(server, "server", "header_read_timeout", 10);
        let body_read_timeout = self.secs(server, "server", "body_read_timeout", 30);
        let store_timeout = self.secs(server, "server", "store_timeout", 5);
        let idle_timeout = self.secs(server, "server", "idle_timeout", 60);
        let mut trusted_proxies = Vec::new();
        for (i, p) in self.strings(server, "server", "trusted_proxies").unwrap_or_default().iter().enumerate() {
            match p.parse::<IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => self.error(format!("server.trusted_proxies[{i}]"), "must be an IP address"),
            }
        }

        let throttle = self.table(root, "throttle").unwrap_or(&empty);
        let throttle_window = self.secs(throttle, "throttle", "window", 900);
        let max_failures_per_account =
            self.int(throttle, "throttle", "max_failures_per_account", 10, 1, u32::MAX as i64) as u32;
        let max_failures_per_ip =
            self.int(throttle, "throttle", "max_failures_per_ip", 1000, 1, u32::MAX as i64) as u32;

        let store = self.table(root, "store").unwrap_or(&empty);
        let backend = match self.string(store, "store", "backend").as_deref() {
            None | Some("sled") => Some(Backend::Sled),
            Some("mem") => Some(Backend::Mem),
            Some("postgres") => Some(Backend::Postgres),
            Some(other) => {
                self.error("store.backend", format!("must be \"mem\", \"sled\" or \"postgres\", not {other:?}"));
                None
            }
        };
        let store_path = self.string(store, "store", "path").unwrap_or_else(|| "data".into());
        let store_path = self.file(&store_path);
        let cache_capacity = self.int(store, "store", "cache_capacity", 64 * 1024 * 1024, 1, i64::MAX) as u64;
        let store_url = self.string(store, "store", "url");
        if backend == Some(Backend::Postgres) && store_url.is_none() {
            self.error("store.url", "required when store.backend is \"postgres\"");
        }
        let pool_size = self.int(store, "store", "pool_size", 16, 1, 10_000) as usize;
        let connect_timeout = self.secs(store, "store", "connect_timeout", 5);
        let sweep_interval = self.secs(store, "store", "sweep_interval", 60);

        let tokens = self.table(root, "tokens").unwrap_or(&empty);
        let signing_alg = match self.string(tokens, "tokens", "signing_alg") {
            None => Some(SigningAlg::Es256),
            Some(a) => SigningAlg::parse(&a)
                .map_err(|_| self.error("tokens.signing_alg", "must be ES256, EdDSA, RS256, HS256 or HS512"))
                .ok(),
        };
        let access_token_ttl = self.secs(tokens, "tokens", "access_token_ttl", 900);
        let refresh_token_ttl = self.secs(tokens, "tokens", "refresh_token_ttl", 1_209_600);
        let refresh_token_max_lifetime = self.secs(tokens, "tokens", "refresh_token_max_lifetime", 7_776_000);
        let authorization_code_ttl = self.secs(tokens, "tokens", "authorization_code_ttl", 60);
        let leeway = self.int(tokens, "tokens", "leeway", 30, 0, 60) as u64;
        if refresh_token_ttl > refresh_token_max_lifetime {
            self.error("tokens.refresh_token_ttl", "must not be greater than tokens.refresh_token_max_lifetime");
        }
        let audience = self.string(tokens, "tokens", "audience");
        let key = match (self.string(tokens, "tokens", "key_file"), signing_alg) {
            (Some(f), Some(alg)) => self.key_file(&f, alg).map(|k| KeySource::File(Box::new(k))),
            (None, _) => Some(KeySource::Store),
            (Some(_), None) => None,
        };

        let grants_t = self.table(root, "grants").unwrap_or(&empty);
        let mut grants = BTreeSet::new();
        for (g, default) in [
            (GrantType::AuthorizationCode, true),
            (GrantType::RefreshToken, true),
            (GrantType::ClientCredentials, true),
            (GrantType::Password, false),
        ] {
            if self.boolean(grants_t, "grants", g.as_str(), default) {
                grants.insert(g);
            }
        }

        let scope_descriptions = self.string_map(root, "", "scope_descriptions");
        let medmij = self.medmij(root);
        let clients = self.clients(root, &grants, medmij.as_ref());
        let accounts = self.accounts(root);
        if grants.contains(&GrantType::Password) && !clients.iter().any(|c| c.allows(GrantType::Password)) {
            self.warn("grants.password", "the password grant is on, but no client lists it");
        }

        Some(Config {
            audience: audience.or_else(|| issuer.clone())?,
            issuer: issuer?,
            listen: listen?,
            max_connections,
            header_read_timeout,
            body_read_timeout,
            store_timeout,
            trusted_proxies,
            idle_timeout,
            throttle_window,
            max_failures_per_account,
            max_failures_per_ip,
            backend: backend?,
            store_path,
            cache_capacity,
            store_url: store_url.unwrap_or_default(),
            pool_size,
            connect_timeout,
            sweep_interval,
            signing_alg: signing_alg?,
            access_token_ttl,
            refresh_token_ttl,
            refresh_token_max_lifetime,
            authorization_code_ttl,
            leeway,
            key: key?,
            grants,
            clients,
            accounts,
            scope_descriptions,
            medmij,
        })
    }

    fn check_issuer(&mut self, issuer: &str) {
        let Ok(uri) = issuer.parse::<http::Uri>() else {
            return self.error("issuer", "must be an absolute http or https URL");
        };
        let scheme = uri.scheme_str().unwrap_or("");
        if !matches!(scheme, "http" | "https") || uri.host().is_none() || uri.query().is_some() || issuer.contains('#')
        {
            return self.error("issuer", "must be an absolute http or https URL without query or fragment");
        }
        let loopback = matches!(uri.host(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if scheme != "https" && !loopback {
            self.warn("issuer", "is neither https nor loopback: tokens and cookies travel in the clear");
        }
    }

    fn key_file(&mut self, file: &str, alg: SigningAlg) -> Option<SigningKey> {
        let path = self.file(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| self.error("tokens.key_file", format!("cannot read {}: {e}", path.display())))
            .ok()?;
        let key =
            if alg.is_symmetric() { SigningKey::from_secret(alg, &bytes) } else { SigningKey::from_pem(alg, &bytes) };
        key.map_err(|e| self.error("tokens.key_file", e.to_string())).ok()
    }

    fn medmij(&mut self, root: &Table) -> Option<MedmijEntry> {
        let t = self.table(root, "medmij")?;
        let ocl_path = match self.string(t, "medmij", "ocl") {
            Some(p) => self.file(&p),
            None => {
                self.error("medmij.ocl", "is required");
                return None;
            }
        };
        let min_age = self.int(t, "medmij", "min_age", 16, 0, 150) as i16;
        let require_pkce = self.boolean(t, "medmij", "require_pkce", true);
        if !require_pkce {
            self.warn("medmij.require_pkce", "false departs from RFC 9700 2.1.1: OCL clients may skip PKCE");
        }
        let scopes = self.strings(t, "medmij", "scopes").unwrap_or_default();
        let scopes = Scope::from_tokens(&scopes)
            .map_err(|_| self.error("medmij.scopes", "must be scope tokens, each once"))
            .ok();
        let text = std::fs::read_to_string(&ocl_path)
            .map_err(|e| self.error("medmij.ocl", format!("cannot read {}: {e}", ocl_path.display())))
            .ok()?;
        let ocl = Ocl::parse(&text).map_err(|e| self.error("medmij.ocl", e.to_string())).ok()?;
        Some(MedmijEntry { ocl_path, ocl, min_age, require_pkce, scopes: scopes? })
    }

    fn clients(&mut self, root: &Table, grants: &BTreeSet<GrantType>, medmij: Option<&MedmijEntry>) -> Vec<Client> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<String> =
            medmij.map(|m| m.ocl.clients.iter().map(|c| c.hostname.to_string()).collect()).unwrap_or_default();
        let Some(list) = self.get(root, "", "clients", "an array of tables", Value::is_array).and_then(Value::as_array)
        else {
            return out;
        };
        for (i, entry) in list.iter().enumerate() {
            let path = format!("clients[{i}]");
            let Some(t) = entry.as_table() else {
                self.error(path, "must be a table");
                continue;
            };
            self.unknown_keys(t, &path, "clients");
            let id = match self.string(t, &path, "client_id") {
                Some(id) => ClientId::parse(&id)
                    .map_err(|_| self.error(format!("{path}.client_id"), "must be 1 to 255 visible ASCII characters"))
                    .ok(),
                None => {
                    self.error(format!("{path}.client_id"), "is required");
                    None
                }
            };
            if let Some(id) = &id {
                if !seen.insert(id.as_str().to_ascii_lowercase()) {
                    self.error(format!("{path}.client_id"), format!("{id} is defined twice (or is an OCL hostname)"));
                }
            }
            let name = self.string(t, &path, "name");
            let secret = self.string(t, &path, "client_secret_hash").and_then(|h| match check_hash(&h, false) {
                Ok(()) => Some(SecretHash::new(h)),
                Err(e) => {
                    self.error(format!("{path}.client_secret_hash"), e.to_string());
                    None
                }
            });
            let mut redirects = Vec::new();
            for (j, u) in self.strings(t, &path, "redirect_uris").unwrap_or_default().iter().enumerate() {
                match RedirectUri::parse(u) {
                    Ok(r) => redirects.push(r),
                    Err(e) => self.error(format!("{path}.redirect_uris[{j}]"), e.to_string()),
                }
            }
            let mut grant_types = BTreeSet::new();
            let names = self
                .strings(t, &path, "grant_types")
                .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
            for (j, g) in names.iter().enumerate() {
                match GrantType::parse(g) {
                    Ok(g) => {
                        if !grants.contains(&g) {
                            self.warn(
                                format!("{path}.grant_types[{j}]"),
                                format!("{g} is switched off in [grants]; it answers unsupported_grant_type"),
                            );
                        }
                        grant_types.insert(g);
                    }
                    Err(_) => self.error(format!("{path}.grant_types[{j}]"), format!("unknown grant type {g:?}")),
                }
            }
            let scopes = self.strings(t, &path, "scopes").unwrap_or_default();
            let scopes = Scope::from_tokens(&scopes)
                .map_err(|_| self.error(format!("{path}.scopes"), "must be scope tokens, each once"))
                .ok();
            let require_pkce = self.boolean(t, &path, "require_pkce", true);
            let (Some(id), Some(scopes)) = (id, scopes) else { continue };
            let settings = ClientSettings {
                name: name.unwrap_or_else(|| id.to_string()),
                id,
                secret,
                redirect: RedirectPolicy::Registered(redirects),
                grant_types,
                scopes,
                scope_rule: ScopeRule::Subset,
                require_pkce,
            };
            match Client::new(settings) {
                Ok(c) => out.push(c),
                Err(e) => self.error(path, e.to_string()),
            }
        }
        out
    }

    fn accounts(&mut self, root: &Table) -> Vec<AccountEntry> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let Some(list) =
            self.get(root, "", "accounts", "an array of tables", Value::is_array).and_then(Value::as_array)
        else {
            return out;
        };
        for (i, entry) in list.iter().enumerate() {
            let path = format!("accounts[{i}]");
            let Some(t) = entry.as_table() else {
                self.error(path, "must be a table");
                continue;
            };
            self.unknown_keys(t, &path, "accounts");
            let Some(username) = self.string(t, &path, "username").filter(|u| !u.is_empty()) else {
                self.error(format!("{path}.username"), "is required");
                continue;
            };
            if !seen.insert(username.clone()) {
                self.error(format!("{path}.username"), format!("{username:?} is defined twice"));
            }
            let password_hash = self.string(t, &path, "password_hash").and_then(|h| match check_hash(&h, true) {
                Ok(()) => Some(SecretHash::new(h)),
                Err(e) => {
                    self.error(format!("{path}.password_hash"), e.to_string());
                    None
                }
            });
            let disabled = self.boolean(t, &path, "disabled", false);
            let attributes = self.string_map(t, &path, "attributes");
            out.push(AccountEntry { username, password_hash, disabled, attributes });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_lists_every_key_and_only_those() {
        let doc = include_str!("../../../docs/configuration.md");
        let mut documented = BTreeSet::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            documented.insert(line[3..].split('`').next().unwrap_or("").to_owned());
        }
        let mut read = BTreeSet::new();
        for (table, keys) in SCHEMA {
            for key in *keys {
                let nested = SCHEMA.iter().any(|(t, _)| t == key) && table.is_empty() && *key != "scope_descriptions";
                if !nested {
                    read.insert(if table.is_empty() { (*key).to_owned() } else { format!("{table}.{key}") });
                }
            }
        }
        assert_eq!(documented, read, "docs/configuration.md and config::SCHEMA differ");
    }

    #[test]
    fn postgres_needs_a_url_and_takes_the_pool_settings() {
        let read = |text: &str| Config::from_table(&text.parse::<Table>().unwrap(), Path::new("."));
        let missing = read("[store]\nbackend = \"postgres\"\n");
        assert!(missing.config.is_none());
        assert!(missing.errors.iter().any(|p| p.path == "store.url"), "{:?}", missing.errors);
        let ok = read(
            "[store]\nbackend = \"postgres\"\nurl = \"host=/run/postgresql\"\npool_size = 4\nconnect_timeout = 2\n",
        );
        let c = ok.config.unwrap();
        assert_eq!(
            (c.backend, c.store_url.as_str(), c.pool_size, c.connect_timeout),
            (Backend::Postgres, "host=/run/postgresql", 4, 2)
        );
    }

    #[test]
    fn the_sweep_interval_is_whole_seconds_from_one() {
        let read = |text: &str| Config::from_table(&text.parse::<Table>().unwrap(), Path::new("."));
        assert_eq!(read("[store]\nsweep_interval = 5\n").config.unwrap().sweep_interval, 5);
        for bad in ["0", "-1", "\"5\""] {
            let r = read(&format!("[store]\nsweep_interval = {bad}\n"));
            assert!(r.errors.iter().any(|p| p.path == "store.sweep_interval"), "{bad}: {:?}", r.errors);
        }
    }

    #[test]
    fn defaults_are_the_spec_defaults() {
        let c = Config::defaults().config.unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(
            (c.access_token_ttl, c.refresh_token_ttl, c.authorization_code_ttl, c.leeway),
            (900, 1_209_600, 60, 30)
        );
        assert_eq!((c.backend, c.sweep_interval), (Backend::Sled, 60));
        assert!(!c.grants.contains(&GrantType::Password));
        assert_eq!(c.signing_alg, SigningAlg::Es256);
    }
}
