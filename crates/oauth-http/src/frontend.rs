//! [`Frontend`]: the per-server state, and the router that sends each request
//! to its endpoint, logs it and counts it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use oauth_core::Authority;
use oauth_jwt::JwtCodec;

use crate::Error;
use crate::cors::Cors;
use crate::metrics::Metrics;
use crate::response::{self, Body};

/// The front end's settings (the `[server]` table, and the consent words).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Most connections served at once. At the limit a new connection displaces
    /// the one that has been idle, or stuck in its request head or body, the
    /// longest; when every connection is busy it is closed.
    pub max_connections: usize,
    /// Most connections from one address (trusted proxies exempt). At this cap
    /// a new connection from the address displaces that address's own
    /// longest-waiting one.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body.
    pub body_read_timeout: Duration,
    /// Time an idle keep-alive connection stays open. hyper times the wait for
    /// the next request's headers with the header timer, so an idle connection
    /// closes after the smaller of this and `header_read_timeout`.
    pub idle_timeout: Duration,
    /// Peers allowed to set `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpAddr>,
    /// Words for scopes on the consent page, by scope token.
    pub scope_descriptions: BTreeMap<String, String>,
    /// The same in Dutch (`[scope_descriptions.nl]`); a scope missing here
    /// falls back to its English words.
    pub scope_descriptions_nl: BTreeMap<String, String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 1024,
            max_connections_per_ip: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            scope_descriptions: BTreeMap::new(),
            scope_descriptions_nl: BTreeMap::new(),
        }
    }
}

/// Everything a request needs: the authority, the token codec (for the JWKS),
/// the settings and the metrics. Shared by all connections.
#[derive(Debug)]
pub struct Frontend {
    pub(crate) authority: Authority,
    pub(crate) codec: Arc<JwtCodec>,
    pub(crate) config: HttpConfig,
    pub(crate) metrics: Metrics,
    pub(crate) store_timings: Option<Arc<oauth_runtime::StoreTimings>>,
    pub(crate) security_events: Option<Arc<crate::SecurityEventLog>>,
    /// The issuer's path, under which every route lives (`""` for none).
    pub(crate) prefix: String,
    /// Whether cookies get `Secure` (an https issuer).
    pub(crate) secure: bool,
    /// Dynamic registration (`/register`), when switched on.
    pub(crate) admin: Option<Arc<oauth_core::Admin>>,
}

/// The routes, for dispatch and for metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Route {
    Metadata,
    Jwks,
    Authorize,
    LoginPage,
    Login,
    ConsentPage,
    Consent,
    Style,
    Token,
    Par,
    DeviceAuthorization,
    DevicePage,
    Device,
    DeviceDone,
    Revoke,
    Introspect,
    Userinfo,
    Logout,
    Healthz,
    Metrics,
    Register,
    Registration,
    Unknown,
}

impl Route {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Route::Metadata => "metadata",
            Route::Jwks => "jwks",
            Route::Authorize => "authorize",
            Route::LoginPage => "login_page",
            Route::Login => "login",
            Route::ConsentPage => "consent_page",
            Route::Consent => "consent",
            Route::Style => "style",
            Route::Token => "token",
            Route::Par => "par",
            Route::DeviceAuthorization => "device_authorization",
            Route::DevicePage => "device_page",
            Route::Device => "device",
            Route::DeviceDone => "device_done",
            Route::Revoke => "revoke",
            Route::Introspect => "introspect",
            Route::Userinfo => "userinfo",
            Route::Logout => "logout",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Register => "register",
            Route::Registration => "registration",
            Route::Unknown => "unknown",
        }
    }

    /// The methods the route serves, as an `Allow` header says them.
    pub(crate) fn allow(self) -> &'static str {
        match self {
            Route::Registration => "GET, PUT, DELETE",
            Route::Login
            | Route::Consent
            | Route::Token
            | Route::Par
            | Route::DeviceAuthorization
            | Route::Revoke
            | Route::Introspect
            | Route::Register => "POST",
            Route::Userinfo | Route::Logout | Route::Device => "GET, POST",
            _ => "GET",
        }
    }

    /// Whether the route serves `method`.
    pub(crate) fn serves(self, method: &Method) -> bool {
        self.allow().split(", ").any(|m| m == method.as_str())
    }
}

impl Frontend {
    /// Builds the front end. The issuer must be an absolute http(s) URL; its
    /// path becomes the prefix of every route.
    pub fn new(config: HttpConfig, authority: Authority, codec: Arc<JwtCodec>) -> Result<Self, Error> {
        let issuer = &authority.settings().issuer;
        let uri: http::Uri = issuer.parse().map_err(|_| Error::Issuer(issuer.clone()))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Error::Issuer(issuer.clone())),
        };
        if uri.query().is_some() || issuer.contains('#') {
            return Err(Error::Issuer(issuer.clone()));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Frontend {
            authority,
            codec,
            config,
            metrics: Metrics::default(),
            store_timings: None,
            security_events: None,
            prefix,
            secure,
            admin: None,
        })
    }

    /// Serves dynamic client registration (RFC 7591, RFC 7592) through
    /// `admin`, when its `[registration]` is enabled.
    pub fn with_registration(mut self, admin: Arc<oauth_core::Admin>) -> Self {
        if admin.authority().settings().registration.enabled {
            self.admin = Some(admin);
        }
        self
    }

    /// Adds the store operation timings of a [`GatedStore`](oauth_runtime::GatedStore)
    /// to `/metrics`.
    pub fn with_store_timings(mut self, timings: Arc<oauth_runtime::StoreTimings>) -> Self {
        self.store_timings = Some(timings);
        self
    }

    /// Adds the counts of the security event log the authority reports to
    /// (`oauth_security_events_total{kind}`) to `/metrics`.
    pub fn with_security_events(mut self, log: Arc<crate::SecurityEventLog>) -> Self {
        self.security_events = Some(log);
        self
    }

    /// The authority the endpoints run.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.authority.settings().issuer
    }

    fn route(&self, path: &str) -> Route {
        // RFC 8414 3.1: for an issuer with a path, metadata also lives at
        // /.well-known/oauth-authorization-server{path}.
        if !self.prefix.is_empty() && path.strip_prefix("/.well-known/oauth-authorization-server") == Some(&self.prefix)
        {
            return Route::Metadata;
        }
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else { return Route::Unknown };
        match rest {
            "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => Route::Metadata,
            "/jwks.json" => Route::Jwks,
            "/authorize" => Route::Authorize,
            "/authorize/login" => Route::Login,
            "/authorize/consent" => Route::Consent,
            "/authorize/style.css" => Route::Style,
            "/token" => Route::Token,
            "/par" => Route::Par,
            "/device_authorization" => Route::DeviceAuthorization,
            "/device" => Route::Device,
            "/device/done" => Route::DeviceDone,
            "/revoke" => Route::Revoke,
            "/introspect" => Route::Introspect,
            "/userinfo" => Route::Userinfo,
            "/logout" => Route::Logout,
            "/healthz" => Route::Healthz,
            "/metrics" => Route::Metrics,
            "/register" if self.admin.is_some() => Route::Register,
            r if self.admin.is_some() && registration_id(r).is_some() => Route::Registration,
            _ => Route::Unknown,
        }
    }

    /// Answers one request from `peer`. Never panics and never answers 500 for
    /// anything a client can send.
    pub async fn handle<B>(&self, req: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<crate::BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let mut route = self.route(parts.uri.path());
        // GET and POST share the login and consent paths: GET shows the page.
        if parts.method == Method::GET {
            route = match route {
                Route::Login => Route::LoginPage,
                Route::Consent => Route::ConsentPage,
                Route::Device => Route::DevicePage,
                r => r,
            };
        }
        let mut client_id = None;
        let cors = Cors::of(route);
        let head_size: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        let mut response = if head_size > crate::server::MAX_HEAD {
            // hyper's buffer limit is not strict: a head that arrives in one read
            // is parsed whole. This one is.
            let too_large = oauth_core::Error::InvalidRequest("the request headers are over 64 KiB");
            let mut r = response::error_json(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &too_large);
            r.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            r
        } else if route == Route::Unknown {
            response::not_found(StatusCode::NOT_FOUND)
        } else if parts.method == Method::OPTIONS && cors != Cors::None {
            self.preflight(route, &parts.headers).await
        } else if !route.serves(&parts.method) {
            let mut r = response::not_found(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(route.allow()));
            r
        } else {
            let ip = crate::request::client_ip(&parts.headers, peer, &self.config.trusted_proxies);
            match route {
                Route::Metadata => self.metadata(),
                Route::Jwks => self.jwks(),
                Route::Authorize => self.authorize(&parts, ip).await,
                Route::LoginPage => self.login_page(&parts).await,
                Route::Login => self.login(&parts, body, ip).await,
                Route::ConsentPage => self.consent_page(&parts).await,
                Route::Consent => self.consent(&parts, body).await,
                Route::Style => response::css(crate::pages::STYLE),
                Route::Token => self.token(&parts, body, ip, &mut client_id).await,
                Route::Par => self.par(&parts, body, ip, &mut client_id).await,
                Route::DeviceAuthorization => self.device_authorization(&parts, body, ip, &mut client_id).await,
                Route::DevicePage => self.device_page(&parts),
                Route::Device => self.device(&parts, body, ip).await,
                Route::DeviceDone => self.device_done(&parts),
                Route::Revoke => self.revoke(&parts, body, ip, &mut client_id).await,
                Route::Introspect => self.introspect(&parts, body, ip, &mut client_id).await,
                Route::Userinfo => self.userinfo(&parts, body).await,
                Route::Logout => self.logout(&parts, body).await,
                Route::Healthz => self.healthz().await,
                Route::Metrics => {
                    let mut text = self.metrics.render();
                    if let Some(t) = &self.store_timings {
                        crate::metrics::render_store_timings(t, &mut text);
                    }
                    if let Some(log) = &self.security_events {
                        log.render(&mut text);
                    }
                    response::text(text)
                }
                Route::Register => self.register(&parts, body, ip, &mut client_id).await,
                Route::Registration => {
                    let rest = parts.uri.path().strip_prefix(self.prefix.as_str()).unwrap_or_default();
                    match registration_id(rest) {
                        Some(id) => self.registration(&parts, body, &id, &mut client_id).await,
                        None => response::not_found(StatusCode::NOT_FOUND),
                    }
                }
                Route::Unknown => response::not_found(StatusCode::NOT_FOUND),
            }
        };
        if cors != Cors::None && parts.method != Method::OPTIONS {
            self.add_cors(route, &parts.headers, client_id.as_deref(), &mut response).await;
        }
        let status = response.status().as_u16();
        self.metrics.request(route.name(), status);
        // One line per request; the path only, never the query, and never a
        // secret, password, code or token. What the client sent is escaped.
        tracing::info!(
            method = %Escaped(parts.method.as_str()),
            path = %Escaped(parts.uri.path()),
            status,
            latency_us = started.elapsed().as_micros() as u64,
            client_id = %Escaped(client_id.as_deref().unwrap_or("-")),
            "request"
        );
        response
    }
}

/// The `client_id` of a `/register/{client_id}` path, percent-decoded.
fn registration_id(rest: &str) -> Option<String> {
    let raw = rest.strip_prefix("/register/")?;
    if raw.is_empty() || raw.contains('/') {
        return None;
    }
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())
}

/// The longest a throttled request waits for a slot with no settle arriving
/// (the queue not moving) before it is answered 429 after all.
const PATIENCE: Duration = Duration::from_secs(30);

impl Frontend {
    /// Runs a throttled check (client authentication, a password grant, a
    /// login), bounding only its wait for a slot: see [`wait_for_slot_patiently`].
    pub(crate) async fn patiently<T>(
        &self,
        code: oauth_core::ErrorCode,
        check: impl std::future::Future<Output = oauth_core::Result<T>>,
    ) -> oauth_core::Result<T> {
        wait_for_slot_patiently(PATIENCE, code, check).await
    }
}

/// Runs `check`, answering `oauth_core::Error::ThrottleBusy` with `code` (a
/// 429) only when it has waited `patience` for a throttle slot with no
/// settle arriving.
///
/// The throttle lets at most the limit be checked at once on this node; an
/// attempt that finds the limit filled only by checks still running waits in
/// `oauth-core` until one of them settles. A client with many concurrent
/// requests is queued, never failed, unless the queue does not move for
/// `patience`: each settle on a key the attempt waits on starts the bound
/// anew, and the dropped request holds no place yet. A check that has started
/// (its Argon2 verification queued or running, its store round trips) is
/// never cancelled here, however long it takes: SPEC never sheds an Argon2
/// verification for load.
///
/// A settle wakes only the first waiter of its key, so a waiter further back
/// is not woken when the queue moves ahead of it: it is polled here every
/// quarter of `patience` to read its queue's progress mark, a lock and a
/// look at its keys, with no store read. The answer is busy once the mark
/// has stood still for `patience`, at most a quarter of it late.
pub(crate) async fn wait_for_slot_patiently<T>(
    patience: Duration,
    code: oauth_core::ErrorCode,
    check: impl std::future::Future<Output = oauth_core::Result<T>>,
) -> oauth_core::Result<T> {
    use std::task::Poll;
    use tokio::time::Instant;
    let mut check = std::pin::pin!(check);
    let step = patience / 4;
    // The progress mark of the wait being timed, and since when it has not
    // moved (first seen at a look, so never earlier than it moved).
    let mut still: Option<(u64, Instant)> = None;
    // The next look.
    let mut look = Box::pin(tokio::time::sleep(step));
    std::future::poll_fn(|cx| {
        loop {
            // Cleared before the poll, so that what is read after it is this
            // check's own state.
            let _ = oauth_core::take_throttle_wait();
            if let Poll::Ready(result) = check.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            let Some(mark) = oauth_core::take_throttle_wait() else {
                // Running, not waiting: no bound.
                still = None;
                return Poll::Pending;
            };
            let now = Instant::now();
            let since = match still {
                Some((timed, since)) if timed == mark => since,
                _ => {
                    still = Some((mark, now));
                    now
                }
            };
            let bound = since + patience;
            if now >= bound {
                return Poll::Ready(Err(oauth_core::Error::ThrottleBusy { code }));
            }
            look.as_mut().reset(bound.min(now + step));
            if look.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The look is due already (a coarse timer): look now.
        }
    })
    .await
}

/// A value a client sent, for a log line: control characters (a newline, an
/// ANSI escape), the Unicode line and paragraph separators and the backslash
/// are written as Rust escapes (`\n`, `\u{1b}`, `\\`), so that no client can
/// end the line and forge another, or colour a terminal.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl Escaped<'_> {
    fn needs_escape(c: char) -> bool {
        c.is_control() || matches!(c, '\\' | '\u{2028}' | '\u{2029}')
    }
}

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        if !self.0.chars().any(Self::needs_escape) {
            return f.write_str(self.0);
        }
        for c in self.0.chars() {
            if Self::needs_escape(c) {
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use oauth_core::testing::Fixture;
    use oauth_core::{Authority, Error, ErrorCode, SecretHash, SecretVerifier, Services};
    use oauth_store_mem::MemStore;

    use super::{Escaped, wait_for_slot_patiently};

    /// A verifier whose every check runs until the test ends: the queue of a
    /// slot it holds never moves.
    #[derive(Debug)]
    struct NeverDone;

    #[async_trait]
    impl SecretVerifier for NeverDone {
        async fn verify(&self, _: Option<&SecretHash>, _: &str) -> oauth_core::Result<bool> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_check_that_has_started_is_never_shed_however_long_it_runs() {
        // A check (an Argon2 verification in its queue, say) that takes far
        // longer than the bound on waiting for a slot still gets its answer.
        let slow = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(7)
        };
        let answer = wait_for_slot_patiently(Duration::from_millis(50), ErrorCode::InvalidClient, slow).await;
        assert!(matches!(answer, Ok(7)), "{answer:?}");
    }

    #[tokio::test]
    async fn a_wait_for_a_slot_in_a_queue_that_does_not_move_is_answered_busy() {
        let f = Fixture::new(Arc::new(MemStore::default()), None).await.unwrap();
        let authority = Authority::new(
            f.authority.settings().clone(),
            Services { verifier: Arc::new(NeverDone), ..f.authority.services().clone() },
        );
        let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        // Ten checks fill the client's limit of 10 and never settle.
        let mut holders = Vec::new();
        for _ in 0..10 {
            let authority = authority.clone();
            holders.push(tokio::spawn(async move {
                authority.authenticate_client(&Fixture::confidential_client(), peer).await.map(|_| ())
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let credentials = Fixture::confidential_client();
        let waiting = authority.authenticate_client(&credentials, peer);
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            wait_for_slot_patiently(Duration::from_millis(100), ErrorCode::InvalidClient, waiting),
        )
        .await;
        assert!(matches!(answer, Ok(Err(Error::ThrottleBusy { code: ErrorCode::InvalidClient }))), "{answer:?}");
        // The holders were never cancelled: their checks are still running.
        assert!(holders.iter().all(|h| !h.is_finished()));
        for h in holders {
            h.abort();
        }
    }

    /// A verifier whose every check takes a moment, then passes.
    #[derive(Debug)]
    struct Moment(Duration);

    #[async_trait]
    impl SecretVerifier for Moment {
        async fn verify(&self, _: Option<&SecretHash>, _: &str) -> oauth_core::Result<bool> {
            tokio::time::sleep(self.0).await;
            Ok(true)
        }
    }

    #[tokio::test]
    async fn a_wait_for_a_slot_in_a_queue_that_moves_is_never_answered_busy() {
        // One place for the client from this address, checks of 40 ms, and
        // twelve requests at once: the last waits about 480 ms, longer than
        // the patience of 300 ms, but the queue moves every 40 ms. A settle
        // wakes only the first waiter, so the others must still see it move.
        let f = Fixture::new(Arc::new(MemStore::default()), None).await.unwrap();
        let mut settings = f.authority.settings().clone();
        settings.throttle.max_failures_per_account = 1;
        let authority = Authority::new(
            settings,
            Services { verifier: Arc::new(Moment(Duration::from_millis(40))), ..f.authority.services().clone() },
        );
        let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)));
        let requests: Vec<_> = (0..12)
            .map(|_| {
                let authority = authority.clone();
                tokio::spawn(async move {
                    let credentials = Fixture::confidential_client();
                    let check = authority.authenticate_client(&credentials, peer);
                    wait_for_slot_patiently(Duration::from_millis(300), ErrorCode::InvalidClient, check)
                        .await
                        .map(|_| ())
                })
            })
            .collect();
        for request in requests {
            let answer = request.await.unwrap();
            assert!(answer.is_ok(), "a moving queue was answered {answer:?}");
        }
    }

    #[test]
    fn log_values_escape_control_characters_so_no_line_can_be_forged() {
        let forged = "x\nINFO request method=GET path=/admin status=200 client_id=root";
        assert_eq!(Escaped(forged).to_string(), "x\\nINFO request method=GET path=/admin status=200 client_id=root");
        assert_eq!(Escaped("\u{1b}[31mred\r\t\\").to_string(), "\\u{1b}[31mred\\r\\t\\\\");
        assert_eq!(Escaped("a\u{2028}b\u{85}c").to_string(), "a\\u{2028}b\\u{85}c");
        assert_eq!(Escaped("pgo.example.org é").to_string(), "pgo.example.org é");
    }
}
