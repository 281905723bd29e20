//! The configuration file: reading, checking, and the typed result.
//!
//! The file is read as a TOML table and walked key by key ([`reader`]), so
//! that one run reports every problem with its key path (unknown keys in
//! several tables, wrong types, bad values), which `serde(deny_unknown_fields)`
//! cannot: it stops at the first. Each table is read into its own typed
//! section (durations as [`time::Duration`]); `SCHEMA` lists every key, and
//! the configuration reference in `docs/configuration.md` is checked against
//! it by a test.
//!
//! To add a table, see [`sections`].

mod clients;
mod medmij;
mod reader;
mod sections;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use oauth_core::{Client, DpopSettings, Settings, ThrottleSettings};
use oauth_http::HttpConfig;
use toml::Table;

pub(crate) use clients::AccountEntry;
pub(crate) use medmij::MedmijSection;
use reader::{Keys, Reader};
pub(crate) use sections::{
    AdminSection, Backend, DeviceSection, DpopSection, GrantsSection, KeySource, OidcSection, ParSection,
    ProfileSection, RegistrationSection, ServerSection, SessionSection, StoreSection, TokensSection,
};

/// Exit code for bad usage or configuration.
pub(crate) const USAGE: u8 = 2;

/// A table of the file, read into its own typed section.
trait Section: Sized {
    /// The table's name.
    const TABLE: &'static str;
    /// Every key the table may hold; any other is an error.
    const KEYS: &'static [&'static str];
    /// Reads the table, recording every problem; `None` when a value the
    /// section cannot do without is bad (its error is recorded).
    fn read(keys: &mut Keys<'_, '_>) -> Option<Self>;
}

/// The keys of the top level: two values and every table.
const ROOT_KEYS: &[&str] = &[
    "issuer",
    "listen",
    ServerSection::TABLE,
    ThrottleSettings::TABLE,
    StoreSection::TABLE,
    TokensSection::TABLE,
    GrantsSection::TABLE,
    AdminSection::TABLE,
    RegistrationSection::TABLE,
    "resources",
    DpopSection::TABLE,
    DeviceSection::TABLE,
    ParSection::TABLE,
    ProfileSection::TABLE,
    OidcSection::TABLE,
    SessionSection::TABLE,
    "clients",
    "accounts",
    "scope_descriptions",
    MedmijSection::TABLE,
];

/// Every table and its keys; `[[clients]]` and `[[accounts]]` are arrays of
/// tables, and `scope_descriptions` a free-form table of strings (with a
/// free-form `nl` table of Dutch ones). The
/// configuration reference must list exactly these. Only that test needs the
/// whole list: the reader takes each table's keys from its section.
#[cfg(test)]
const SCHEMA: &[(&str, &[&str])] = &[
    ("", ROOT_KEYS),
    (ServerSection::TABLE, ServerSection::KEYS),
    (ThrottleSettings::TABLE, ThrottleSettings::KEYS),
    (StoreSection::TABLE, StoreSection::KEYS),
    (TokensSection::TABLE, TokensSection::KEYS),
    (GrantsSection::TABLE, GrantsSection::KEYS),
    (AdminSection::TABLE, AdminSection::KEYS),
    (RegistrationSection::TABLE, RegistrationSection::KEYS),
    ("resources", clients::RESOURCE_KEYS),
    (DpopSection::TABLE, DpopSection::KEYS),
    (DeviceSection::TABLE, DeviceSection::KEYS),
    (ParSection::TABLE, ParSection::KEYS),
    (ProfileSection::TABLE, ProfileSection::KEYS),
    (OidcSection::TABLE, OidcSection::KEYS),
    (SessionSection::TABLE, SessionSection::KEYS),
    ("clients", clients::CLIENT_KEYS),
    ("accounts", clients::ACCOUNT_KEYS),
    (MedmijSection::TABLE, MedmijSection::KEYS),
];

/// Where a key sits in the file, as `clients[1].redirect_uris[0]` (indexes
/// from 0); empty for the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(String);

impl KeyPath {
    /// The file itself.
    pub(crate) fn root() -> Self {
        KeyPath::default()
    }

    /// The key `key` of the table at this path.
    pub(crate) fn key(&self, key: &str) -> Self {
        if self.0.is_empty() { KeyPath(key.to_owned()) } else { KeyPath(format!("{}.{key}", self.0)) }
    }

    /// Entry `i` of the array at this path.
    pub(crate) fn index(&self, i: usize) -> Self {
        KeyPath(format!("{}[{i}]", self.0))
    }

    /// The path as written in messages.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem in a configuration (an error, or a warning that lets the
/// server run), with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The offending key itself, not only its table.
    pub(crate) key: KeyPath,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl ConfigError {
    pub(crate) fn new(key: KeyPath, message: impl Into<String>) -> Self {
        ConfigError { key, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.as_str().is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) issuer: String,
    pub(crate) listen: SocketAddr,
    pub(crate) server: ServerSection,
    pub(crate) throttle: ThrottleSettings,
    pub(crate) store: StoreSection,
    pub(crate) tokens: TokensSection,
    pub(crate) grants: GrantsSection,
    pub(crate) admin: Option<AdminSection>,
    pub(crate) registration: oauth_core::RegistrationSettings,
    pub(crate) resources: BTreeMap<oauth_core::ResourceUri, oauth_core::Scope>,
    pub(crate) dpop: DpopSection,
    pub(crate) device: DeviceSection,
    pub(crate) par: ParSection,
    pub(crate) profile: ProfileSection,
    pub(crate) oidc: OidcSection,
    pub(crate) session: SessionSection,
    pub(crate) clients: Vec<Client>,
    pub(crate) accounts: Vec<AccountEntry>,
    pub(crate) scope_descriptions: BTreeMap<String, String>,
    pub(crate) scope_descriptions_nl: BTreeMap<String, String>,
    pub(crate) medmij: Option<MedmijSection>,
}

/// The outcome of reading a configuration.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The configuration, when there were no errors.
    pub(crate) config: Option<Config>,
    /// Every error found.
    pub(crate) errors: Vec<ConfigError>,
    /// Every warning found.
    pub(crate) warnings: Vec<ConfigError>,
}

impl Loaded {
    /// Prints the warnings and errors to stderr; the configuration when there
    /// were no errors, else the exit code for a bad configuration.
    pub(crate) fn report(self) -> Result<Config, ExitCode> {
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
        for e in &self.errors {
            eprintln!("error: {e}");
        }
        self.config.ok_or(ExitCode::from(USAGE))
    }
}

impl Config {
    /// The built-in defaults: sled in `./data`, `127.0.0.1:8080`, no clients.
    pub(crate) fn defaults() -> Loaded {
        Self::from_table(Table::new(), Path::new("."), &|_| Err(std::env::VarError::NotPresent))
    }

    /// Reads and checks the file at `path`; relative paths in it resolve
    /// against its folder.
    pub(crate) fn load(path: &Path) -> Loaded {
        let fail = |message: String| Loaded {
            config: None,
            errors: vec![ConfigError::new(KeyPath::root(), message)],
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
        Self::from_table(table, dir, &|name| std::env::var(name))
    }

    /// Reads `root` after replacing its `"${NAME}"` values from `env`.
    fn from_table(mut root: Table, dir: &Path, env: &dyn Fn(&str) -> Result<String, std::env::VarError>) -> Loaded {
        let mut reader = Reader::new(dir);
        reader.substitute_env(&mut root, env);
        let config = read(&mut reader, &root);
        let config = if reader.errors.is_empty() { config } else { None };
        Loaded { config, errors: reader.errors, warnings: reader.warnings }
    }

    /// The `aud` of access tokens: `tokens.audience`, else the issuer.
    pub(crate) fn audience(&self) -> &str {
        self.tokens.audience.as_deref().unwrap_or(&self.issuer)
    }

    /// The core's settings: lifetimes, grants, throttle limits, DPoP, PAR,
    /// the refresh options and the FAPI 2.0 switch.
    pub(crate) fn settings(&self) -> Settings {
        let mut settings = Settings::new(self.issuer.clone());
        settings.audience = self.audience().to_owned();
        settings.access_token_ttl = self.tokens.access_token_ttl;
        settings.refresh_token_ttl = self.tokens.refresh_token_ttl;
        settings.refresh_token_max_lifetime = self.tokens.refresh_token_max_lifetime;
        settings.authorization_code_ttl = self.tokens.authorization_code_ttl;
        settings.id_token_ttl = self.oidc.id_token_ttl;
        settings.browser_session_lifetime = self.session.lifetime;
        settings.browser_session_idle = self.session.idle_timeout;
        settings.consent_lifetime = self.session.consent_lifetime;
        settings.grants = self.grants.on.clone();
        settings.device_code_ttl = self.device.code_ttl;
        settings.device_interval = self.device.interval;
        settings.throttle = self.throttle;
        settings.registration = self.registration.clone();
        settings.resources = self.resources.clone();
        settings.leeway = self.tokens.leeway;
        settings.dpop = DpopSettings { max_age: self.dpop.max_age, require_nonce: self.dpop.require_nonce };
        settings.require_pushed_authorization_requests = self.par.require_pushed_authorization_requests;
        settings.refresh_rotation = self.tokens.refresh_rotation;
        settings.refresh_reuse_grace = self.tokens.refresh_reuse_grace;
        settings.fapi2 = self.profile.fapi2;
        // RFC 7523 3: the issuer, and the token endpoint's URL (RFC 9126 2
        // adds the PAR endpoint's): the endpoints of the SPEC's table.
        let base = self.issuer.trim_end_matches('/');
        settings.assertion_audiences = vec![self.issuer.clone(), format!("{base}/token"), format!("{base}/par")];
        settings
    }

    /// How long a throttle counter is kept: the longer of its two windows,
    /// the throttle's and the session lifetime that bounds pending sessions.
    pub(crate) fn counted_for(&self) -> time::Duration {
        let settings = self.settings();
        settings.throttle.window.max(settings.session_ttl)
    }

    /// The front end's settings: the listener's limits and the consent page's
    /// words.
    pub(crate) fn http(&self) -> HttpConfig {
        let s = &self.server;
        HttpConfig {
            max_connections: s.max_connections,
            max_connections_per_ip: s.max_connections_per_ip,
            header_read_timeout: std_duration(s.header_read_timeout),
            body_read_timeout: std_duration(s.body_read_timeout),
            idle_timeout: std_duration(s.idle_timeout),
            trusted_proxies: s.trusted_proxies.clone(),
            scope_descriptions: self.scope_descriptions.clone(),
            scope_descriptions_nl: self.scope_descriptions_nl.clone(),
        }
    }
}

/// A configured duration for the standard library's timers. Every configured
/// duration is at least 0, so nothing is lost.
pub(crate) fn std_duration(d: time::Duration) -> std::time::Duration {
    d.unsigned_abs()
}

/// Reads the whole file: the top-level values, each section, then the
/// clients and accounts, which are checked against the sections.
fn read(reader: &mut Reader, root: &Table) -> Option<Config> {
    let mut top = reader.keys(root, KeyPath::root(), ROOT_KEYS);
    let listen = match top.string("listen") {
        Some(s) => s
            .parse::<SocketAddr>()
            .map_err(|_| top.error(KeyPath::root().key("listen"), "must be an address such as 127.0.0.1:8080"))
            .ok(),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    let issuer = top.string("issuer").or_else(|| listen.map(|l| format!("http://{l}")));
    if let Some(i) = &issuer {
        check_issuer(&mut top, i, listen);
    }
    let (scope_descriptions, scope_descriptions_nl) = top.scope_descriptions("scope_descriptions");

    let server = reader.section::<ServerSection>(root);
    let throttle = reader.section::<ThrottleSettings>(root);
    let store = reader.section::<StoreSection>(root);
    let tokens = reader.section::<TokensSection>(root);
    let grants = reader.section::<GrantsSection>(root)?;
    let dpop = reader.section::<DpopSection>(root);
    let device = reader.section::<DeviceSection>(root);
    let par = reader.section::<ParSection>(root);
    let profile = reader.section::<ProfileSection>(root);
    let oidc = reader.section::<OidcSection>(root);
    let session = reader.section::<SessionSection>(root);
    let medmij = reader.optional_section::<MedmijSection>(root);
    let admin = reader.optional_section::<AdminSection>(root);
    let registration = reader.section::<RegistrationSection>(root);
    let resources = clients::resources(reader, root);
    if let (Some(a), Some(l)) = (&admin, listen) {
        if a.listen == l {
            let at = KeyPath::root().key(AdminSection::TABLE).key("listen");
            reader
                .errors
                .push(ConfigError::new(at, "must differ from listen: the public listener never serves /admin"));
        }
    }
    let fapi2 = profile.is_some_and(|p| p.fapi2);
    let signing_alg = tokens.as_ref().map(|t| t.signing_alg);
    let clients = clients::clients(reader, root, &grants.on, medmij.as_ref(), &resources, fapi2, signing_alg);
    if fapi2 {
        let open_registration =
            registration.as_ref().is_some_and(|r| r.settings.enabled && r.settings.initial_access_token.is_none());
        check_fapi2(reader, tokens.as_ref(), medmij.is_some(), open_registration);
    }
    let accounts = clients::accounts(reader, root);
    if grants.on.contains(&oauth_core::GrantType::Password)
        && !clients.iter().any(|c| c.allows(oauth_core::GrantType::Password))
    {
        reader.warnings.push(ConfigError::new(
            KeyPath::root().key("grants").key("password"),
            "the password grant is on, but no client lists it",
        ));
    }

    Some(Config {
        issuer: issuer?,
        listen: listen?,
        server: server?,
        throttle: throttle?,
        store: store?,
        tokens: tokens?,
        grants,
        admin,
        registration: registration?.settings,
        resources,
        dpop: dpop?,
        device: device?,
        par: par?,
        profile: profile?,
        oidc: oidc?,
        session: session?,
        clients,
        accounts,
        scope_descriptions,
        scope_descriptions_nl,
        medmij,
    })
}

/// What `[profile] fapi2` cannot turn on by itself is an error (FAPI 2.0
/// Security Profile 5.4.1, 5.3.2.1): a signing algorithm other than ES256 or
/// EdDSA, and codes that live over 60 s. Public and secret clients are
/// refused where each is read, and the MedMij profile's OCL clients are all
/// public, as are the clients of open registration (no initial access token),
/// which the profile would then refuse one by one. What it does turn on,
/// whatever the other keys say (PAR, PKCE, DPoP, no refresh rotation), gives
/// a warning where a key says otherwise.
fn check_fapi2(reader: &mut Reader, tokens: Option<&TokensSection>, medmij: bool, open_registration: bool) {
    let tokens_at = KeyPath::root().key(TokensSection::TABLE);
    if let Some(t) = tokens {
        if !matches!(t.signing_alg, oauth_jwt::SigningAlg::Es256 | oauth_jwt::SigningAlg::EdDsa) {
            let message = "FAPI 2.0 ([profile] fapi2) signs with ES256 or EdDSA only";
            reader.errors.push(ConfigError::new(tokens_at.key("signing_alg"), message));
        }
        if t.authorization_code_ttl > time::Duration::seconds(60) {
            let message = "FAPI 2.0 ([profile] fapi2) allows codes of at most 60 s";
            reader.errors.push(ConfigError::new(tokens_at.key("authorization_code_ttl"), message));
        }
        if t.refresh_rotation && t.refresh_rotation_set {
            let message = "is ignored: FAPI 2.0 ([profile] fapi2) turns refresh rotation off";
            reader.warnings.push(ConfigError::new(tokens_at.key("refresh_rotation"), message));
        }
    }
    if medmij {
        let message = "FAPI 2.0 ([profile] fapi2) allows no public clients, and every OCL client is one";
        reader.errors.push(ConfigError::new(KeyPath::root().key(MedmijSection::TABLE), message));
    }
    if open_registration {
        let message = "FAPI 2.0 ([profile] fapi2) allows no public clients, and open registration creates only \
                       public ones: set initial_access_token_hash";
        let at = KeyPath::root().key(RegistrationSection::TABLE).key("enabled");
        reader.errors.push(ConfigError::new(at, message));
    }
}

fn check_issuer(top: &mut Keys<'_, '_>, issuer: &str, listen: Option<SocketAddr>) {
    let at = top.path("issuer");
    let Ok(uri) = issuer.parse::<http::Uri>() else {
        return top.error(at, "must be an absolute http or https URL");
    };
    let scheme = uri.scheme_str().unwrap_or("");
    if !matches!(scheme, "http" | "https") || uri.host().is_none() || uri.query().is_some() || issuer.contains('#') {
        return top.error(at, "must be an absolute http or https URL without query or fragment");
    }
    let loopback = matches!(uri.host(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if scheme != "https" && !loopback {
        top.warn(at.clone(), "is neither https nor loopback: tokens and cookies travel in the clear");
    }
    // A loopback issuer is this server itself, with no proxy in between: its
    // port must be the one it listens on, or every URL in the metadata points
    // where nothing answers. (Behind a proxy the ports differ on purpose.)
    let issuer_port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    if let Some(listen) = listen.filter(|l| loopback && l.port() != issuer_port) {
        top.warn(
            at,
            format!(
                "is on port {issuer_port} but listen is on port {}: every endpoint URL in the metadata \
                 uses the issuer's port; change issuer and listen together",
                listen.port()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use oauth_core::GrantType;
    use oauth_jwt::SigningAlg;

    use super::*;

    fn no_env(_: &str) -> Result<String, std::env::VarError> {
        Err(std::env::VarError::NotPresent)
    }

    fn read_with(text: &str, vars: &[(&str, &str)]) -> Loaded {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let env = move |name: &str| vars.get(name).cloned().ok_or(std::env::VarError::NotPresent);
        Config::from_table(text.parse::<Table>().unwrap(), Path::new("."), &env)
    }

    fn messages(problems: &[ConfigError]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_openid_and_single_sign_on_keys_are_read_into_the_settings_and_clients() {
        let loaded = read_with(
            "[oidc]\nid_token_ttl = 600\n[session]\nlifetime = 7200\nidle_timeout = 300\nconsent_lifetime = 86400\n\
             [[clients]]\nclient_id = \"rp\"\nredirect_uris = [\"https://rp.example/cb\"]\n\
             post_logout_redirect_uris = [\"https://rp.example/bye\"]\nscopes = [\"openid\"]\n\
             id_token_signed_response_alg = \"ES256\"\nskip_consent = true\n\
             [scope_descriptions]\nopenid = \"Sign you in\"\n[scope_descriptions.nl]\nopenid = \"U aanmelden\"\n",
            &[],
        );
        assert!(loaded.errors.is_empty(), "{:?}", messages(&loaded.errors));
        let c = loaded.config.unwrap();
        let settings = c.settings();
        assert_eq!(settings.id_token_ttl, time::Duration::seconds(600));
        assert_eq!(settings.browser_session_lifetime, time::Duration::seconds(7200));
        assert_eq!(settings.browser_session_idle, time::Duration::seconds(300));
        assert_eq!(settings.consent_lifetime, time::Duration::days(1));
        let rp = &c.clients[0];
        assert!(rp.post_logout_redirect_uri("https://rp.example/bye").is_some());
        assert_eq!(rp.id_token_alg(), oauth_core::IdTokenAlg::ServerAlg);
        assert_eq!(rp.consent(), oauth_core::ConsentRule::Skip);
        let http = c.http();
        assert_eq!(http.scope_descriptions_nl.get("openid").map(String::as_str), Some("U aanmelden"));
        assert_eq!(http.scope_descriptions.get("openid").map(String::as_str), Some("Sign you in"));
        assert!(!http.scope_descriptions.contains_key("nl"), "the Dutch table is not a scope");
    }

    #[test]
    fn openid_client_keys_name_the_offending_key() {
        let loaded = read_with(
            "[tokens]\nsigning_alg = \"HS256\"\nkey_file = \"k\"\n\
             [[clients]]\nclient_id = \"rp\"\nredirect_uris = [\"https://rp.example/cb\"]\n\
             post_logout_redirect_uris = [\"not a uri\"]\nid_token_signed_response_alg = \"HS256\"\n\
             [scope_descriptions.nl]\nread = 1\n",
            &[],
        );
        let keys: Vec<&str> = loaded.errors.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "clients[0].post_logout_redirect_uris[0]",
            "clients[0].id_token_signed_response_alg",
            "scope_descriptions.nl.read",
        ] {
            assert!(keys.contains(&key), "{key} in {:?}", messages(&loaded.errors));
        }
    }

    #[test]
    fn whole_string_values_naming_a_variable_are_read_from_the_environment() {
        let hash = "$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2";
        let loaded = read_with(
            "[store]\nbackend = \"postgres\"\nurl = \"${PG_URL}\"\n\
             [[clients]]\nclient_id = \"svc\"\nclient_secret_hash = \"${SVC_HASH}\"\n\
             grant_types = [\"client_credentials\"]\nscopes = [\"${SCOPE}\"]\n",
            &[("PG_URL", "postgres://oauth:p%40ss@db/oauth"), ("SVC_HASH", hash), ("SCOPE", "read")],
        );
        assert!(loaded.errors.is_empty(), "{:?}", messages(&loaded.errors));
        let c = loaded.config.unwrap();
        assert_eq!(c.store.url, "postgres://oauth:p%40ss@db/oauth");
        assert_eq!(c.clients[0].secret().map(|h| h.as_str()), Some(hash));
        assert_eq!(c.clients[0].scopes().to_string(), "read");
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_the_key_and_the_variable() {
        let loaded = read_with(
            "[store]\nbackend = \"postgres\"\nurl = \"${PG_URL}\"\n\
             [[clients]]\nclient_id = \"svc\"\nclient_secret_hash = \"${SVC_HASH}\"\n\
             grant_types = [\"client_credentials\"]\n",
            &[],
        );
        assert!(loaded.config.is_none());
        let errors = messages(&loaded.errors);
        for expected in [
            "store.url: the environment variable PG_URL is not set",
            "clients[0].client_secret_hash: the environment variable SVC_HASH is not set",
        ] {
            assert!(errors.iter().any(|e| e == expected), "missing {expected:?} in {errors:?}");
        }
    }

    #[test]
    fn only_whole_values_with_a_valid_name_are_substituted() {
        let loaded = read_with(
            "issuer = \"http://127.0.0.1:${PORT}\"\n[store]\npath = \"${1DIR}\"\ncache_capacity = 5\n\
             [scope_descriptions]\nread = \"${}\"\n",
            &[("PORT", "8080"), ("1DIR", "x")],
        );
        let errors = messages(&loaded.errors);
        assert!(errors.iter().any(|e| e.starts_with("issuer: holds \"${\" inside a longer value")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("store.path: \"${1DIR}\" is not an environment")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("scope_descriptions.read: \"${}\" is not")), "{errors:?}");
        // Values without "${" are left alone, "$" included (hashes start with it).
        let plain = read_with("[store]\npath = \"$data\"\n", &[]);
        assert!(plain.errors.is_empty(), "{:?}", messages(&plain.errors));
    }

    #[test]
    fn a_loopback_issuer_on_another_port_than_listen_is_a_warning() {
        let warned = |text: &str| {
            let loaded = read_with(text, &[]);
            assert!(loaded.errors.is_empty(), "{:?}", messages(&loaded.errors));
            messages(&loaded.warnings).into_iter().filter(|w| w.contains("listen is on port")).collect::<Vec<_>>()
        };
        let moved = warned("issuer = \"http://127.0.0.1:8080\"\nlisten = \"127.0.0.1:9090\"\n");
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(moved[0].starts_with("issuer: is on port 8080 but listen is on port 9090"), "{moved:?}");
        assert_eq!(warned("issuer = \"http://localhost\"\nlisten = \"127.0.0.1:8080\"\n").len(), 1);
        assert!(warned("issuer = \"http://127.0.0.1:9090\"\nlisten = \"0.0.0.0:9090\"\n").is_empty());
        assert!(warned("listen = \"127.0.0.1:9090\"\n").is_empty(), "the derived issuer follows listen");
        // Behind a proxy the public port differs on purpose.
        assert!(warned("issuer = \"https://auth.example.com\"\nlisten = \"127.0.0.1:8080\"\n").is_empty());
    }

    #[test]
    fn the_reference_lists_every_key_and_only_those() {
        let doc = include_str!("../../../../docs/configuration.md");
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
        let read = |text: &str| Config::from_table(text.parse::<Table>().unwrap(), Path::new("."), &no_env);
        let missing = read("[store]\nbackend = \"postgres\"\n");
        assert!(missing.config.is_none());
        assert!(missing.errors.iter().any(|p| p.key.as_str() == "store.url"), "{:?}", missing.errors);
        let ok = read(
            "[store]\nbackend = \"postgres\"\nurl = \"host=/run/postgresql\"\npool_size = 4\nconnect_timeout = 2\n",
        );
        let c = ok.config.unwrap();
        assert_eq!(
            (c.store.backend, c.store.url.as_str(), c.store.pool_size, c.store.connect_timeout),
            (Backend::Postgres, "host=/run/postgresql", 4, time::Duration::seconds(2))
        );
    }

    #[test]
    fn postgres_tls_is_verify_full_unless_set_and_the_ca_file_must_exist() {
        use oauth_store_postgres::TlsMode;
        let read = |text: &str| Config::from_table(text.parse::<Table>().unwrap(), Path::new("."), &no_env);
        let has_error = |r: &Loaded, key: &str| r.errors.iter().any(|p| p.key.as_str() == key);
        let c = Config::defaults().config.unwrap().store;
        assert_eq!((c.tls.mode, c.tls.ca_file, c.statement_timeout.as_millis()), (TlsMode::VerifyFull, None, 5000));
        for (name, mode) in [
            ("disable", TlsMode::Disable),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            assert_eq!(read(&format!("[store]\ntls = \"{name}\"\n")).config.unwrap().store.tls.mode, mode);
        }
        let bad = read("[store]\ntls = \"prefer\"\n");
        assert!(has_error(&bad, "store.tls"), "{:?}", bad.errors);
        let missing = read("[store]\ntls_ca_file = \"/nonexistent/ca.pem\"\n");
        assert!(has_error(&missing, "store.tls_ca_file"), "{:?}", missing.errors);
        let weak = read("[store]\nbackend = \"postgres\"\nurl = \"host=db\"\ntls = \"require\"\n");
        assert!(weak.warnings.iter().any(|p| p.key.as_str() == "store.tls"), "{:?}", weak.warnings);
        let short = read("[store]\nstatement_timeout = 250\n").config.unwrap().store;
        assert_eq!(short.statement_timeout.as_millis(), 250);
        let zero = read("[store]\nstatement_timeout = 0\n");
        assert!(has_error(&zero, "store.statement_timeout"), "{:?}", zero.errors);
    }

    #[test]
    fn the_sweep_interval_is_whole_seconds_from_one() {
        let read = |text: &str| Config::from_table(text.parse::<Table>().unwrap(), Path::new("."), &no_env);
        assert_eq!(
            read("[store]\nsweep_interval = 5\n").config.unwrap().store.sweep_interval,
            time::Duration::seconds(5)
        );
        for bad in ["0", "-1", "\"5\""] {
            let r = read(&format!("[store]\nsweep_interval = {bad}\n"));
            assert!(r.errors.iter().any(|p| p.key.as_str() == "store.sweep_interval"), "{bad}: {:?}", r.errors);
        }
    }

    #[test]
    fn durability_is_power_unless_process_is_asked_for() {
        use oauth_store_sled::Durability;
        let read = |text: &str| Config::from_table(text.parse::<Table>().unwrap(), Path::new("."), &no_env);
        assert_eq!(Config::defaults().config.unwrap().store.durability, Durability::Power);
        assert_eq!(read("[store]\ndurability = \"process\"\n").config.unwrap().store.durability, Durability::Process);
        assert_eq!(read("[store]\ndurability = \"power\"\n").config.unwrap().store.durability, Durability::Power);
        for bad in ["\"fsync\"", "\"Power\"", "1"] {
            let r = read(&format!("[store]\ndurability = {bad}\n"));
            assert!(r.errors.iter().any(|p| p.key.as_str() == "store.durability"), "{bad}: {:?}", r.errors);
        }
    }

    /// A `private_key_jwt` client's key set (a public P-256 key).
    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"2zZGSanZAXoZIjoaMsdzZGat7P7foN_l_C1EmBC7fKs","y":"2EwpmVXIIGPjXSPBG4QY9Nijq91VRT_zK8sfugUVtm0"}]}"#;
    const HASH: &str = "$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2";

    fn keys_client(extra: &str) -> String {
        format!(
            "[[clients]]\nclient_id = \"keys\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = '{JWKS}'\n\
             grant_types = [\"client_credentials\"]\n{extra}\n"
        )
    }

    fn errors_of(text: &str) -> Vec<String> {
        messages(&read_with(text, &[]).errors)
    }

    #[test]
    fn fapi2_refuses_what_it_cannot_turn_on_each_at_its_key() {
        let text = format!(
            "[profile]\nfapi2 = true\n[tokens]\nsigning_alg = \"RS256\"\nauthorization_code_ttl = 61\n\
             [[clients]]\nclient_id = \"public\"\nredirect_uris = [\"https://app.example/cb\"]\n\
             [[clients]]\nclient_id = \"secret\"\nclient_secret_hash = \"{HASH}\"\ngrant_types = [\"client_credentials\"]\n{}",
            keys_client("")
        );
        let errors = errors_of(&text);
        for (key, words) in [
            ("tokens.signing_alg", "ES256 or EdDSA only"),
            ("tokens.authorization_code_ttl", "at most 60 s"),
            ("clients[0].token_endpoint_auth_method", "public clients are not allowed"),
            ("clients[1].client_secret_hash", "private_key_jwt only"),
        ] {
            assert!(errors.iter().any(|e| e.starts_with(key) && e.contains(words)), "{key}: {errors:?}");
        }
        assert_eq!(errors.len(), 4, "the private_key_jwt client is fine: {errors:?}");
    }

    #[test]
    fn fapi2_refuses_open_registration_which_creates_only_public_clients() {
        let open = format!("[profile]\nfapi2 = true\n[registration]\nenabled = true\n{}", keys_client(""));
        let errors = errors_of(&open);
        assert!(
            errors.iter().any(|e| e.starts_with("registration.enabled") && e.contains("initial_access_token_hash")),
            "{errors:?}"
        );
        let trusted = format!(
            "[profile]\nfapi2 = true\n[registration]\nenabled = true\ninitial_access_token_hash = \"{HASH}\"\n{}",
            keys_client("")
        );
        assert!(errors_of(&trusted).is_empty(), "{:?}", errors_of(&trusted));
        let off = format!("[profile]\nfapi2 = true\n[registration]\nenabled = false\n{}", keys_client(""));
        assert!(errors_of(&off).is_empty());
    }

    #[test]
    fn fapi2_turns_on_its_settings_whatever_the_other_keys_say() {
        let text = format!("[profile]\nfapi2 = true\n[tokens]\nrefresh_rotation = true\n{}", keys_client(""));
        let loaded = read_with(&text, &[]);
        assert!(loaded.errors.is_empty(), "{:?}", messages(&loaded.errors));
        let warnings = messages(&loaded.warnings);
        assert!(warnings.iter().any(|w| w.starts_with("tokens.refresh_rotation")), "{warnings:?}");
        let settings = loaded.config.unwrap().settings();
        assert!(settings.fapi2);
    }

    #[test]
    fn a_private_key_jwt_client_needs_public_keys_and_no_secret() {
        assert!(errors_of(&keys_client("")).is_empty());
        let missing = "[[clients]]\nclient_id = \"k\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n\
                       grant_types = [\"client_credentials\"]\n";
        assert!(errors_of(missing).iter().any(|e| e.starts_with("clients[0].jwks") && e.contains("required")));
        let with_secret = keys_client(&format!("client_secret_hash = \"{HASH}\""));
        assert!(errors_of(&with_secret).iter().any(|e| e.starts_with("clients[0].client_secret_hash")));
        let private = keys_client("").replace("\"y\"", "\"d\":\"TBonjtCkru3l_yaMp_fGl-Hll5TvFm5YXYx12QWc6dM\",\"y\"");
        assert!(errors_of(&private).iter().any(|e| e.starts_with("clients[0].jwks")), "a private key in jwks");
        let unknown = "[[clients]]\nclient_id = \"k\"\ntoken_endpoint_auth_method = \"tls_client_auth\"\n";
        assert!(errors_of(unknown).iter().any(|e| e.starts_with("clients[0].token_endpoint_auth_method")));
        let jwks_elsewhere = format!(
            "[[clients]]\nclient_id = \"k\"\nclient_secret_hash = \"{HASH}\"\njwks = '{JWKS}'\n\
                                      grant_types = [\"client_credentials\"]\n"
        );
        assert!(errors_of(&jwks_elsewhere).iter().any(|e| e.starts_with("clients[0].jwks")));
    }

    #[test]
    fn refresh_rotation_is_on_and_the_grace_zero_unless_set() {
        let c = Config::defaults().config.unwrap();
        assert!(c.tokens.refresh_rotation);
        assert_eq!(c.tokens.refresh_reuse_grace, time::Duration::ZERO);
        assert!(!c.dpop.require_nonce && c.dpop.max_age == time::Duration::seconds(60));
        let loaded = read_with("[tokens]\nrefresh_rotation = false\nrefresh_reuse_grace = 10\n", &[]);
        assert!(messages(&loaded.warnings).iter().any(|w| w.starts_with("tokens.refresh_reuse_grace")));
        let settings = loaded.config.unwrap().settings();
        assert!(!settings.refresh_rotation);
        assert_eq!(settings.refresh_reuse_grace, time::Duration::seconds(10));
    }

    #[test]
    fn defaults_are_the_spec_defaults() {
        let seconds = time::Duration::seconds;
        let c = Config::defaults().config.unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(
            (c.tokens.access_token_ttl, c.tokens.refresh_token_ttl, c.tokens.authorization_code_ttl, c.tokens.leeway),
            (seconds(900), seconds(1_209_600), seconds(60), seconds(30))
        );
        assert_eq!((c.store.backend, c.store.sweep_interval), (Backend::Sled, seconds(60)));
        assert!(!c.grants.on.contains(&GrantType::Password));
        assert_eq!(c.tokens.signing_alg, SigningAlg::Es256);
        assert!(c.grants.on.contains(&GrantType::DeviceCode));
        assert_eq!((c.device.code_ttl, c.device.interval), (seconds(600), seconds(5)));
    }

    #[test]
    fn the_device_keys_reach_the_settings_and_their_errors_name_the_key() {
        let loaded = read_with("[grants]\ndevice_code = false\n[device]\ncode_ttl = 300\ninterval = 2\n", &[]);
        let settings = loaded.config.unwrap().settings();
        assert!(!settings.grants.contains(&GrantType::DeviceCode));
        assert_eq!(
            (settings.device_code_ttl, settings.device_interval),
            (time::Duration::seconds(300), time::Duration::seconds(2))
        );
        let errors = errors_of("[device]\ncode_ttl = 5\ninterval = 0\n");
        assert!(errors.iter().any(|e| e.starts_with("device.code_ttl")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("device.interval")), "{errors:?}");
        let client =
            "[[clients]]\nclient_id = \"tv\"\ngrant_types = [\"urn:ietf:params:oauth:grant-type:device_code\"]\n";
        let c = read_with(client, &[]).config.unwrap();
        assert!(c.clients[0].allows(GrantType::DeviceCode), "a client lists the grant by its URN");
    }
}
