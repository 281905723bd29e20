//! `/authorize` and its pages: the request, login, and consent.
//!
//! The browser's way: `GET /authorize` answers the login page (200) and sets a
//! cookie that the session is bound to. `POST /authorize/login` answers 303: to
//! `GET /authorize/consent`, to the client with `access_denied`, or back to
//! `GET /authorize/login` after bad credentials. `POST /authorize/consent`
//! answers 303 to the client.
//!
//! CSRF: the session stores the SHA-256 of the cookie; every form carries a
//! token derived from the cookie and the session handle. A POST must bring the
//! cookie, a matching token, and a session bound to that cookie.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use oauth_core::{AuthorizationSession, AuthorizeRejection, Client, Error, LoginOutcome, SessionId, TokenHash};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Frontend;
use crate::pages::{self, Form};
use crate::request::{Params, ReadError, cookie, read_params};
use crate::response::{self, Body};

impl Frontend {
    fn cookie_name(&self) -> &'static str {
        // `__Host-` pins the cookie to this origin (Secure, Path=/, no Domain).
        if self.secure { "__Host-oauth_browser" } else { "oauth_browser" }
    }

    fn error_page(&self, err: &Error) -> Response<Body> {
        let (title, message) = match err {
            Error::UnknownClient => ("Unknown application", "The application that sent you here is not registered."),
            Error::InvalidRedirectUri => (
                "Invalid return address",
                "The application's return address is not registered, so you cannot be sent back to it.",
            ),
            Error::SessionExpired => {
                ("Session expired", "This sign-in took too long. Go back to the application and start again.")
            }
            Error::Store(_) => {
                ("Temporarily unavailable", "The service is temporarily unavailable. Try again in a moment.")
            }
            _ => ("Cannot continue", err.description()),
        };
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
        response::html(status, pages::error(&self.prefix, title, message))
    }

    fn bad_form(&self) -> Response<Body> {
        let message = "This form is no longer valid. Go back to the application and start again.";
        response::html(StatusCode::BAD_REQUEST, pages::error(&self.prefix, "Cannot continue", message))
    }

    fn read_failed(&self, e: ReadError) -> Response<Body> {
        match e {
            ReadError::Invalid(err) => self.error_page(&err),
            other => response::read_error(other, self.issuer()),
        }
    }

    /// `GET /authorize`.
    pub(crate) async fn authorize(&self, parts: &Parts) -> Response<Body> {
        let params = match Params::from_form(parts.uri.query().unwrap_or("").as_bytes()) {
            Ok(p) => p,
            Err(e) => return self.error_page(&e),
        };
        let req = super::token::authorize_request(&params);
        let browser = match cookie(&parts.headers, self.cookie_name()).filter(|c| is_secret(c)) {
            Some(c) => c,
            None => match self.new_secret() {
                Ok(c) => c,
                Err(e) => return self.error_page(&e),
            },
        };
        match self.authority.authorize(&req, Some(TokenHash::of(&browser))).await {
            Ok((session, client)) => {
                let mut r = self.login_form(&session, &client, &browser, None, StatusCode::OK);
                self.set_cookie(&mut r, &browser);
                r
            }
            Err(AuthorizeRejection::Page(e)) => self.error_page(&e),
            Err(AuthorizeRejection::Redirect { location, .. }) => response::see_other(&location),
        }
    }

    /// `GET /authorize/login?session=…`: the login page again, after bad
    /// credentials.
    pub(crate) async fn login_page(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        match self.bound_session(parts, &params, false).await {
            Ok((session, client, browser)) => {
                let message = params.get("failed").map(|_| "Wrong username or password.");
                self.login_form(&session, &client, &browser, message, StatusCode::OK)
            }
            Err(r) => r,
        }
    }

    /// `POST /authorize/login`.
    pub(crate) async fn login<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
    ) -> Response<Body> {
        let params = match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
            Ok(p) => p,
            Err(e) => return self.read_failed(e),
        };
        let (session, client, browser) = match self.bound_session(parts, &params, true).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
            return self.see_login_again(&session);
        };
        match self.authority.login(session.id(), username, password, Some(ip)).await {
            Ok(LoginOutcome::Consent(s)) => {
                response::see_other(&format!("{}/authorize/consent?session={}", self.prefix, s.id()))
            }
            Ok(LoginOutcome::Denied(location)) => response::see_other(&location),
            Err(Error::InvalidGrant(_)) => {
                self.metrics.auth_failure("login");
                self.see_login_again(&session)
            }
            Err(Error::Throttled { retry_after, .. }) => {
                let minutes = retry_after.div_ceil(60);
                let message = format!("Too many failed sign-in attempts. Try again in {minutes} minute(s).");
                let mut r = self.login_form(&session, &client, &browser, Some(&message), StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                r
            }
            Err(e) => self.error_page(&e),
        }
    }

    /// `GET /authorize/consent?session=…`.
    pub(crate) async fn consent_page(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        match self.bound_session(parts, &params, false).await {
            Ok((session, client, browser)) => {
                let scope = match session.state() {
                    oauth_core::SessionState::ResourceChecked { scope, .. } => scope.clone(),
                    _ => {
                        return self
                            .error_page(&Error::IllegalTransition { from: session.state().name(), to: "Approved" });
                    }
                };
                let form = self.form(&session, &client, &browser, &scope);
                response::html(StatusCode::OK, pages::consent(&form))
            }
            Err(r) => r,
        }
    }

    /// `POST /authorize/consent`.
    pub(crate) async fn consent<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Response<Body> {
        let params = match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
            Ok(p) => p,
            Err(e) => return self.read_failed(e),
        };
        let (session, _, _) = match self.bound_session(parts, &params, true).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let approve = match params.get("decision") {
            Some("approve") => true,
            Some("deny") => false,
            _ => return self.bad_form(),
        };
        match self.authority.decide(session.id(), approve).await {
            Ok(location) => response::see_other(&location),
            Err(e) => self.error_page(&e),
        }
    }

    /// Loads the session named by the `session` parameter and checks that it is
    /// bound to this browser's cookie, and (for a POST) that the form's CSRF
    /// token matches.
    async fn bound_session(
        &self,
        parts: &Parts,
        params: &Params,
        post: bool,
    ) -> Result<(AuthorizationSession, std::sync::Arc<Client>, String), Response<Body>> {
        let id = params.get("session").and_then(SessionId::parse).ok_or_else(|| self.bad_form())?;
        let browser =
            cookie(&parts.headers, self.cookie_name()).filter(|c| is_secret(c)).ok_or_else(|| self.bad_form())?;
        if post {
            let expected = csrf_token(&browser, id);
            let sent = params.get("csrf").unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(self.bad_form());
            }
        }
        let (session, client) = self.authority.session(id).await.map_err(|e| self.error_page(&e))?;
        let bound = session
            .browser_binding()
            .is_some_and(|b| bool::from(b.as_bytes().ct_eq(TokenHash::of(&browser).as_bytes())));
        if !bound {
            return Err(self.bad_form());
        }
        Ok((session, client, browser))
    }

    fn form<'a>(
        &'a self,
        session: &AuthorizationSession,
        client: &'a Client,
        browser: &str,
        scope: &oauth_core::Scope,
    ) -> Form<'a> {
        let scope_words = scope
            .iter()
            .map(|s| self.config.scope_descriptions.get(s).cloned().unwrap_or_else(|| s.to_owned()))
            .collect();
        Form {
            prefix: &self.prefix,
            client_name: client.name(),
            scope_words,
            session: session.id().to_string(),
            csrf: csrf_token(browser, session.id()),
        }
    }

    fn login_form(
        &self,
        session: &AuthorizationSession,
        client: &Client,
        browser: &str,
        message: Option<&str>,
        status: StatusCode,
    ) -> Response<Body> {
        let form = self.form(session, client, browser, session.requested_scope());
        response::html(status, pages::login(&form, message))
    }

    fn see_login_again(&self, session: &AuthorizationSession) -> Response<Body> {
        response::see_other(&format!("{}/authorize/login?session={}&failed=1", self.prefix, session.id()))
    }

    fn new_secret(&self) -> Result<String, Error> {
        let mut b = [0u8; 32];
        self.authority.services().secrets.fill(&mut b)?;
        Ok(URL_SAFE_NO_PAD.encode(b))
    }

    fn set_cookie(&self, r: &mut Response<Body>, value: &str) {
        let secure = if self.secure { "; Secure" } else { "" };
        let path = if self.secure { "/".to_owned() } else { format!("{}/", self.prefix) };
        let cookie = format!("{}={value}; Path={path}; HttpOnly; SameSite=Lax{secure}", self.cookie_name());
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A browser secret we issued: 43 base64url characters (256 bits).
fn is_secret(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token of the forms: derived from the browser cookie and the session
/// handle, so it is worthless without both.
fn csrf_token(browser: &str, session: SessionId) -> String {
    let digest = Sha256::new()
        .chain_update(b"oauth-rs csrf\0")
        .chain_update(browser)
        .chain_update(b"\0")
        .chain_update(session.to_string())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}
