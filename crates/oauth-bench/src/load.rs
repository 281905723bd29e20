//! The load: `wrk` for single requests, and a small driver for what `wrk`
//! cannot do (a refresh chain, where each request needs the previous answer,
//! and the authorization-code flow through its pages).
//!
//! Both keep connections alive and run a fixed number of connections (the
//! concurrency) in a closed loop for a fixed time.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest;

use crate::Error;

/// What one load run measured, from the client's side.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Load {
    /// Units completed: requests for `wrk`, chains or flows for the driver.
    pub(crate) units: u64,
    pub(crate) seconds: f64,
    pub(crate) errors: u64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) p999: Duration,
}

impl Load {
    pub(crate) fn per_second(&self) -> f64 {
        self.units as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// One request for `wrk` to repeat.
#[derive(Debug, Clone)]
pub(crate) struct Single {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    /// A form body, or empty.
    pub(crate) body: String,
    /// The `Authorization` header, or empty.
    pub(crate) authorization: String,
}

/// `wrk`'s script: the request from the environment, and one `BENCH` line of
/// figures at the end (latencies in microseconds).
const WRK_SCRIPT: &str = r#"
wrk.method = os.getenv("BENCH_METHOD")
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH") or ""
if auth ~= "" then wrk.headers["Authorization"] = auth end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %.0f %.0f %.0f %.0f %.0f %.0f\n",
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

/// Runs `wrk` with one thread and `connections` connections against
/// `base` + `single.path` for `time`.
pub(crate) fn wrk(dir: &Path, base: &str, single: &Single, connections: usize, time: Duration) -> Result<Load, Error> {
    let script = dir.join("bench.lua");
    if !script.exists() {
        std::fs::write(&script, WRK_SCRIPT)?;
    }
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{}s", time.as_secs().max(1)), "--timeout", "30s"])
        .arg("-s")
        .arg(&script)
        .arg(format!("{base}{}", single.path))
        .env("BENCH_METHOD", single.method)
        .env("BENCH_BODY", &single.body)
        .env("BENCH_AUTH", &single.authorization)
        .output()
        .map_err(|e| Error::Setup(format!("cannot run wrk ({e}); on Debian: apt-get install wrk")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("BENCH ")).ok_or_else(|| {
        Error::Setup(format!("wrk gave no figures: {stdout} {}", String::from_utf8_lossy(&out.stderr)))
    })?;
    let n: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [requests, micros, errors, p50, p99, p999] = n[..] else {
        return Err(Error::Setup(format!("wrk figures: {line}")));
    };
    let us = |v: f64| Duration::from_micros(v as u64);
    Ok(Load {
        units: requests as u64,
        seconds: micros / 1e6,
        errors: errors as u64,
        p50: us(p50),
        p99: us(p99),
        p999: us(p999),
    })
}

/// The bench client's credentials and the account, as the driver sends them.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) basic: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) username: String,
    pub(crate) password: String,
    /// A DPoP-bound access token of the account for `dpop_userinfo`, minted
    /// by the server (empty until then) and sent to the ceiling too.
    pub(crate) dpop_token: String,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive client for the driver.
fn client(connections: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build(connector)
}

/// One answer, whole.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(header::HeaderName, &str)],
    form: Option<String>,
) -> Result<Answer, Error> {
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Full::new(Bytes::from(f))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = client.request(req.body(body)?).await.map_err(|e| Error::Setup(format!("{url}: {e}")))?;
    let text = |h: header::HeaderName| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, location, cookie) = (resp.status(), text(header::LOCATION), text(header::SET_COOKIE));
    let content_type = text(header::CONTENT_TYPE);
    let body = resp.into_body().collect().await.map_err(|e| Error::Setup(e.to_string()))?.to_bytes();
    Ok(Answer { status, location, cookie, content_type, body })
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(pairs);
    s.finish()
}

/// Gets a fresh refresh token with the password grant.
pub(crate) async fn password_grant(base: &str, creds: &Credentials) -> Result<String, Error> {
    let c = client(1);
    let body = form(&[("grant_type", "password"), ("username", &creds.username), ("password", &creds.password)]);
    let a =
        send(&c, Method::POST, &format!("{base}/token"), &[(header::AUTHORIZATION, &creds.basic)], Some(body)).await?;
    json_field(&a, "refresh_token")
}

fn json_field(a: &Answer, field: &str) -> Result<String, Error> {
    if a.status != StatusCode::OK {
        return Err(Error::Setup(format!("status {}: {}", a.status, String::from_utf8_lossy(&a.body))));
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body).map_err(|e| Error::Setup(e.to_string()))?;
    v[field].as_str().map(str::to_owned).ok_or_else(|| Error::Setup(format!("no {field} in the answer")))
}

/// What the driver repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// One `refresh_token` grant per unit; each worker follows its own chain.
    Refresh,
    /// authorize, login, consent page, consent, token: five requests per unit.
    Code,
    /// `client_credentials` with Basic and a fresh DPoP proof per request.
    DpopClientCredentials,
    /// `GET /userinfo` with a DPoP-bound token (the seed) and a fresh proof
    /// with `ath` per request.
    DpopUserinfo,
    /// `client_credentials` authenticated by a fresh `private_key_jwt`
    /// assertion per request.
    AssertionClientCredentials,
    /// The same with `openid` (and a `nonce`): the token answer has an ID
    /// token.
    OidcCode,
    /// Device polls (RFC 8628) at the client's pace: each worker round-robins
    /// its own pending device codes (the seed, one per line) and polls each
    /// no sooner than the interval (1 s in the bench config) after its last
    /// poll; every answer is `authorization_pending`.
    DevicePoll,
    /// Single sign-on: each worker logs in and consents once (not counted);
    /// then authorize (answered with a code at once: a live session and a
    /// remembered consent) and token, with `openid`: two requests per unit.
    SsoCode,
}

/// Runs `flow` on `connections` workers for `time`. For `Refresh`, `seeds`
/// holds one refresh token per worker, and with `renew_after` a worker starts
/// a new family (a password grant, not counted) once its family is that old,
/// before the family's lifetime ends it.
pub(crate) async fn drive(
    flow: Flow,
    base: &str,
    creds: &Credentials,
    seeds: Vec<String>,
    connections: usize,
    time: Duration,
    renew_after: Option<Duration>,
) -> Result<Load, Error> {
    let client = client(connections);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (client, base, creds) = (client.clone(), base.to_owned(), creds.clone());
        let errors = errors.clone();
        let mut token = seeds.get(worker).cloned().unwrap_or_default();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut family_since = Instant::now();
            let mut devices: Vec<(String, Option<Instant>)> = match flow {
                Flow::DevicePoll => token.lines().map(|c| (c.to_owned(), None)).collect(),
                _ => Vec::new(),
            };
            let mut next_device = 0;
            while started.elapsed() < time {
                if flow == Flow::DevicePoll {
                    // Keep the pace: wait until this code's interval is over,
                    // with a margin for the two clocks.
                    if let Some(Some(last)) = devices.get(next_device).map(|d| d.1) {
                        let due = DEVICE_INTERVAL + Duration::from_millis(20);
                        if let Some(wait) = due.checked_sub(last.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                if renew_after.is_some_and(|after| family_since.elapsed() >= after) {
                    match password_grant(&base, &creds).await {
                        Ok(fresh) => (token, family_since) = (fresh, Instant::now()),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                let t = Instant::now();
                let outcome = match flow {
                    Flow::Refresh => refresh(&client, &base, &creds, &token).await.map(|next| token = next),
                    Flow::Code => code_flow(&client, &base, &creds, worker, false).await.map(|_| ()),
                    Flow::OidcCode => code_flow(&client, &base, &creds, worker, true).await.map(|_| ()),
                    // The seed is this worker's signed-in browser's cookies.
                    Flow::SsoCode => sso_flow(&client, &base, &creds, worker, &token).await,
                    Flow::DpopClientCredentials => dpop_client_credentials(&client, &base, &creds).await.map(|_| ()),
                    Flow::DpopUserinfo => dpop_userinfo(&client, &base, &token).await.map(|_| ()),
                    Flow::AssertionClientCredentials => assertion_client_credentials(&client, &base).await.map(|_| ()),
                    Flow::DevicePoll => {
                        let count = devices.len();
                        match devices.get_mut(next_device) {
                            Some(device) => {
                                device.1 = Some(Instant::now());
                                next_device = (next_device + 1) % count;
                                device_poll(&client, &base, &creds, &device.0).await
                            }
                            None => Err(Error::Setup("no device codes".into())),
                        }
                    }
                };
                match outcome {
                    Ok(()) => latencies.push(t.elapsed()),
                    // A broken chain cannot go on; count it and stop this worker.
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.map_err(|e| Error::Setup(e.to_string()))?);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    Ok(Load {
        units: all.len() as u64,
        seconds,
        errors: errors.load(Ordering::Relaxed),
        p50: pct(0.50).unwrap_or_default(),
        p99: pct(0.99).unwrap_or_default(),
        p999: pct(0.999).unwrap_or_default(),
    })
}

async fn refresh(client: &HttpClient, base: &str, creds: &Credentials, token: &str) -> Result<String, Error> {
    let body = form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
    let url = format!("{base}/token");
    let a = send(client, Method::POST, &url, &[(header::AUTHORIZATION, &creds.basic)], Some(body)).await?;
    json_field(&a, "refresh_token")
}

/// The device poll interval of the bench config (`[device] interval`).
pub(crate) const DEVICE_INTERVAL: Duration = Duration::from_secs(1);

/// Makes `n` pending device codes of the bench client, over 32 connections
/// (more at once would meet the server's connection limit).
pub(crate) async fn device_codes(base: &str, creds: &Credentials, n: usize) -> Result<Vec<String>, Error> {
    const CONNECTIONS: usize = 32;
    let c = client(CONNECTIONS);
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let (c, url, basic) = (c.clone(), format!("{base}/device_authorization"), creds.basic.clone());
        let count = n / CONNECTIONS + usize::from(i < n % CONNECTIONS);
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::with_capacity(count);
            for _ in 0..count {
                let body = Some(form(&[("scope", "read")]));
                let a = send(&c, Method::POST, &url, &[(header::AUTHORIZATION, &basic)], body).await?;
                codes.push(json_field(&a, "device_code")?);
            }
            Ok::<_, Error>(codes)
        }));
    }
    let mut codes = Vec::with_capacity(n);
    for t in tasks {
        codes.extend(t.await.map_err(|e| Error::Setup(e.to_string()))??);
    }
    Ok(codes)
}

/// One poll of a pending device code: it must answer `authorization_pending`.
async fn device_poll(client: &HttpClient, base: &str, creds: &Credentials, code: &str) -> Result<(), Error> {
    let body = form(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", code)]);
    let url = format!("{base}/token");
    let a = send(client, Method::POST, &url, &[(header::AUTHORIZATION, &creds.basic)], Some(body)).await?;
    let v: serde_json::Value = serde_json::from_slice(&a.body).map_err(|e| Error::Setup(e.to_string()))?;
    match (a.status, v["error"].as_str()) {
        (StatusCode::BAD_REQUEST, Some("authorization_pending")) => Ok(()),
        (status, error) => Err(Error::Setup(format!("device poll: {status} {error:?}"))),
    }
}

/// The `DPoP` request header.
const DPOP: header::HeaderName = header::HeaderName::from_static("dpop");

async fn dpop_client_credentials(client: &HttpClient, base: &str, creds: &Credentials) -> Result<Answer, Error> {
    let url = format!("{base}/token");
    let proof = crate::client_jwt::dpop_proof("POST", &url, None)?;
    let headers = [(header::AUTHORIZATION, creds.basic.as_str()), (DPOP, proof.as_str())];
    let a = send(client, Method::POST, &url, &headers, Some(form(&[("grant_type", "client_credentials")]))).await?;
    bound(&a)?;
    Ok(a)
}

async fn dpop_userinfo(client: &HttpClient, base: &str, token: &str) -> Result<Answer, Error> {
    let url = format!("{base}/userinfo");
    let proof = crate::client_jwt::dpop_proof("GET", &url, Some(token))?;
    let scheme = format!("DPoP {token}");
    let a = send(client, Method::GET, &url, &[(header::AUTHORIZATION, &scheme), (DPOP, &proof)], None).await?;
    json_field(&a, "sub")?;
    Ok(a)
}

async fn assertion_client_credentials(client: &HttpClient, base: &str) -> Result<Answer, Error> {
    let assertion = crate::client_jwt::assertion(crate::process::KEYS_CLIENT_ID, base)?;
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", &assertion),
    ]);
    let a = send(client, Method::POST, &format!("{base}/token"), &[], Some(body)).await?;
    json_field(&a, "access_token")?;
    Ok(a)
}

/// One request of a flow that is one request per unit and signs each (the
/// DPoP and assertion flows), with `token` the bound access token of
/// `DpopUserinfo`: the answer's status, content type and body, for the
/// ceiling to serve while the same driver loads it.
pub(crate) async fn sample(
    flow: Flow,
    base: &str,
    creds: &Credentials,
    token: &str,
) -> Result<(StatusCode, String, Bytes), Error> {
    let c = client(1);
    let a = match flow {
        Flow::DpopClientCredentials => dpop_client_credentials(&c, base, creds).await?,
        Flow::DpopUserinfo => dpop_userinfo(&c, base, token).await?,
        Flow::AssertionClientCredentials => assertion_client_credentials(&c, base).await?,
        other => return Err(Error::Setup(format!("{other:?} is not one request per unit"))),
    };
    Ok((a.status, a.content_type.unwrap_or_else(|| "text/plain".into()), a.body))
}

/// A token answer whose access token is DPoP-bound.
fn bound(a: &Answer) -> Result<(), Error> {
    match json_field(a, "token_type")?.as_str() {
        "DPoP" => Ok(()),
        other => Err(Error::Setup(format!("token_type {other}, not DPoP"))),
    }
}

/// A DPoP-bound access token of the account, for the `/userinfo` scenario.
pub(crate) async fn dpop_password_grant(base: &str, creds: &Credentials) -> Result<String, Error> {
    let c = client(1);
    let url = format!("{base}/token");
    let proof = crate::client_jwt::dpop_proof("POST", &url, None)?;
    let body = form(&[("grant_type", "password"), ("username", &creds.username), ("password", &creds.password)]);
    let a = send(&c, Method::POST, &url, &[(header::AUTHORIZATION, &creds.basic), (DPOP, &proof)], Some(body)).await?;
    bound(&a)?;
    json_field(&a, "access_token")
}

/// The value of the hidden input `name` in a page.
fn hidden(page: &[u8], name: &str) -> Result<String, Error> {
    let html = String::from_utf8_lossy(page);
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).ok_or_else(|| Error::Setup(format!("no hidden {name}")))? + marker.len();
    Ok(html[start..].split('"').next().unwrap_or_default().to_owned())
}

/// The PKCE verifier of `worker`, and its challenge.
fn pkce(worker: usize) -> (String, String) {
    let verifier = format!("bench-verifier-{worker:08}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request's query; with `openid`, a `nonce` too. Every
/// request asks for the consent page (`prompt=consent`), as a first visit
/// would: consent is remembered once given.
fn authorize_query(creds: &Credentials, challenge: &str, openid: bool, prompt: &str) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", creds.client_id.as_str()),
        ("redirect_uri", creds.redirect_uri.as_str()),
        ("scope", if openid { "openid read" } else { "read" }),
        ("state", "bench"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if openid {
        pairs.push(("nonce", "bench-nonce"));
    }
    if !prompt.is_empty() {
        pairs.push(("prompt", prompt));
    }
    form(&pairs)
}

/// The code in a client URL.
fn code_of(back: &str) -> Result<String, Error> {
    back.split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "code"))
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Error::Setup(format!("no code in {back}")))
}

/// Redeems `code`; the token answer must have `field`.
async fn exchange(
    client: &HttpClient,
    base: &str,
    creds: &Credentials,
    code: &str,
    verifier: &str,
    field: &str,
) -> Result<(), Error> {
    let exchange = form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &creds.redirect_uri),
        ("code_verifier", verifier),
    ]);
    let a =
        send(client, Method::POST, &format!("{base}/token"), &[(header::AUTHORIZATION, &creds.basic)], Some(exchange))
            .await?;
    json_field(&a, field).map(|_| ())
}

/// Signs `n` browsers in (one code flow with `openid` each, which also
/// remembers the consent); the cookies (browser binding and session) each
/// sends from then on, one per worker of [`Flow::SsoCode`].
pub(crate) async fn sign_in_each(base: &str, creds: &Credentials, n: usize) -> Result<Vec<String>, Error> {
    let c = client(n);
    let mut tasks = Vec::new();
    for worker in 0..n {
        let (c, base, creds) = (c.clone(), base.to_owned(), creds.clone());
        tasks.push(tokio::spawn(async move { code_flow(&c, &base, &creds, worker, true).await }));
    }
    let mut cookies = Vec::new();
    for t in tasks {
        cookies.push(t.await.map_err(|e| Error::Setup(e.to_string()))??);
    }
    Ok(cookies)
}

/// One authorization by single sign-on: a code at once (live session,
/// remembered consent), then the token answer with its ID token.
async fn sso_flow(
    client: &HttpClient,
    base: &str,
    creds: &Credentials,
    worker: usize,
    cookies: &str,
) -> Result<(), Error> {
    let (verifier, challenge) = pkce(worker);
    let query = authorize_query(creds, &challenge, true, "");
    let a = send(client, Method::GET, &format!("{base}/authorize?{query}"), &[(header::COOKIE, cookies)], None).await?;
    let back = a.location.filter(|_| a.status == StatusCode::SEE_OTHER).ok_or(Error::Setup("sso authorize".into()))?;
    exchange(client, base, creds, &code_of(&back)?, &verifier, "id_token").await
}

/// The authorization-code flow as a browser and a client back end walk it
/// (with `openid`: and the token answer must have an ID token). Answers the
/// browser's cookies at the end (the binding and the session cookie).
async fn code_flow(
    client: &HttpClient,
    base: &str,
    creds: &Credentials,
    worker: usize,
    openid: bool,
) -> Result<String, Error> {
    let origin = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let (verifier, challenge) = pkce(worker);
    let query = authorize_query(creds, &challenge, openid, "consent");
    let page = send(client, Method::GET, &format!("{base}/authorize?{query}"), &[], None).await?;
    let cookie = page.cookie.as_deref().and_then(|c| c.split(';').next()).unwrap_or_default().to_owned();
    if page.status != StatusCode::OK || cookie.is_empty() {
        return Err(Error::Setup(format!("authorize: {}", page.status)));
    }
    let with_cookie = [(header::COOKIE, cookie.as_str())];
    let login = form(&[
        ("session", &hidden(&page.body, "session")?),
        ("csrf", &hidden(&page.body, "csrf")?),
        ("username", &creds.username),
        ("password", &creds.password),
    ]);
    let a = send(client, Method::POST, &format!("{base}/authorize/login"), &with_cookie, Some(login)).await?;
    let session = a.cookie.as_deref().and_then(|c| c.split(';').next()).unwrap_or_default().to_owned();
    let consent_page = a.location.filter(|_| a.status == StatusCode::SEE_OTHER).ok_or(Error::Setup("login".into()))?;
    let page = send(client, Method::GET, &format!("{origin}{consent_page}"), &with_cookie, None).await?;
    let consent = form(&[
        ("session", &hidden(&page.body, "session")?),
        ("csrf", &hidden(&page.body, "csrf")?),
        ("decision", "approve"),
    ]);
    let a = send(client, Method::POST, &format!("{base}/authorize/consent"), &with_cookie, Some(consent)).await?;
    let back = a.location.filter(|_| a.status == StatusCode::SEE_OTHER).ok_or(Error::Setup("consent".into()))?;
    exchange(client, base, creds, &code_of(&back)?, &verifier, if openid { "id_token" } else { "access_token" })
        .await?;
    Ok(format!("{cookie}; {session}"))
}

/// Sends `single` once; returns the answer's status, content type and body
/// (what the ceiling then serves for that route).
pub(crate) async fn fetch(base: &str, single: &Single) -> Result<(StatusCode, String, Bytes), Error> {
    let method = Method::from_bytes(single.method.as_bytes()).map_err(|e| Error::Setup(e.to_string()))?;
    let auth = [(header::AUTHORIZATION, single.authorization.as_str())];
    let headers = if single.authorization.is_empty() { &auth[..0] } else { &auth[..] };
    let body = (!single.body.is_empty()).then(|| single.body.clone());
    let a = send(&client(1), method, &format!("{base}{}", single.path), headers, body).await?;
    Ok((a.status, a.content_type.unwrap_or_else(|| "text/plain".into()), a.body))
}
