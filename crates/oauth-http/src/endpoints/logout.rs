//! `/logout`: RP-Initiated Logout 1.0, `GET` and `POST`.
//!
//! A request (`id_token_hint`, `client_id`, `post_logout_redirect_uri`,
//! `state`, `ui_locales`) that fails a check gets a 400 error page, never a
//! redirect. A valid hint for the signed-in account ends the session at once
//! and answers 303 to the registered URI with `state` (or the "signed out"
//! page). Anything else answers the confirmation page: a form posting back to
//! `/logout` with the checked parameters and a CSRF token bound to the
//! browser's cookie; posting it ends the session the same way.

use http::request::Parts;
use http::{Method, Response, StatusCode};
use oauth_core::{CheckedLogout, Error, LogoutOutcome, LogoutRequest};
use subtle::ConstantTimeEq;

use super::authorize::csrf_for;
use crate::Frontend;
use crate::i18n::Lang;
use crate::pages;
use crate::request::{Params, read_params};
use crate::response::{self, Body};

/// The CSRF purpose of the confirmation form.
const LOGOUT: &str = "logout";

impl Frontend {
    /// `GET /logout` and `POST /logout` (a client's request, or the
    /// confirmation form when it carries our `csrf` field).
    pub(crate) async fn logout<B: hyper::body::Body<Error: Into<crate::BoxError>>>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Response<Body> {
        let fallback = Lang::pick(None, &parts.headers);
        let params = if parts.method == Method::POST {
            match read_params(&parts.headers, body, self.config.body_read_timeout, false).await {
                Ok(p) => p,
                Err(crate::request::ReadError::Invalid(e)) => return self.logout_error(&e, fallback),
                Err(other) => return response::read_error(other, self.issuer()),
            }
        } else {
            match Params::from_form(parts.uri.query().unwrap_or("").as_bytes()) {
                Ok(p) => p,
                Err(e) => return self.logout_error(&e, fallback),
            }
        };
        let lang = Lang::pick(params.get("ui_locales"), &parts.headers);
        let confirmed = parts.method == Method::POST && params.contains("csrf");
        if confirmed {
            let sent = params.get("csrf").unwrap_or("");
            let expected = self.existing_browser_cookie(&parts.headers).map(|b| csrf_for(&b, LOGOUT));
            if !expected.is_some_and(|e| bool::from(sent.as_bytes().ct_eq(e.as_bytes()))) {
                return self.bad_form(lang);
            }
        }
        let req = LogoutRequest {
            id_token_hint: params.get("id_token_hint"),
            client_id: params.get("client_id"),
            post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
            state: params.get("state"),
        };
        let checked = match self.authority.check_logout(&req).await {
            Ok(c) => c,
            Err(e) => return self.logout_error(&e, lang),
        };
        let sso = self.session_cookie(&parts.headers);
        match self.authority.logout(&checked, sso.as_deref(), confirmed).await {
            Ok(LogoutOutcome::Confirm) => self.logout_confirmation(parts, &checked, params.get("ui_locales"), lang),
            Ok(LogoutOutcome::LoggedOut { location }) => {
                let mut r = match location {
                    Some(l) => response::see_other(&l),
                    None => response::html(StatusCode::OK, pages::logged_out(&self.prefix, lang)),
                };
                self.clear_session_cookie(&mut r);
                r
            }
            Err(e) => self.logout_error(&e, lang),
        }
    }

    /// The confirmation page: the checked parameters and the CSRF token as
    /// hidden inputs. The client goes by its id, found from the hint when
    /// the request named none, so the post can check the URI again.
    fn logout_confirmation(
        &self,
        parts: &Parts,
        checked: &CheckedLogout,
        ui_locales: Option<&str>,
        lang: Lang,
    ) -> Response<Body> {
        let (browser, new_browser) = match self.browser_cookie(&parts.headers) {
            Ok(found) => found,
            Err(e) => return self.logout_error(&e, lang),
        };
        let csrf = csrf_for(&browser, LOGOUT);
        let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        if let Some(c) = checked.client() {
            fields.push(("client_id", c.id().as_str()));
        }
        if let Some(uri) = checked.redirect_uri() {
            fields.push(("post_logout_redirect_uri", uri));
        }
        if let Some(s) = checked.state() {
            fields.push(("state", s.as_str()));
        }
        if let Some(u) = ui_locales {
            fields.push(("ui_locales", u));
        }
        let client_name = checked.client().map(|c| c.name());
        let mut r = response::html(StatusCode::OK, pages::logout_confirm(&self.prefix, lang, client_name, &fields));
        if new_browser {
            self.set_cookie(&mut r, &browser);
        }
        r
    }

    /// A logout request that failed a check: an error page, never a redirect.
    fn logout_error(&self, err: &Error, lang: Lang) -> Response<Body> {
        match err {
            Error::InvalidRequest(description) => {
                let t = lang.text();
                let page = pages::error(&self.prefix, lang, t.cannot_sign_out, t.details, Some(description));
                response::html(StatusCode::BAD_REQUEST, page)
            }
            other => self.error_page(other, lang),
        }
    }
}
