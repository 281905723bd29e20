//! The device authorization grant (RFC 8628): `POST /device_authorization`
//! for the device, and the user's pages, `GET`/`POST /device` and `GET
//! /device/done`. The device's polls go to `/token`.
//!
//! The user's way: `GET /device` (from `verification_uri`, or
//! `verification_uri_complete`, which fills the code) answers the code form
//! and sets the CSRF cookie. `POST /device` with a good code answers 303 to
//! the code flow's own login page (`/authorize/login`) or, with a single
//! sign-on session, its consent page (`/authorize/consent`), which shows the
//! user code; a wrong code answers the form again with an error (400), and
//! past the throttle's limit for the peer address, 429 with `Retry-After`;
//! so does a code whose session would pass the address's cap of pending
//! sessions (the error page). A public client's request at
//! `/device_authorization` past its address's cap of undecided device
//! requests is 429 `temporarily_unavailable`.
//! The consent decision answers 303 to `/device/done`, which says to return
//! to the device.

use std::net::IpAddr;

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use oauth_core::{DeviceAuthorizationRequest, Error, Step, TokenHash};
use subtle::ConstantTimeEq;

use crate::Frontend;
use crate::i18n::Lang;
use crate::pages;
use crate::request::{Params, read_params};
use crate::response::{self, Body, Challenge};

use super::authorize::csrf_for;

/// The purpose the device form's CSRF token is made for.
const DEVICE_FORM: &str = "device";

impl Frontend {
    /// `POST /device_authorization` (RFC 8628 3.1, 3.2): client
    /// authentication as at `/token`, errors as JSON as at `/token`.
    pub(crate) async fn device_authorization<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
        ip: IpAddr,
        client_id: &mut Option<String>,
    ) -> Response<Body> {
        let (params, client) = match self.authenticated(parts, body, ip, false, client_id).await {
            Ok(found) => found,
            Err(r) => return r,
        };
        let req = DeviceAuthorizationRequest {
            client_id: params.get("client_id"),
            scope: params.get("scope"),
            resource: params.get("resource"),
        };
        match self.authority.device_authorization(&client, &req, Some(ip)).await {
            Ok(answer) => response::device_authorization(&answer),
            Err(e) => response::oauth_error(&e, self.issuer(), Challenge::Basic),
        }
    }

    /// `GET /device[?user_code=…][&prompt=login]`: the code form.
    pub(crate) fn device_page(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        let lang = Lang::pick(params.get("ui_locales"), &parts.headers);
        let (browser, new_browser) = match self.browser_cookie(&parts.headers) {
            Ok(found) => found,
            Err(e) => return self.error_page(&e, lang),
        };
        let typed = params.get("user_code").unwrap_or("");
        let fresh_login = params.get("prompt") == Some("login");
        let mut r = self.device_form(&browser, typed, fresh_login, None, StatusCode::OK, lang);
        if new_browser {
            self.set_cookie(&mut r, &browser);
        }
        r
    }

    /// `POST /device`: the typed code, checked under the throttle.
    pub(crate) async fn device<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
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
        let lang = Lang::pick(params.get("ui_locales"), &parts.headers);
        let Some(browser) = self.existing_browser_cookie(&parts.headers) else { return self.bad_form(lang) };
        let expected = csrf_for(&browser, DEVICE_FORM);
        if !bool::from(params.get("csrf").unwrap_or("").as_bytes().ct_eq(expected.as_bytes())) {
            return self.bad_form(lang);
        }
        let typed = params.get("user_code").unwrap_or("");
        let fresh_login = params.get("prompt") == Some("login");
        let binding = TokenHash::of(&browser);
        let opened =
            self.authority.open_device_session(typed, binding, Some(ip), fresh_login, params.get("ui_locales")).await;
        let session = match opened {
            Ok((session, _)) => session,
            Err(Error::InvalidGrant(_)) => {
                self.metrics.auth_failure("user_code");
                let message = lang.text().wrong_code;
                return self.device_form(&browser, typed, fresh_login, Some(message), StatusCode::BAD_REQUEST, lang);
            }
            Err(Error::Throttled { retry_after, .. }) => {
                self.metrics.auth_failure("user_code");
                let message = (lang.text().too_many_codes)(retry_after.div_ceil(60));
                let status = StatusCode::TOO_MANY_REQUESTS;
                let mut r = self.device_form(&browser, typed, fresh_login, Some(&message), status, lang);
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                return r;
            }
            Err(e) => return self.error_page(&e, lang),
        };
        let sso = self.session_cookie(&parts.headers);
        match self.authority.proceed(session.id(), sso.as_deref()).await {
            Ok(Step::Login(s)) => response::see_other(&format!("{}/authorize/login?session={}", self.prefix, s.id())),
            Ok(Step::Consent(s)) => {
                response::see_other(&format!("{}/authorize/consent?session={}", self.prefix, s.id()))
            }
            Ok(Step::Redirect(location)) => response::see_other(&location),
            Ok(_) => self.error_page(&Error::IllegalTransition { from: "Requested", to: "unknown" }, lang),
            Err(e) => self.error_page(&e, lang),
        }
    }

    /// `GET /device/done?result=approved|denied`: return to the device.
    pub(crate) fn device_done(&self, parts: &Parts) -> Response<Body> {
        let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        let lang = Lang::pick(None, &parts.headers);
        let approved = params.get("result") == Some("approved");
        response::html(StatusCode::OK, pages::device_done(&self.prefix, lang, approved))
    }

    fn device_form(
        &self,
        browser: &str,
        typed: &str,
        fresh_login: bool,
        message: Option<&str>,
        status: StatusCode,
        lang: Lang,
    ) -> Response<Body> {
        let csrf = csrf_for(browser, DEVICE_FORM);
        response::html(status, pages::device(&self.prefix, lang, typed, &csrf, fresh_login, message))
    }
}
