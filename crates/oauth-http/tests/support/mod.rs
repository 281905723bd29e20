//! One helper per boundary: a real server on 127.0.0.1 and a real client, and
//! a browser-like walk through the pages.

#![allow(dead_code, unreachable_pub, reason = "each test binary uses part of the harness, which is private to it")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use oauth_core::{
    Account, AccountId, AllowAll, Authority, Client, ClientId, ClientSettings, ConsentRule, GrantType, IdTokenAlg,
    RedirectPolicy, RedirectUri, ResourceCheck, Scope, ScopeRule, SecretHash, SecretVerifier, Services, Settings,
    Store, WebOrigin,
};
use oauth_http::{Frontend, HttpConfig, SecurityEventLog};
use oauth_jwt::{JwtCodec, KeyRing, SigningAlg, SigningKey};
use oauth_runtime::credentials::{HashVerifier, OsSecrets, SystemClock, hash_argon2, hash_sha256};
use oauth_store_mem::MemStore;

pub const CONFIDENTIAL: &str = "demo-app";
pub const SECRET: &str = "a-machine-generated-secret-of-43-characters";
pub const PUBLIC: &str = "native-app";
/// A MedMij-style client: public, host-bound redirect URIs, one of scopes `1 4`.
pub const HOST: &str = "pgo.example.org";
pub const REDIRECT: &str = "http://127.0.0.1:9000/callback";
/// A public browser app (CORS): its redirect URI's origin, and one more origin
/// it lists in `allowed_cors_origins`.
pub const SPA: &str = "spa-app";
pub const SPA_REDIRECT: &str = "https://spa.example/callback";
pub const SPA_ORIGIN: &str = "https://spa.example";
pub const SPA_LISTED_ORIGIN: &str = "http://127.0.0.1:5173";
/// An OpenID Connect client that remembers consent, and a second one, for
/// single sign-on across clients.
pub const OIDC: &str = "oidc-app";
pub const OIDC_OTHER: &str = "oidc-other";
/// A first-party OpenID Connect client (`skip_consent`), whose ID tokens are
/// signed with the server's own algorithm.
pub const FIRST_PARTY: &str = "first-party";
/// The OpenID Connect clients' `post_logout_redirect_uris`.
/// A public device client (RFC 8628) that skips consent, which a device
/// request ignores.
pub const DEVICE: &str = "tv-app";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const LOGOUT_REDIRECT: &str = "http://127.0.0.1:9000/bye";
pub const USERNAME: &str = "alice";
/// A second account, for switching accounts.
pub const OTHER_USERNAME: &str = "bob";
pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The password hash, computed once per test binary (Argon2id is slow by design).
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_argon2(PASSWORD).unwrap())
}

/// What a test may change about the server.
pub struct Options {
    pub issuer_path: &'static str,
    pub password_grant: bool,
    pub max_failures_per_account: u32,
    pub max_failures_per_account_total: u32,
    pub resources: Arc<dyn ResourceCheck>,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub max_pending_per_ip: u32,
    pub access_token_ttl: time::Duration,
    /// Replaces the real verifier (Argon2id and `$sha256$`).
    pub verifier: Option<Arc<dyn SecretVerifier>>,
    pub max_failures_per_ip: u32,
    pub device_code_ttl: time::Duration,
    pub device_interval: time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            issuer_path: "",
            password_grant: true,
            max_failures_per_account: 10,
            max_failures_per_account_total: 100,
            resources: Arc::new(AllowAll),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 256,
            trusted_proxies: Vec::new(),
            max_pending_per_ip: 1000,
            access_token_ttl: time::Duration::seconds(900),
            verifier: None,
            max_failures_per_ip: 1000,
            device_code_ttl: time::Duration::seconds(600),
            device_interval: time::Duration::seconds(5),
        }
    }
}

/// The real verifier, except that password (Argon2id) verifications wait
/// until released, and are counted: so a test can see how many guesses were
/// checked, and hold connections busy.
pub struct HeldVerifier {
    pub entered: AtomicUsize,
    gate: tokio::sync::Semaphore,
    real: HashVerifier,
}

impl HeldVerifier {
    pub fn new() -> Arc<Self> {
        Arc::new(HeldVerifier {
            entered: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
            real: HashVerifier::new(2).unwrap(),
        })
    }

    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    pub fn release(&self) {
        self.gate.add_permits(1 << 20);
    }

    /// Waits until `n` password verifications have started, then a little
    /// longer, so that more would have started too if they could.
    pub async fn wait_for(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.entered() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[async_trait]
impl SecretVerifier for HeldVerifier {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> oauth_core::Result<bool> {
        if stored.is_none_or(|h| h.as_str().starts_with("$argon2id$")) {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let _permit = self.gate.acquire().await.map_err(|_| oauth_core::Error::Internal("gate closed".into()))?;
        }
        self.real.verify(stored, presented).await
    }
}

pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub store: Arc<MemStore>,
    pub frontend: Arc<Frontend>,
    pub account: Account,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn clients() -> BTreeMap<ClientId, Arc<Client>> {
    let redirect = RedirectPolicy::Registered(vec![RedirectUri::parse(REDIRECT).unwrap()]);
    let specs = [
        ClientSettings {
            id: ClientId::parse(CONFIDENTIAL).unwrap(),
            name: "Demo App".into(),
            secret: Some(SecretHash::new(hash_sha256(SECRET).unwrap())),
            redirect: redirect.clone(),
            grant_types: GrantType::ALL.into(),
            scopes: Scope::parse("profile read write").unwrap(),
            scope_rule: ScopeRule::Subset,
            require_pkce: true,
            allowed_cors_origins: vec![],
            resources: Default::default(),
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: vec![],
            id_token_alg: IdTokenAlg::Rs256,
            // These clients' tests walk the consent page on every flow.
            consent: ConsentRule::Always,
        },
        ClientSettings {
            id: ClientId::parse(PUBLIC).unwrap(),
            name: "Native <App>".into(),
            secret: None,
            redirect,
            grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
            scopes: Scope::parse("read").unwrap(),
            scope_rule: ScopeRule::Subset,
            require_pkce: true,
            allowed_cors_origins: vec![],
            resources: Default::default(),
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: vec![],
            id_token_alg: IdTokenAlg::Rs256,
            // These clients' tests walk the consent page on every flow.
            consent: ConsentRule::Always,
        },
        ClientSettings {
            id: ClientId::parse(SPA).unwrap(),
            name: "Browser App".into(),
            secret: None,
            redirect: RedirectPolicy::Registered(vec![RedirectUri::parse(SPA_REDIRECT).unwrap()]),
            grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
            scopes: Scope::parse("read").unwrap(),
            scope_rule: ScopeRule::Subset,
            require_pkce: true,
            allowed_cors_origins: vec![WebOrigin::parse(SPA_LISTED_ORIGIN).unwrap()],
            resources: Default::default(),
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: vec![],
            id_token_alg: IdTokenAlg::Rs256,
            // These clients' tests walk the consent page on every flow.
            consent: ConsentRule::Always,
        },
        oidc_client(OIDC, "OpenID App", ConsentRule::Remember, IdTokenAlg::Rs256),
        oidc_client(OIDC_OTHER, "Other App", ConsentRule::Remember, IdTokenAlg::Rs256),
        oidc_client(FIRST_PARTY, "First Party", ConsentRule::Skip, IdTokenAlg::ServerAlg),
        ClientSettings {
            id: ClientId::parse(HOST).unwrap(),
            name: "Example Health Vault".into(),
            secret: None,
            redirect: RedirectPolicy::HttpsHost(HOST.into()),
            grant_types: [GrantType::AuthorizationCode].into(),
            scopes: Scope::parse("1 4").unwrap(),
            scope_rule: ScopeRule::ExactlyOne,
            require_pkce: false,
            allowed_cors_origins: vec![],
            resources: Default::default(),
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: vec![],
            id_token_alg: IdTokenAlg::Rs256,
            consent: ConsentRule::Always,
        },
        ClientSettings {
            grant_types: [GrantType::DeviceCode, GrantType::RefreshToken].into(),
            redirect: RedirectPolicy::Registered(vec![]),
            post_logout_redirect_uris: vec![],
            ..oidc_client(DEVICE, "Living Room TV", ConsentRule::Skip, IdTokenAlg::Rs256)
        },
    ];
    specs
        .into_iter()
        .map(|s| {
            let c = Client::new(s).unwrap();
            (c.id().clone(), Arc::new(c))
        })
        .collect()
}

fn oidc_client(id: &str, name: &str, consent: ConsentRule, id_token_alg: IdTokenAlg) -> ClientSettings {
    ClientSettings {
        id: ClientId::parse(id).unwrap(),
        name: name.into(),
        secret: None,
        jwks: None,
        redirect: RedirectPolicy::Registered(vec![RedirectUri::parse(REDIRECT).unwrap()]),
        grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
        scopes: Scope::parse("openid profile email phone read").unwrap(),
        scope_rule: ScopeRule::Subset,
        require_pkce: true,
        allowed_cors_origins: vec![],
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        resources: Default::default(),
        post_logout_redirect_uris: vec![RedirectUri::parse(LOGOUT_REDIRECT).unwrap()],
        id_token_alg,
        consent,
    }
}

/// The RS256 ID-token key, generated once per test binary (RSA key
/// generation takes a while).
pub fn id_token_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(SigningAlg::Rs256).unwrap()).clone()
}

/// Builds the front end over a fresh memory store (no listener).
pub async fn frontend(opts: &Options, base: &str) -> (Arc<Frontend>, Arc<MemStore>, Account) {
    let store = Arc::new(MemStore::new());
    let (frontend, account) = frontend_on(opts, base, store.clone(), store.clone()).await;
    (frontend, store, account)
}

/// Builds the front end serving from `serving`, after seeding the account into
/// `seed` (the same store, or the one behind a wrapper).
pub async fn frontend_on(
    opts: &Options,
    base: &str,
    seed: Arc<MemStore>,
    serving: Arc<dyn Store>,
) -> (Arc<Frontend>, Account) {
    let store = seed;
    let account = Account {
        id: AccountId::from_random_bytes([0x5a; 16]),
        username: USERNAME.into(),
        password_hash: Some(SecretHash::new(password_hash())),
        disabled: false,
        // Standard claims, and one attribute (`bsn`) that is none.
        attributes: [
            ("name", "Alice Liddell"),
            ("email", "alice@example.org"),
            ("email_verified", "true"),
            ("updated_at", "1700000000"),
            ("bsn", "999999990"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        origin: oauth_core::AccountOrigin::Configuration,
    };
    store.put_account(&account).await.unwrap();
    let other = Account {
        id: AccountId::from_random_bytes([0x5b; 16]),
        username: OTHER_USERNAME.into(),
        password_hash: Some(SecretHash::new(password_hash())),
        disabled: false,
        attributes: BTreeMap::new(),
        origin: oauth_core::AccountOrigin::Configuration,
    };
    store.put_account(&other).await.unwrap();
    let issuer = format!("{base}{}", opts.issuer_path);
    let mut settings = Settings::new(issuer.clone());
    if opts.password_grant {
        settings.grants.insert(GrantType::Password);
    }
    settings.throttle.max_failures_per_account = opts.max_failures_per_account;
    settings.throttle.max_failures_per_account_total = opts.max_failures_per_account_total;
    settings.throttle.max_pending_per_ip = opts.max_pending_per_ip;
    settings.access_token_ttl = opts.access_token_ttl;
    settings.throttle.max_failures_per_ip = opts.max_failures_per_ip;
    settings.device_code_ttl = opts.device_code_ttl;
    settings.device_interval = opts.device_interval;
    let codec = Arc::new(JwtCodec::new(
        KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap()).with_id_token_key(id_token_key()).unwrap(),
        issuer.clone(),
        issuer,
        time::Duration::seconds(30),
    ));
    let events = Arc::new(SecurityEventLog::default());
    let services = Services {
        store: serving,
        clients: Arc::new(clients()),
        clock: Arc::new(SystemClock),
        secrets: Arc::new(OsSecrets),
        verifier: opts.verifier.clone().unwrap_or_else(|| Arc::new(HashVerifier::new(2).unwrap())),
        tokens: codec.clone(),
        id_tokens: codec.clone(),
        resources: opts.resources.clone(),
        events: events.clone(),
        proofs: Arc::new(oauth_jwt::JwtProofs::new()),
    };
    let mut config = HttpConfig {
        header_read_timeout: opts.header_read_timeout,
        max_connections: opts.max_connections,
        max_connections_per_ip: opts.max_connections_per_ip,
        trusted_proxies: opts.trusted_proxies.clone(),
        ..HttpConfig::default()
    };
    config.scope_descriptions.insert("read".into(), "Read your data".into());
    let frontend =
        Frontend::new(config, Authority::new(settings, services), codec).unwrap().with_security_events(events);
    (Arc::new(frontend), account)
}

/// Starts a real server on an ephemeral 127.0.0.1 port.
pub async fn start(opts: Options) -> TestServer {
    start_on(opts, Arc::new(MemStore::new())).await
}

/// Starts a real server on `store`, which other servers may share (several
/// nodes, or several issuers).
pub async fn start_on(opts: Options, store: Arc<MemStore>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let (frontend, account) = frontend_on(&opts, &base, store.clone(), store.clone()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let f = frontend.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        oauth_http::serve(listener, f, shutdown, Duration::from_secs(5)).await.unwrap();
    });
    TestServer { base: format!("{base}{}", opts.issuer_path), addr, store, frontend, account, stop: Some(stop) }
}

/// A client that never follows redirects, so tests see every 303.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `name=value` of the first Set-Cookie.
pub fn cookie_of(resp: &reqwest::Response) -> String {
    let raw = resp.headers().get("set-cookie").expect("a cookie").to_str().unwrap();
    raw.split(';').next().unwrap().to_owned()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").expect("a Location").to_str().unwrap().to_owned()
}

pub fn query(url: &str, name: &str) -> Option<String> {
    oauth_core::testing::query_param(url, name)
}

/// The authorization URL for the confidential client with PKCE.
pub fn authorize_url(s: &TestServer, client: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=read&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        s.base,
        urlencode(REDIRECT)
    )
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What a browser holds between pages.
pub struct Browser {
    pub cookie: String,
    pub session: String,
    pub csrf: String,
}

/// GET the authorization URL like a browser; returns the login page's state.
pub async fn open_login(s: &TestServer, url: &str) -> Browser {
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the login page");
    let cookie = cookie_of(&resp);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(&format!("<form method=\"post\" action=\"{}/authorize/login\">", path_of(&s.base))),
        "{html}"
    );
    Browser { cookie, session: hidden(&html, "session"), csrf: hidden(&html, "csrf") }
}

pub fn path_of(base: &str) -> String {
    base.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default()
}

pub async fn post_login(s: &TestServer, b: &Browser, username: &str, password: &str) -> reqwest::Response {
    http()
        .post(format!("{}/authorize/login", s.base))
        .header("cookie", &b.cookie)
        .form(&[
            ("session", b.session.as_str()),
            ("csrf", b.csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Logs in and approves; returns the client redirect (with the code).
pub async fn browser_flow(s: &TestServer, url: &str) -> String {
    let b = open_login(s, url).await;
    let resp = post_login(s, &b, USERNAME, PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let consent = format!("http://{}{}", s.addr, location(&resp));
    let page = http().get(&consent).header("cookie", &b.cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"decision\" value=\"approve\"") && html.contains("name=\"decision\" value=\"deny\""));
    let resp = http()
        .post(format!("{}/authorize/consent", s.base))
        .header("cookie", &b.cookie)
        .form(&[("session", hidden(&html, "session")), ("csrf", hidden(&html, "csrf")), ("decision", "approve".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    location(&resp)
}

/// The `/token` form that redeems `code` with the registered redirect URI and
/// the PKCE verifier of [`authorize_url`].
pub fn code_exchange(code: &str) -> [(&'static str, &str); 4] {
    [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)]
}

/// Runs the confidential client's code flow in a browser's place and redeems
/// the code with Basic authentication; the token response.
pub async fn code_tokens(s: &TestServer) -> serde_json::Value {
    let code = query(&browser_flow(s, &authorize_url(s, CONFIDENTIAL, "")).await, "code").unwrap();
    let resp = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&code_exchange(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// A device authorization request of the public device client for `scope`;
/// the JSON answer.
pub async fn device_start(s: &TestServer, scope: &str) -> serde_json::Value {
    let resp = http()
        .post(format!("{}/device_authorization", s.base))
        .form(&[("client_id", DEVICE), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The public device client's request for `scope` as sent through a trusted
/// proxy (127.0.0.1, see [`Options::trusted_proxies`]) for a device at
/// `device_ip`: the answer, not yet checked.
pub async fn device_request_from(s: &TestServer, scope: &str, device_ip: &str) -> reqwest::Response {
    http()
        .post(format!("{}/device_authorization", s.base))
        .header("x-forwarded-for", device_ip)
        .form(&[("client_id", DEVICE), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

/// One poll of the device client with `device_code`: status and JSON.
pub async fn device_poll(s: &TestServer, device_code: &str) -> (u16, serde_json::Value) {
    let resp = http()
        .post(format!("{}/token", s.base))
        .form(&[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", DEVICE)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A browser on the device page: its cookies, sent together.
pub struct DeviceBrowser {
    pub cookies: Vec<String>,
}

impl DeviceBrowser {
    pub fn header(&self) -> String {
        self.cookies.join("; ")
    }

    /// Keeps the cookies an answer sets (the CSRF and the session cookie).
    pub fn keep(&mut self, resp: &reqwest::Response) {
        for raw in resp.headers().get_all("set-cookie") {
            let pair = raw.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
    }
}

/// Opens `url` (the verification URI, complete or not) in `browser`, types
/// `typed` (or keeps the filled-in code when `None`) and submits; the answer
/// to the POST.
pub async fn device_submit(
    s: &TestServer,
    browser: &mut DeviceBrowser,
    url: &str,
    typed: Option<&str>,
) -> reqwest::Response {
    let page = http().get(url).header("cookie", browser.header()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    browser.keep(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("<form method=\"post\" action=\"{}/device\">", path_of(&s.base))), "{html}");
    let filled = hidden_or_input(&html, "user_code");
    let mut form =
        vec![("csrf".to_owned(), hidden(&html, "csrf")), ("user_code".into(), typed.map_or(filled, str::to_owned))];
    if html.contains("name=\"prompt\" value=\"login\"") {
        form.push(("prompt".into(), "login".into()));
    }
    http().post(format!("{}/device", s.base)).header("cookie", browser.header()).form(&form).send().await.unwrap()
}

/// The value of the input `name` of a page, hidden or not.
pub fn hidden_or_input(html: &str, name: &str) -> String {
    let start = html.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[start..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..].split('"').next().unwrap().to_owned()
}

/// The user's steps for `user_code` in `browser`: the device page, the login
/// (unless the browser has a session), the consent page (whose HTML is
/// checked for the user code), the decision; the page the browser ends on.
pub async fn device_user_steps(s: &TestServer, browser: &mut DeviceBrowser, user_code: &str, approve: bool) -> String {
    let url = format!("{}/device?user_code={user_code}", s.base);
    let resp = device_submit(s, browser, &url, None).await;
    assert_eq!(resp.status(), 303);
    device_decide(s, browser, &location(&resp), user_code, approve).await
}

/// The rest of [`device_user_steps`] once the code was submitted and
/// answered with `to` (the login or the consent page's path).
pub async fn device_decide(
    s: &TestServer,
    browser: &mut DeviceBrowser,
    to: &str,
    user_code: &str,
    approve: bool,
) -> String {
    let mut next = format!("http://{}{to}", s.addr);
    if next.contains("/authorize/login") {
        let page = http().get(&next).header("cookie", browser.header()).send().await.unwrap();
        let html = page.text().await.unwrap();
        let resp = http()
            .post(format!("{}/authorize/login", s.base))
            .header("cookie", browser.header())
            .form(&[
                ("session", hidden(&html, "session")),
                ("csrf", hidden(&html, "csrf")),
                ("username", USERNAME.into()),
                ("password", PASSWORD.into()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        browser.keep(&resp);
        next = format!("http://{}{}", s.addr, location(&resp));
    }
    assert!(next.contains("/authorize/consent"), "the consent page next: {next}");
    let page = http().get(&next).header("cookie", browser.header()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(user_code), "the consent page shows the user code: {html}");
    let resp = http()
        .post(format!("{}/authorize/consent", s.base))
        .header("cookie", browser.header())
        .form(&[
            ("session", hidden(&html, "session")),
            ("csrf", hidden(&html, "csrf")),
            ("decision", if approve { "approve" } else { "deny" }.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    location(&resp)
}
