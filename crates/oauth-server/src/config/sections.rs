//! The small tables: `[server]`, `[throttle]`, `[store]`, `[tokens]`,
//! `[grants]`, `[admin]`, `[registration]`, `[dpop]`, `[par]`, `[profile]`,
//! `[oidc]` and `[session]`, each read into its own typed section.
//!
//! To add a table: write its struct here (or in a file of its own when it is
//! large), implement [`Section`] for it with its key list and its reading,
//! then add it to `SCHEMA` (in `config/mod.rs`), to the root keys and to
//! [`Config`](super::Config). `docs/configuration.md` must list its keys; a
//! test checks that.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use oauth_core::{GrantType, RegistrationSettings, ResourceUri, Scope, SecretHash, ThrottleSettings};
use oauth_jwt::{SigningAlg, SigningKey};
use oauth_runtime::credentials::check_hash;
use oauth_store_postgres::{Tls, TlsMode};
use oauth_store_sled::Durability;
use time::Duration;

use super::Section;
use super::reader::Keys;

/// `[server]`: the listener's limits and timers.
#[derive(Debug, Clone)]
pub(crate) struct ServerSection {
    /// Connections served at once.
    pub(crate) max_connections: usize,
    /// Connections served at once from one address (trusted proxies exempt).
    pub(crate) max_connections_per_ip: usize,
    /// Time to send a request's headers.
    pub(crate) header_read_timeout: Duration,
    /// Time to send a request's body.
    pub(crate) body_read_timeout: Duration,
    /// Time a request waits for the store to take an operation.
    pub(crate) store_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub(crate) trusted_proxies: Vec<IpAddr>,
    /// Time an idle keep-alive connection stays open.
    pub(crate) idle_timeout: Duration,
}

impl Section for ServerSection {
    const TABLE: &'static str = "server";
    const KEYS: &'static [&'static str] = &[
        "max_connections",
        "header_read_timeout",
        "body_read_timeout",
        "store_timeout",
        "trusted_proxies",
        "idle_timeout",
        "max_connections_per_ip",
    ];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let max_connections = keys.size("max_connections", 1024, 1, 1 << 20);
        let max_connections_per_ip = keys.size("max_connections_per_ip", 256, 1, 1 << 20);
        let header_read_timeout = keys.duration("header_read_timeout", 10);
        let body_read_timeout = keys.duration("body_read_timeout", 30);
        let store_timeout = keys.duration("store_timeout", 5);
        let idle_timeout = keys.duration("idle_timeout", 60);
        let mut trusted_proxies = Vec::new();
        let at = keys.path("trusted_proxies");
        for (i, p) in keys.strings("trusted_proxies").unwrap_or_default().iter().enumerate() {
            match p.parse::<IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => keys.error(at.index(i), "must be an IP address"),
            }
        }
        Some(ServerSection {
            max_connections,
            max_connections_per_ip,
            header_read_timeout,
            body_read_timeout,
            store_timeout,
            trusted_proxies,
            idle_timeout,
        })
    }
}

/// `[throttle]` reads straight into the core's limits.
impl Section for ThrottleSettings {
    const TABLE: &'static str = "throttle";
    const KEYS: &'static [&'static str] = &[
        "window",
        "max_failures_per_account",
        "max_failures_per_account_total",
        "max_failures_per_ip",
        "max_pending_per_ip",
    ];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(ThrottleSettings {
            window: keys.duration("window", 900),
            max_failures_per_account: keys.count("max_failures_per_account", 10, 1, u32::MAX),
            max_failures_per_account_total: keys.count("max_failures_per_account_total", 100, 1, u32::MAX),
            max_failures_per_ip: keys.count("max_failures_per_ip", 1000, 1, u32::MAX),
            max_pending_per_ip: keys.count("max_pending_per_ip", 1000, 1, u32::MAX),
        })
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

/// `[store]`: which backend, and its settings.
#[derive(Debug, Clone)]
pub(crate) struct StoreSection {
    pub(crate) backend: Backend,
    /// The sled directory.
    pub(crate) path: PathBuf,
    /// sled's page cache, bytes.
    pub(crate) cache_capacity: u64,
    /// What an acknowledged sled write survives.
    pub(crate) durability: Durability,
    /// PostgreSQL connection URL (may hold a password: never log it); empty
    /// unless the backend is PostgreSQL.
    pub(crate) url: String,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    /// PostgreSQL's `statement_timeout`.
    pub(crate) statement_timeout: std::time::Duration,
    /// TLS to PostgreSQL.
    pub(crate) tls: Tls,
    /// Time between sweeps of expired records.
    pub(crate) sweep_interval: Duration,
}

impl Section for StoreSection {
    const TABLE: &'static str = "store";
    const KEYS: &'static [&'static str] = &[
        "backend",
        "path",
        "cache_capacity",
        "durability",
        "url",
        "pool_size",
        "connect_timeout",
        "statement_timeout",
        "tls",
        "tls_ca_file",
        "sweep_interval",
    ];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let backend = match keys.string("backend").as_deref() {
            None | Some("sled") => Some(Backend::Sled),
            Some("mem") => Some(Backend::Mem),
            Some("postgres") => Some(Backend::Postgres),
            Some(other) => {
                let at = keys.path("backend");
                keys.error(at, format!("must be \"mem\", \"sled\" or \"postgres\", not {other:?}"));
                None
            }
        };
        let path = keys.file("path").unwrap_or_else(|| keys.resolve("data"));
        let cache_capacity = keys.int("cache_capacity", 64 * 1024 * 1024, 1, i64::MAX).unsigned_abs();
        let durability = match keys.string("durability").as_deref() {
            None | Some("power") => Durability::Power,
            Some("process") => Durability::Process,
            Some(other) => {
                let at = keys.path("durability");
                keys.error(at, format!("must be \"power\" or \"process\", not {other:?}"));
                Durability::Power
            }
        };
        let url = keys.string("url");
        if backend == Some(Backend::Postgres) && url.is_none() {
            let at = keys.path("url");
            keys.error(at, "required when store.backend is \"postgres\"");
        }
        let pool_size = keys.size("pool_size", 16, 1, 10_000);
        let connect_timeout = keys.duration("connect_timeout", 5);
        let statement_timeout = std::time::Duration::from_millis(
            keys.int("statement_timeout", 5000, 1, i64::from(i32::MAX)).unsigned_abs(),
        );
        let tls_mode = match keys.string("tls") {
            None => TlsMode::VerifyFull,
            Some(name) => TlsMode::parse(&name).unwrap_or_else(|| {
                let at = keys.path("tls");
                keys.error(at, format!("must be disable, require, verify-ca or verify-full, not {name:?}"));
                TlsMode::VerifyFull
            }),
        };
        let tls_ca_file = keys.file("tls_ca_file");
        if let Some(f) = tls_ca_file.as_ref().filter(|f| !f.is_file()) {
            let at = keys.path("tls_ca_file");
            keys.error(at, format!("{} is not a readable file", f.display()));
        }
        if backend == Some(Backend::Postgres) && tls_mode == TlsMode::Require {
            let at = keys.path("tls");
            keys.warn(at, "require does not check the database's certificate: use verify-full");
        }
        let sweep_interval = keys.duration("sweep_interval", 60);
        Some(StoreSection {
            backend: backend?,
            path,
            cache_capacity,
            durability,
            url: url.unwrap_or_default(),
            pool_size,
            connect_timeout,
            statement_timeout,
            tls: Tls { mode: tls_mode, ca_file: tls_ca_file },
            sweep_interval,
        })
    }
}

/// Where the signing key comes from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// Generated at first start and kept in the store.
    Store,
    /// The `key_file`, loaded.
    File(Box<SigningKey>),
}

/// `[tokens]`: lifetimes, the signing algorithm and key, the audience.
#[derive(Debug, Clone)]
pub(crate) struct TokensSection {
    pub(crate) signing_alg: SigningAlg,
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    pub(crate) refresh_token_max_lifetime: Duration,
    pub(crate) authorization_code_ttl: Duration,
    /// Clock skew allowed on JWT times; 0 to 60 s.
    pub(crate) leeway: Duration,
    /// The `aud` of access tokens, when not the issuer.
    pub(crate) audience: Option<String>,
    pub(crate) key: KeySource,
    /// Whether a refresh issues a new refresh token.
    pub(crate) refresh_rotation: bool,
    /// Whether `refresh_rotation` was written in the file (FAPI 2.0 overrides
    /// it, and says so).
    pub(crate) refresh_rotation_set: bool,
    /// How long a rotated refresh token may be presented once more.
    pub(crate) refresh_reuse_grace: Duration,
}

impl Section for TokensSection {
    const TABLE: &'static str = "tokens";
    const KEYS: &'static [&'static str] = &[
        "signing_alg",
        "access_token_ttl",
        "refresh_token_ttl",
        "refresh_token_max_lifetime",
        "authorization_code_ttl",
        "leeway",
        "audience",
        "key_file",
        "refresh_rotation",
        "refresh_reuse_grace",
    ];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let signing_alg = match keys.string("signing_alg") {
            None => Some(SigningAlg::Es256),
            Some(a) => SigningAlg::parse(&a)
                .map_err(|_| {
                    let at = keys.path("signing_alg");
                    keys.error(at, "must be ES256, EdDSA, RS256, HS256 or HS512");
                })
                .ok(),
        };
        let access_token_ttl = keys.duration("access_token_ttl", 900);
        let refresh_token_ttl = keys.duration("refresh_token_ttl", 1_209_600);
        let refresh_token_max_lifetime = keys.duration("refresh_token_max_lifetime", 7_776_000);
        let authorization_code_ttl = keys.duration("authorization_code_ttl", 60);
        let leeway = keys.duration_within("leeway", 30, 0, 60);
        if refresh_token_ttl > refresh_token_max_lifetime {
            let at = keys.path("refresh_token_ttl");
            keys.error(at, "must not be greater than tokens.refresh_token_max_lifetime");
        }
        let audience = keys.string("audience");
        let refresh_rotation_set = keys.has("refresh_rotation");
        let refresh_rotation = keys.boolean("refresh_rotation", true);
        let refresh_reuse_grace = keys.duration_within("refresh_reuse_grace", 0, 0, i64::MAX);
        if !refresh_rotation && refresh_reuse_grace.is_positive() {
            let at = keys.path("refresh_reuse_grace");
            keys.warn(at, "has no effect when tokens.refresh_rotation is false");
        }
        let key = match (keys.file("key_file"), signing_alg) {
            (Some(f), Some(alg)) => key_file(keys, &f, alg).map(|k| KeySource::File(Box::new(k))),
            (None, _) => Some(KeySource::Store),
            (Some(_), None) => None,
        };
        Some(TokensSection {
            signing_alg: signing_alg?,
            access_token_ttl,
            refresh_token_ttl,
            refresh_token_max_lifetime,
            authorization_code_ttl,
            leeway,
            audience,
            key: key?,
            refresh_rotation,
            refresh_rotation_set,
            refresh_reuse_grace,
        })
    }
}

fn key_file(keys: &mut Keys<'_, '_>, path: &std::path::Path, alg: SigningAlg) -> Option<SigningKey> {
    let at = keys.path("key_file");
    let bytes =
        std::fs::read(path).map_err(|e| keys.error(at.clone(), format!("cannot read {}: {e}", path.display()))).ok()?;
    let key = if alg.is_symmetric() { SigningKey::from_secret(alg, &bytes) } else { SigningKey::from_pem(alg, &bytes) };
    key.map_err(|e| keys.error(at, e.to_string())).ok()
}

/// `[grants]`: the server-wide switches.
#[derive(Debug, Clone)]
pub(crate) struct GrantsSection {
    /// The grant types switched on.
    pub(crate) on: BTreeSet<GrantType>,
}

impl Section for GrantsSection {
    const TABLE: &'static str = "grants";
    const KEYS: &'static [&'static str] =
        &["authorization_code", "refresh_token", "client_credentials", "password", "device_code"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let mut on = BTreeSet::new();
        for (g, key, default) in [
            (GrantType::AuthorizationCode, "authorization_code", true),
            (GrantType::RefreshToken, "refresh_token", true),
            (GrantType::ClientCredentials, "client_credentials", true),
            // RFC 9700 2.4: the password grant is opt-in.
            (GrantType::Password, "password", false),
            // RFC 8628; its wire name is a URN, its key the short name.
            (GrantType::DeviceCode, "device_code", true),
        ] {
            if keys.boolean(key, default) {
                on.insert(g);
            }
        }
        Some(GrantsSection { on })
    }
}

/// `[admin]`: the admin API's listener and its token. Off when the table is
/// absent.
#[derive(Debug, Clone)]
pub(crate) struct AdminSection {
    /// Where the admin API listens; never the public listener's address.
    pub(crate) listen: SocketAddr,
    /// The `$sha256$` hash of the admin bearer token.
    pub(crate) token_hash: SecretHash,
    /// Where `POST /admin/backup` writes its copies of a sled store.
    pub(crate) backup_dir: Option<PathBuf>,
}

impl Section for AdminSection {
    const TABLE: &'static str = "admin";
    const KEYS: &'static [&'static str] = &["listen", "token_hash", "backup_dir"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let at = keys.path("listen");
        let listen = keys.required_string("listen").and_then(|s| {
            s.parse::<SocketAddr>().map_err(|_| keys.error(at, "must be an address such as 127.0.0.1:8081")).ok()
        });
        let at = keys.path("token_hash");
        let token_hash = keys.required_string("token_hash").and_then(|h| {
            // The token is machine-generated (`gen-secret`): a fast hash suffices,
            // and Argon2id would cost every admin call a slow verification.
            if !h.starts_with("$sha256$") {
                keys.error(at, "must be a $sha256$ hash (oauth-server gen-secret, or hash-secret --sha256)");
                return None;
            }
            match check_hash(&h, false) {
                Ok(()) => Some(SecretHash::new(h)),
                Err(e) => {
                    keys.error(at, e.to_string());
                    None
                }
            }
        });
        if let Some(l) = &listen {
            if !l.ip().is_loopback() {
                let at = keys.path("listen");
                keys.warn(at, "is not loopback: put the admin API on a private network only");
            }
        }
        let backup_dir = keys.file("backup_dir");
        Some(AdminSection { listen: listen?, token_hash: token_hash?, backup_dir })
    }
}

/// `[registration]`: dynamic client registration (RFC 7591), off by default.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationSection {
    pub(crate) settings: RegistrationSettings,
}

impl Section for RegistrationSection {
    const TABLE: &'static str = "registration";
    const KEYS: &'static [&'static str] =
        &["enabled", "initial_access_token_hash", "scopes", "resources", "max_per_ip", "window", "max_clients"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let mut settings = RegistrationSettings { enabled: keys.boolean("enabled", false), ..Default::default() };
        let at = keys.path("initial_access_token_hash");
        if let Some(h) = keys.string("initial_access_token_hash") {
            match check_hash(&h, false) {
                Ok(()) if h.starts_with("$sha256$") => settings.initial_access_token = Some(SecretHash::new(h)),
                Ok(()) => keys.error(at, "must be a $sha256$ hash (oauth-server gen-secret)"),
                Err(e) => keys.error(at, e.to_string()),
            }
        }
        if let Some(scopes) = keys.strings("scopes") {
            match Scope::from_tokens(&scopes) {
                Ok(s) => settings.scopes = s,
                Err(_) => {
                    let at = keys.path("scopes");
                    keys.error(at, "must be scope tokens, each once");
                }
            }
        }
        if let Some(list) = keys.strings("resources") {
            let at = keys.path("resources");
            let mut set = BTreeSet::new();
            for (i, r) in list.iter().enumerate() {
                match ResourceUri::parse(r) {
                    Ok(r) => {
                        set.insert(r);
                    }
                    Err(e) => keys.error(at.index(i), e.description()),
                }
            }
            settings.resources = Some(set);
        }
        settings.max_per_ip = keys.count("max_per_ip", 10, 1, 1_000_000);
        settings.window = keys.duration_within("window", 3600, 1, 86_400 * 7);
        settings.max_clients = u64::try_from(keys.int("max_clients", 10_000, 1, 10_000_000)).unwrap_or(10_000);
        Some(RegistrationSection { settings })
    }
}

/// `[dpop]`: how DPoP proofs (RFC 9449) are accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DpopSection {
    /// How long after its `iat` a proof is accepted.
    pub(crate) max_age: Duration,
    /// Whether proofs at `/token` and `/par` must carry the server's nonce.
    pub(crate) require_nonce: bool,
}

impl Section for DpopSection {
    const TABLE: &'static str = "dpop";
    const KEYS: &'static [&'static str] = &["max_age", "require_nonce"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        // A proof's replay record lives this long: a day is far beyond any
        // sane clock and network delay, and keeps the cache small.
        let max_age = keys.duration_within("max_age", 60, 1, 86_400);
        let require_nonce = keys.boolean("require_nonce", false);
        Some(DpopSection { max_age, require_nonce })
    }
}

/// `[device]`: the device authorization grant (RFC 8628).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceSection {
    /// How long a device code and its user code work (`expires_in`).
    pub(crate) code_ttl: Duration,
    /// The least time between polls (`interval`).
    pub(crate) interval: Duration,
}

impl Section for DeviceSection {
    const TABLE: &'static str = "device";
    const KEYS: &'static [&'static str] = &["code_ttl", "interval"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        // An hour bounds how long a user code is guessable; a poll interval
        // of a second at least keeps `slow_down` meaningful.
        let code_ttl = keys.duration_within("code_ttl", 600, 10, 3600);
        let interval = keys.duration_within("interval", 5, 1, 60);
        Some(DeviceSection { code_ttl, interval })
    }
}

/// `[par]`: pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParSection {
    /// Whether every client must push its authorization requests.
    pub(crate) require_pushed_authorization_requests: bool,
}

impl Section for ParSection {
    const TABLE: &'static str = "par";
    const KEYS: &'static [&'static str] = &["require_pushed_authorization_requests"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(ParSection {
            require_pushed_authorization_requests: keys.boolean("require_pushed_authorization_requests", false),
        })
    }
}

/// `[profile]`: security profiles that override other settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProfileSection {
    /// The FAPI 2.0 Security Profile.
    pub(crate) fapi2: bool,
}

impl Section for ProfileSection {
    const TABLE: &'static str = "profile";
    const KEYS: &'static [&'static str] = &["fapi2"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(ProfileSection { fapi2: keys.boolean("fapi2", false) })
    }
}

/// `[oidc]`: OpenID Connect.
#[derive(Debug, Clone)]
pub(crate) struct OidcSection {
    /// Lifetime of an ID token.
    pub(crate) id_token_ttl: Duration,
}

impl Section for OidcSection {
    const TABLE: &'static str = "oidc";
    const KEYS: &'static [&'static str] = &["id_token_ttl"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(OidcSection { id_token_ttl: keys.duration("id_token_ttl", 3600) })
    }
}

/// `[session]`: single sign-on's browser sessions and remembered consents.
#[derive(Debug, Clone)]
pub(crate) struct SessionSection {
    /// How long a browser session lasts from its login.
    pub(crate) lifetime: Duration,
    /// How long a browser session lasts from its last use.
    pub(crate) idle_timeout: Duration,
    /// How long a remembered consent lasts.
    pub(crate) consent_lifetime: Duration,
}

impl Section for SessionSection {
    const TABLE: &'static str = "session";
    const KEYS: &'static [&'static str] = &["lifetime", "idle_timeout", "consent_lifetime"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(SessionSection {
            lifetime: keys.duration("lifetime", 36_000),
            idle_timeout: keys.duration("idle_timeout", 1800),
            consent_lifetime: keys.duration("consent_lifetime", 31_536_000),
        })
    }
}
