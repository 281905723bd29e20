//! CORS (the Fetch standard's protocol) for the endpoints a browser app on
//! another origin calls: the metadata documents and the JWKS for anyone,
//! `/userinfo` for the origins of the registered clients, and `/token` and
//! `/revoke` only for the origins of the client the request names.
//!
//! A client's origins are those of its redirect URIs and its
//! `allowed_cors_origins` ([`Client::allows_origin`](oauth_core::Client::allows_origin)).
//! An origin no client has gets no CORS header at all, so the browser keeps
//! the answer from the page. `Access-Control-Allow-Credentials` is never sent:
//! these endpoints take tokens and client credentials in headers and bodies,
//! never the browser's cookies, so a page cannot make a request in the user's
//! name.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use oauth_core::{ClientId, WebOrigin};

use crate::Frontend;
use crate::frontend::Route;
use crate::response::Body;

/// Who may read a route's answers from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cors {
    /// Nobody: the pages (a browser navigates to them), `/introspect` (for
    /// resource servers), `/healthz` and `/metrics`.
    None,
    /// Anyone (`*`): the metadata documents and the JWKS, which are public.
    Public,
    /// The origins of any registered client: `/userinfo`, whose bearer token
    /// says which client is asking.
    AnyClient,
    /// The origins of the client the request names: `/token`, `/revoke`.
    RequestClient,
}

impl Cors {
    pub(crate) fn of(route: Route) -> Cors {
        match route {
            Route::Metadata | Route::Jwks => Cors::Public,
            Route::Userinfo => Cors::AnyClient,
            Route::Token | Route::Revoke | Route::DeviceAuthorization => Cors::RequestClient,
            _ => Cors::None,
        }
    }
}

/// The request headers a page may send: client authentication and bearer
/// tokens, the form's type, and (for the second stage) DPoP proofs.
const ALLOW_HEADERS: &str = "authorization, content-type, dpop";
/// The response headers a page may read besides the safelisted ones: the
/// challenge of a 401, the wait of a 429, and the DPoP nonce.
const EXPOSE_HEADERS: &str = "www-authenticate, retry-after, dpop-nonce";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The `Origin` a browser sent, if it is a web origin.
fn origin(headers: &HeaderMap) -> Option<WebOrigin> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    WebOrigin::parse(value.to_str().ok()?).ok()
}

impl Frontend {
    /// The answer to a preflight `OPTIONS` on a route with CORS: 204, and the
    /// CORS headers when the origin may call the route with the method it
    /// asks for. A preflight does not say which client will call, so for
    /// `/token` and `/revoke` it is enough that some client has the origin;
    /// the answer to the real request is then bound to the client it names.
    pub(crate) async fn preflight(&self, route: Route, headers: &HeaderMap) -> Response<Body> {
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let allow = format!("OPTIONS, {}", route.allow());
        if let Ok(v) = HeaderValue::from_str(&allow) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        let policy = Cors::of(route);
        if policy != Cors::Public {
            r.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
        }
        let asked =
            headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        let (Some(origin), Some(method)) = (origin(headers), asked.filter(|m| route.serves(m))) else {
            return r;
        };
        let allowed = match policy {
            Cors::Public => Some(HeaderValue::from_static("*")),
            Cors::AnyClient | Cors::RequestClient => {
                let known = self.authority.services().clients.any_client_allows_origin(&origin).await;
                known.unwrap_or(false).then(|| HeaderValue::from_str(origin.as_str()).ok()).flatten()
            }
            Cors::None => None,
        };
        if let Some(value) = allowed {
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            // The method asked for, which the route serves (`/userinfo` serves
            // two, and a preflight asks about one).
            if let Ok(m) = HeaderValue::from_str(method.as_str()) {
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m);
            }
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        }
        r
    }

    /// Adds the CORS headers to the answer of a request (not a preflight) on
    /// `route`; `client_id` is the client the request named, if any.
    pub(crate) async fn add_cors(
        &self,
        route: Route,
        headers: &HeaderMap,
        client_id: Option<&str>,
        response: &mut Response<Body>,
    ) {
        let policy = Cors::of(route);
        match policy {
            Cors::None => return,
            Cors::Public => {
                response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                return;
            }
            Cors::AnyClient | Cors::RequestClient => {
                response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
            }
        }
        let Some(origin) = origin(headers) else { return };
        let clients = &self.authority.services().clients;
        let allowed = match policy {
            Cors::AnyClient => clients.any_client_allows_origin(&origin).await.unwrap_or(false),
            _ => match client_id.and_then(|id| ClientId::parse(id).ok()) {
                Some(id) => clients.client(&id).await.ok().flatten().is_some_and(|c| c.allows_origin(&origin)),
                None => false,
            },
        };
        if let (true, Ok(value)) = (allowed, HeaderValue::from_str(origin.as_str())) {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        }
    }
}
