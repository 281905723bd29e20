//! `/authorize` and its pages: the request, login, and consent.
//!
//! The browser's way: `GET /authorize` answers the login page (200) and sets a
//! cookie that the session is bound to; with a live single sign-on session it
//! answers the consent page instead, or (consent remembered) 303 straight to
//! the client. `POST /authorize/login` answers 303: to `GET
//! /authorize/consent`, to the client (with a code when consent is remembered,
//! or `access_denied`), or back to `GET /authorize/login` after bad
//! credentials; on success it sets the single sign-on cookie. `POST
//! /authorize/consent` answers 303 to the client.
//!
//! CSRF: the session stores the SHA-256 of the cookie; every form carries a
//! token derived from the cookie and the session handle. A POST must bring the
//! cookie, a matching token, and a session bound to that cookie.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use oauth_core::{
    AuthorizationSession, AuthorizeRejection, Client, Error, ErrorCode, LoginOutcome, Prompt, SessionId, SessionState,
    SignedIn, Step, TokenHash,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Frontend;
use crate::i18n::Lang;
use crate::pages::{self, Consent, Form};
use crate::request::{Params, ReadError, cookie, read_params};
use crate::response::{self, Body};

/// The longest query an authorization request may have (SPEC), so that no
/// request stores more than that in a session.
const MAX_AUTHORIZE_QUERY: usize = 8 * 1024;

impl Frontend {
    pub(crate) fn cookie_name(&self) -> &'static str {
        // `__Host-` pins the cookie to this origin (Secure, Path=/, no Domain).
        if self.secure { "__Host-oauth_browser" } else { "oauth_browser" }
    }

    /// The single sign-on cookie's name. It is scoped to the issuer's path;
    /// `__Host-` needs `Path=/`, so an https issuer with a path gets
    /// `__Secure-` (Secure, no Domain) instead.
    fn session_cookie_name(&self) -> &'static str {
        match (self.secure, self.prefix.is_empty()) {
            (true, true) => "__Host-oauth_session",
            (true, false) => "__Secure-oauth_session",
            (false, _) => "oauth_session",
        }
    }

    /// This browser's single sign-on cookie, when it has the form of one.
    pub(crate) fn session_cookie(&self, headers: &http::HeaderMap) -> Option<String> {
        cookie(headers, self.session_cookie_name()).filter(|c| is_secret(c))
    }

    /// This browser's CSRF cookie, or a new one (`true` when new: it must be
    /// set on the answer).
    pub(crate) fn browser_cookie(&self, headers: &http::HeaderMap) -> Result<(String, bool), Error> {
        match cookie(headers, self.cookie_name()).filter(|c| is_secret(c)) {
            Some(c) => Ok((c, false)),
            None => Ok((self.new_secret()?, true)),
        }
    }

    /// The CSRF cookie, when it exists and has the form of one.
    pub(crate) fn existing_browser_cookie(&self, headers: &http::HeaderMap) -> Option<String> {
        cookie(headers, self.cookie_name()).filter(|c| is_secret(c))
    }

    pub(crate) fn error_page(&self, err: &Error, lang: Lang) -> Response<Body> {
        let t = lang.text();
        let ((title, message), detail) = match err {
            Error::UnknownClient => (t.unknown_client, None),
            Error::InvalidRedirectUri => (t.bad_redirect, None),
            Error::SessionExpired => (t.session_expired, None),
            Error::Store(_) => (t.unavailable, None),
            Error::TooManyPending { .. } => (t.too_many_pending, None),
            _ => ((t.cannot_continue, t.details), Some(err.description())),
        };
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = response::html(status, pages::error(&self.prefix, lang, title, message, detail));
        if let Error::TooManyPending { retry_after } = err {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        r
    }

    pub(crate) fn bad_form(&self, lang: Lang) -> Response<Body> {
        let (title, message) = lang.text().bad_form;
        response::html(StatusCode::BAD_REQUEST, pages::error(&self.prefix, lang, title, message, None))
    }

    pub(crate) fn read_failed(&self, e: ReadError, lang: Lang) -> Response<Body> {
        match e {
            ReadError::Invalid(err) => self.error_page(&err, lang),
            other => response::read_error(other, self.issuer()),
        }
    }

    /// The pages' language for `session` (its `ui_locales`) in a browser that
    /// sent `headers`.
    pub(crate) fn lang(&self, session: Option<&AuthorizationSession>, headers: &http::HeaderMap) -> Lang {
        Lang::pick(session.and_then(|s| s.ui_locales()).map(|u| u.as_str()), headers)
    }

    /// `GET /authorize`. `ip` is the client's address, for the cap on pending
    /// sessions.
    pub(crate) async fn authorize(&self, parts: &Parts, ip: IpAddr) -> Response<Body> {
        let query = parts.uri.query().unwrap_or("");
        if query.len() > MAX_AUTHORIZE_QUERY {
            // Nothing in it can be trusted yet, so an error page, never a redirect.
            let e = Error::InvalidRequest("the authorization request is longer than 8 KiB");
            return self.error_page(&e, Lang::pick(None, &parts.headers));
        }
        let params = match Params::from_form(query.as_bytes()) {
            Ok(p) => p,
            Err(e) => return self.error_page(&e, Lang::pick(None, &parts.headers)),
        };
        let lang = Lang::pick(params.get("ui_locales"), &parts.headers);
        let req = super::token::authorize_request(&params);
        let (browser, new_browser) = match self.browser_cookie(&parts.headers) {
            Ok(found) => found,
            Err(e) => return self.error_page(&e, lang),
        };
        let (session, client) = match self.authority.authorize(&req, Some(TokenHash::of(&browser)), Some(ip)).await {
            Ok(found) => found,
            Err(AuthorizeRejection::Page(e)) => return self.error_page(&e, lang),
            Err(AuthorizeRejection::Redirect { location, .. }) => return response::see_other(&location),
        };
        // A pushed request's `ui_locales` is in the session, not the query.
        let lang = self.lang(Some(&session), &parts.headers);
        let sso = self.session_cookie(&parts.headers);
        let mut r = match self.authority.proceed(session.id(), sso.as_deref()).await {
            Ok(Step::Redirect(location)) => return response::see_other(&location),
            Ok(Step::Login(s)) => self.login_form(&s, &client, &browser, None, StatusCode::OK, lang),
            Ok(Step::Consent(s)) => self.consent_form(&s, &client, &browser, lang).await,
            Ok(_) => self.error_page(&Error::IllegalTransition { from: "Requested", to: "unknown" }, lang),
            Err(e) => self.error_page(&e, lang),
        };
        if new_browser {
            self.set_cookie(&mut r, &browser);
        }
        r
    }

    /// `GET /authorize/login?session=…`: the login page again, after bad
    /// credentials.
    pub(crate) async fn login_page(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        match self.bound_session(parts, &params, false).await {
            Ok((session, client, browser)) => {
                let lang = self.lang(Some(&session), &parts.headers);
                let message = params.get("failed").map(|_| lang.text().wrong_password);
                self.login_form(&session, &client, &browser, message, StatusCode::OK, lang)
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
        let fallback = Lang::pick(None, &parts.headers);
        let params = match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
            Ok(p) => p,
            Err(e) => return self.read_failed(e, fallback),
        };
        let (session, client, browser) = match self.bound_session(parts, &params, true).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let lang = self.lang(Some(&session), &parts.headers);
        let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
            return self.see_login_again(&session);
        };
        let replacing = self.session_cookie(&parts.headers);
        let signed_in = self.authority.sign_in(session.id(), username, password, Some(ip), replacing.as_deref());
        match self.patiently(ErrorCode::InvalidGrant, signed_in).await {
            Ok(SignedIn { outcome, cookie }) => {
                let mut r = match outcome {
                    LoginOutcome::Consent(s) => {
                        response::see_other(&format!("{}/authorize/consent?session={}", self.prefix, s.id()))
                    }
                    LoginOutcome::Denied(location) | LoginOutcome::Approved(location) => response::see_other(&location),
                    _ => self.error_page(&Error::IllegalTransition { from: "Authenticated", to: "unknown" }, lang),
                };
                self.set_session_cookie(&mut r, &cookie);
                r
            }
            Err(Error::InvalidGrant(_)) => {
                self.metrics.auth_failure("login");
                self.see_login_again(&session)
            }
            Err(e @ (Error::Throttled { .. } | Error::ThrottleBusy { .. })) => {
                let retry_after = match e {
                    Error::Throttled { retry_after, .. } => retry_after,
                    _ => 1,
                };
                let message = (lang.text().throttled)(retry_after.div_ceil(60));
                let status = StatusCode::TOO_MANY_REQUESTS;
                let mut r = self.login_form(&session, &client, &browser, Some(&message), status, lang);
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                r
            }
            Err(e) => self.error_page(&e, lang),
        }
    }

    /// `GET /authorize/consent?session=…`.
    pub(crate) async fn consent_page(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        match self.bound_session(parts, &params, false).await {
            Ok((session, client, browser)) => {
                let lang = self.lang(Some(&session), &parts.headers);
                self.consent_form(&session, &client, &browser, lang).await
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
        let fallback = Lang::pick(None, &parts.headers);
        let params = match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
            Ok(p) => p,
            Err(e) => return self.read_failed(e, fallback),
        };
        let (session, _, _) = match self.bound_session(parts, &params, true).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let lang = self.lang(Some(&session), &parts.headers);
        let approve = match params.get("decision") {
            Some("approve") => true,
            Some("deny") => false,
            _ => return self.bad_form(lang),
        };
        match self.authority.decide(session.id(), approve).await {
            Ok(location) => response::see_other(&location),
            Err(e) => self.error_page(&e, lang),
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
        let fallback = Lang::pick(None, &parts.headers);
        let id = params.get("session").and_then(SessionId::parse).ok_or_else(|| self.bad_form(fallback))?;
        let browser = self.existing_browser_cookie(&parts.headers).ok_or_else(|| self.bad_form(fallback))?;
        if post {
            let expected = csrf_token(&browser, id);
            let sent = params.get("csrf").unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(self.bad_form(fallback));
            }
        }
        let (session, client) = self.authority.session(id).await.map_err(|e| self.error_page(&e, fallback))?;
        let bound = session
            .browser_binding()
            .is_some_and(|b| bool::from(b.as_bytes().ct_eq(TokenHash::of(&browser).as_bytes())));
        if !bound {
            return Err(self.bad_form(self.lang(Some(&session), &parts.headers)));
        }
        Ok((session, client, browser))
    }

    fn form<'a>(
        &'a self,
        session: &AuthorizationSession,
        client: &'a Client,
        browser: &str,
        scope: &oauth_core::Scope,
        lang: Lang,
    ) -> Form<'a> {
        let words = match lang {
            Lang::Nl => &self.config.scope_descriptions_nl,
            Lang::En => &self.config.scope_descriptions,
        };
        // A scope without a Dutch text falls back to its English one, then to
        // the scope token itself.
        let scope_words = scope
            .iter()
            .map(|s| {
                words.get(s).or_else(|| self.config.scope_descriptions.get(s)).cloned().unwrap_or_else(|| s.to_owned())
            })
            .collect();
        Form {
            prefix: &self.prefix,
            lang,
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
        lang: Lang,
    ) -> Response<Body> {
        let form = self.form(session, client, browser, session.requested_scope(), lang);
        response::html(status, pages::login(&form, message, session.login_hint().map(|h| h.as_str())))
    }

    /// The consent page of a session that passed its resource check: who is
    /// signed in (with a link to sign in as someone else, the same request
    /// with `prompt=login`), and the host the browser will go to.
    async fn consent_form(
        &self,
        session: &AuthorizationSession,
        client: &Client,
        browser: &str,
        lang: Lang,
    ) -> Response<Body> {
        let SessionState::ResourceChecked { account, scope } = session.state() else {
            return self.error_page(&Error::IllegalTransition { from: session.state().name(), to: "Approved" }, lang);
        };
        let account = match self.authority.services().store.account(*account).await {
            Ok(Some(a)) => a,
            Ok(None) => return self.error_page(&Error::SessionExpired, lang),
            Err(e) => return self.error_page(&e.into(), lang),
        };
        let form = self.form(session, client, browser, scope, lang);
        let user_code = session.device_user_code().map(|c| c.to_string());
        // "Not you?" asks the same request again with a fresh login: for a
        // device request that is its user code on the device page.
        let switch_href = match &user_code {
            Some(code) => format!("{}/device?user_code={code}&prompt=login", self.prefix),
            None => format!(
                "{}/authorize?{}",
                self.prefix,
                session.request_query(Prompt { login: true, ..Prompt::default() })
            ),
        };
        let redirect = session.redirect_uri().as_str();
        let host = redirect.parse::<http::Uri>().ok().and_then(|u| u.host().map(str::to_owned));
        let consent = Consent {
            username: &account.username,
            switch_href: &switch_href,
            redirect_host: host.as_deref().unwrap_or(redirect),
            user_code: user_code.as_deref(),
        };
        response::html(StatusCode::OK, pages::consent(&form, &consent))
    }

    fn see_login_again(&self, session: &AuthorizationSession) -> Response<Body> {
        response::see_other(&format!("{}/authorize/login?session={}&failed=1", self.prefix, session.id()))
    }

    fn new_secret(&self) -> Result<String, Error> {
        let mut b = [0u8; 32];
        self.authority.services().secrets.fill(&mut b)?;
        Ok(URL_SAFE_NO_PAD.encode(b))
    }

    pub(crate) fn set_cookie(&self, r: &mut Response<Body>, value: &str) {
        let secure = if self.secure { "; Secure" } else { "" };
        let path = if self.secure { "/".to_owned() } else { format!("{}/", self.prefix) };
        let cookie = format!("{}={value}; Path={path}; HttpOnly; SameSite=Lax{secure}", self.cookie_name());
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }

    /// Sets the single sign-on cookie: `HttpOnly`, `SameSite=Lax`, `Secure`
    /// on an https issuer, scoped to the issuer's path, for the session's
    /// lifetime (the store ends it sooner when it idles).
    fn set_session_cookie(&self, r: &mut Response<Body>, value: &str) {
        let max_age = self.authority.settings().browser_session_lifetime.whole_seconds();
        self.append_session_cookie(r, &format!("{value}; Max-Age={max_age}"));
    }

    /// Removes the single sign-on cookie from the browser.
    pub(crate) fn clear_session_cookie(&self, r: &mut Response<Body>) {
        self.append_session_cookie(r, "; Max-Age=0");
    }

    fn append_session_cookie(&self, r: &mut Response<Body>, value_and_age: &str) {
        let secure = if self.secure { "; Secure" } else { "" };
        let path = if self.prefix.is_empty() { "/".to_owned() } else { format!("{}/", self.prefix) };
        let cookie =
            format!("{}={value_and_age}; Path={path}; HttpOnly; SameSite=Lax{secure}", self.session_cookie_name());
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
    csrf_for(browser, &session.to_string())
}

/// A CSRF token for the form `purpose` (a session handle, or `logout`) in the
/// browser with cookie `browser`.
pub(crate) fn csrf_for(browser: &str, purpose: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"oauth-rs csrf\0")
        .chain_update(browser)
        .chain_update(b"\0")
        .chain_update(purpose)
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}
