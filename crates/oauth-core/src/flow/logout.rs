//! RP-Initiated Logout 1.0: ending a browser session at a client's request,
//! and sending the browser back to a URI the client registered.
//!
//! Every check that decides where the browser may go comes before anything
//! else, and a failed one is an error page, never a redirect: an
//! `id_token_hint` whose signature fails, a hint for another client than the
//! `client_id`, an unknown client, a `post_logout_redirect_uri` that is not
//! one of the client's registered URIs character for character, a malformed
//! `state`. A valid hint for the signed-in account ends the session at once;
//! any other request asks the user first (a confirmation page), so a third
//! party cannot log the user out with a link.

use std::sync::Arc;

use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::types::{ClientId, State};

use super::redirect::with_params;

/// The parameters of `/logout`, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogoutRequest<'a> {
    /// `id_token_hint`: an ID token this server issued.
    pub id_token_hint: Option<&'a str>,
    /// `client_id`
    pub client_id: Option<&'a str>,
    /// `post_logout_redirect_uri`
    pub post_logout_redirect_uri: Option<&'a str>,
    /// `state`, echoed to the client.
    pub state: Option<&'a str>,
}

/// A logout request whose parameters passed every check.
#[derive(Debug, Clone)]
pub struct CheckedLogout {
    client: Option<Arc<Client>>,
    /// The registered URI to send the browser to afterwards.
    redirect: Option<String>,
    state: Option<State>,
    /// The hint's `sub`, when a valid hint came.
    hinted: Option<String>,
}

impl CheckedLogout {
    /// The client the request names (by `client_id` or by the hint's
    /// audience), if any.
    pub fn client(&self) -> Option<&Client> {
        self.client.as_deref()
    }
    /// The registered `post_logout_redirect_uri`, if one was asked for.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect.as_deref()
    }
    /// The client's `state`.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }
    /// Whether a valid `id_token_hint` came with the request.
    pub fn has_hint(&self) -> bool {
        self.hinted.is_some()
    }
    /// Where the browser goes once logged out: the registered URI with
    /// `state`, or `None` for the "logged out" page.
    pub fn location(&self) -> Option<String> {
        let uri = self.redirect.as_deref()?;
        Some(match &self.state {
            Some(s) => with_params(uri, &[("state", s.as_str())]),
            None => uri.to_owned(),
        })
    }
}

/// What `/logout` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Ask the user first: the confirmation page.
    Confirm,
    /// The browser session (if there was one) has ended; go to `location`,
    /// or show the "logged out" page when it is `None`.
    LoggedOut {
        /// The client URI with `state`, if the request named one.
        location: Option<String>,
    },
}

impl Authority {
    /// Checks a logout request. Every failure is an error page (400), never a
    /// redirect: the URI to redirect to is what failed, or cannot be trusted
    /// with what failed.
    pub async fn check_logout(&self, req: &LogoutRequest<'_>) -> Result<CheckedLogout> {
        let hint = match req.id_token_hint {
            Some(token) => match self.services.id_tokens.verify_id_token_hint(token, self.now()).await {
                Ok(hint) => Some(hint),
                Err(Error::InvalidToken(_)) => {
                    return Err(Error::InvalidRequest("the id_token_hint is not an ID token of this server"));
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let client_id = match req.client_id {
            Some(raw) => Some(ClientId::parse(raw).map_err(|_| Error::UnknownClient)?),
            // Without a client_id, the hint's audience names the client.
            None => match hint.as_ref().map(|h| h.audience.as_slice()) {
                Some([only]) => ClientId::parse(only).ok(),
                _ => None,
            },
        };
        if let (Some(id), Some(h)) = (&client_id, &hint) {
            if !h.audience.iter().any(|a| a == id.as_str()) {
                return Err(Error::InvalidRequest("the id_token_hint was issued to another client"));
            }
        }
        let client = match &client_id {
            Some(id) => Some(self.services.clients.client(id).await?.ok_or(Error::UnknownClient)?),
            None => None,
        };
        let redirect = match req.post_logout_redirect_uri {
            None => None,
            Some(uri) => {
                let client = client.as_ref().ok_or(Error::InvalidRequest(
                    "post_logout_redirect_uri needs a client_id or an id_token_hint to say whose it is",
                ))?;
                let registered = client
                    .post_logout_redirect_uri(uri)
                    .ok_or(Error::InvalidRequest("post_logout_redirect_uri is not registered for this client"))?;
                Some(registered.as_str().to_owned())
            }
        };
        let state = req.state.map(State::parse).transpose()?;
        Ok(CheckedLogout { client, redirect, state, hinted: hint.map(|h| h.subject) })
    }

    /// Logs the browser with cookie `cookie` out, or asks first. Without
    /// `confirmed` (the user's click on the confirmation page), only a valid
    /// hint for the signed-in account ends its session at once; a browser
    /// with no session has nothing to end, and a hinted request goes straight
    /// back. Everything else is [`LogoutOutcome::Confirm`].
    pub async fn logout(
        &self,
        checked: &CheckedLogout,
        cookie: Option<&str>,
        confirmed: bool,
    ) -> Result<LogoutOutcome> {
        let live = match cookie {
            Some(c) => self.browser_session(c).await?,
            None => None,
        };
        let hint_matches = match (&checked.hinted, &live) {
            (Some(sub), Some(l)) => *sub == l.account().to_string(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !confirmed && !hint_matches {
            return Ok(LogoutOutcome::Confirm);
        }
        if let (Some(c), Some(_)) = (cookie, &live) {
            self.end_browser_session(c).await?;
        }
        Ok(LogoutOutcome::LoggedOut { location: checked.location() })
    }
}
