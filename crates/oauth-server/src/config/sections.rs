//! The small tables: `[server]`, `[throttle]`, `[store]`, `[tokens]` and
//! `[grants]`, each read into its own typed section.
//!
//! To add a table: write its struct here (or in a file of its own when it is
//! large), implement [`Section`] for it with its key list and its reading,
//! then add it to `SCHEMA` (in `config/mod.rs`), to the root keys and to
//! [`Config`](super::Config). `docs/configuration.md` must list its keys; a
//! test checks that.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use oauth_core::{GrantType, ThrottleSettings};
use oauth_jwt::{SigningAlg, SigningKey};
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
    ];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let max_connections = keys.size("max_connections", 1024, 1, 1 << 20);
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
    const KEYS: &'static [&'static str] = &["window", "max_failures_per_account", "max_failures_per_ip"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        Some(ThrottleSettings {
            window: keys.duration("window", 900),
            max_failures_per_account: keys.count("max_failures_per_account", 10, 1, u32::MAX),
            max_failures_per_ip: keys.count("max_failures_per_ip", 1000, 1, u32::MAX),
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
    const KEYS: &'static [&'static str] = &["authorization_code", "refresh_token", "client_credentials", "password"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let mut on = BTreeSet::new();
        for (g, default) in [
            (GrantType::AuthorizationCode, true),
            (GrantType::RefreshToken, true),
            (GrantType::ClientCredentials, true),
            // RFC 9700 2.4: the password grant is opt-in.
            (GrantType::Password, false),
        ] {
            if keys.boolean(g.as_str(), default) {
                on.insert(g);
            }
        }
        Some(GrantsSection { on })
    }
}
