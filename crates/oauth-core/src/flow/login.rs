//! The steps after the authorization request: login, the resource availability
//! check, and the consent decision.

use std::net::IpAddr;
use std::sync::Arc;

use crate::account::Account;
use crate::authority::Authority;
use crate::client::{Client, ConsentRule};
use crate::error::{Error, ErrorCode, Result};
use crate::services::ResourceDecision;
use crate::session::{Authentication, AuthorizationSession, SessionState};
use crate::throttle::Counted;
use crate::types::{AccountId, SessionId};

use super::redirect::with_params;

/// Where the browser goes after a successful login (or a single sign-on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// Show the consent page for this session.
    Consent(Box<AuthorizationSession>),
    /// The flow ended without a code: redirect to this client URL, which
    /// carries the error (`access_denied` when the resource check refused,
    /// `consent_required` for `prompt=none` without consent), `state` and
    /// `iss`.
    Denied(String),
    /// Consent was remembered, or the client needs none: a code was issued
    /// without the consent page. Redirect to this client URL, which carries
    /// `code`, `state` and `iss`.
    Approved(String),
}

/// A login through the web pages: where to go next, and the cookie of the
/// browser session it started.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Where the browser goes next.
    pub outcome: LoginOutcome,
    /// The new browser session's cookie value: an opaque secret of 256 bits.
    /// The store keeps only its SHA-256.
    pub cookie: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookie is a bearer secret: keep it out of logs.
        f.debug_struct("SignedIn").field("outcome", &self.outcome).finish_non_exhaustive()
    }
}

impl Authority {
    /// The live session with this handle, and its client (for the login and
    /// consent pages). An unknown or expired handle is [`Error::SessionExpired`].
    pub async fn session(&self, id: SessionId) -> Result<(AuthorizationSession, Arc<Client>)> {
        let session = self.services.store.session(id, self.now()).await?.ok_or(Error::SessionExpired)?;
        let client = self.services.clients.client(session.client_id()).await?.ok_or(Error::UnknownClient)?;
        Ok((session, client))
    }

    /// The built-in username and password login for session `id`, without
    /// starting a browser session (for embedders that keep their own; the web
    /// pages use [`Authority::sign_in`]).
    ///
    /// Bad credentials are [`Error::InvalidGrant`] and leave the session where it
    /// was. Unknown users and wrong passwords take the same path and time (the
    /// verifier burns a hash for a missing account). Failures count towards the
    /// throttle for `username` and `peer`.
    pub async fn login(
        &self,
        id: SessionId,
        username: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<LoginOutcome> {
        let (session, client) = self.requested_session(id).await?;
        let account = self.check_password(username, password, peer).await?;
        let now = self.now();
        let authentication = Authentication { auth_time: now, sid: None };
        let authenticated = session.authenticate(account.id, authentication, now)?;
        self.after_authentication(&session, authenticated, &client, &account).await
    }

    /// The login of the web pages: [`Authority::login`], and a new browser
    /// session for single sign-on, whose cookie the answer carries. The
    /// session the browser held before (`replacing`, its old cookie), if any,
    /// ends: a browser is signed in as one account at a time.
    pub async fn sign_in(
        &self,
        id: SessionId,
        username: &str,
        password: &str,
        peer: Option<IpAddr>,
        replacing: Option<&str>,
    ) -> Result<SignedIn> {
        let (session, client) = self.requested_session(id).await?;
        let account = self.check_password(username, password, peer).await?;
        let now = self.now();
        let (cookie, authentication) = self.start_browser_session(account.id, now, replacing).await?;
        let authenticated = session.authenticate(account.id, authentication, now)?;
        let outcome = self.after_authentication(&session, authenticated, &client, &account).await?;
        Ok(SignedIn { outcome, cookie })
    }

    /// Marks session `id` as authenticated by an external authenticator (a
    /// national identity provider, say) as `account`, then runs the resource
    /// check, as [`Authority::login`] does after a password.
    pub async fn authenticate_session(&self, id: SessionId, account: AccountId) -> Result<LoginOutcome> {
        let (session, client) = self.session(id).await?;
        let account = self
            .services
            .store
            .account(account)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(Error::AccessDenied("the account is unknown or disabled"))?;
        let now = self.now();
        let authenticated = session.authenticate(account.id, Authentication { auth_time: now, sid: None }, now)?;
        self.after_authentication(&session, authenticated, &client, &account).await
    }

    /// The consent decision for session `id`. Returns the client URL to redirect
    /// to: with `code`, `state` and `iss` on approval, or `error=access_denied`,
    /// `state` and `iss` on denial. An approval is remembered for the account
    /// and client (unless the client always asks).
    ///
    /// For a device request's session the decision goes to the device
    /// request instead (no code), and the answer is the server's page that
    /// says to return to the device.
    pub async fn decide(&self, id: SessionId, approve: bool) -> Result<String> {
        let (session, client) = self.session(id).await?;
        let now = self.now();
        if session.device_user_code().is_some() {
            let decided = if approve { session.approve(now)? } else { session.deny(now)? };
            self.save_session(&session, &decided).await?;
            let location = self.conclude_device(&decided).await?;
            if let SessionState::Approved { account, scope } = decided.state() {
                if client.consent() == ConsentRule::Remember {
                    self.remember_consent(*account, &client, scope, now).await?;
                }
            }
            return Ok(location);
        }
        if !approve {
            let denied = session.deny(now)?;
            self.save_session(&session, &denied).await?;
            return Ok(self.denied_location(&session));
        }
        let approved = session.approve(now)?;
        if let SessionState::Approved { account, scope } = approved.state() {
            if client.consent() == ConsentRule::Remember {
                self.remember_consent(*account, &client, scope, now).await?;
            }
        }
        self.issue_code(&session, approved).await
    }

    /// The session `id`, which must still wait for its login. Checked before
    /// the password hash is spent; the store returns no expired session.
    async fn requested_session(&self, id: SessionId) -> Result<(AuthorizationSession, Arc<Client>)> {
        let (session, client) = self.session(id).await?;
        if session.state() != &SessionState::Requested {
            return Err(Error::IllegalTransition { from: session.state().name(), to: "Authenticated" });
        }
        Ok((session, client))
    }

    /// Verifies a username and password under the throttle; the shared core of
    /// the login page and the password grant. The attempt is counted before
    /// the password is verified, and taken back only when it matches.
    pub(crate) async fn check_password(&self, username: &str, password: &str, peer: Option<IpAddr>) -> Result<Account> {
        let attempt = self.throttle_count(Counted::Account(username), peer, ErrorCode::InvalidGrant).await?;
        match self.verify_password(username, password).await {
            Ok(Some(account)) => {
                self.throttle_release(attempt);
                Ok(account)
            }
            Ok(None) => {
                self.throttle_failed(attempt).await?;
                Err(Error::InvalidGrant("invalid username or password"))
            }
            Err(e) => {
                self.throttle_release(attempt);
                Err(e)
            }
        }
    }

    /// The enabled account `username` if `password` is its password. Unknown
    /// users cost a verification too (the verifier burns a hash).
    async fn verify_password(&self, username: &str, password: &str) -> Result<Option<Account>> {
        let account = self.services.store.account_by_username(username).await?;
        let hash = account.as_ref().and_then(|a| a.password_hash.as_ref());
        let matches = self.services.verifier.verify(hash, password).await? && hash.is_some();
        Ok(account.filter(|a| matches && !a.disabled))
    }

    /// After any authentication (a login, or single sign-on): the resource
    /// check, then the consent page unless consent is remembered or not
    /// needed. `session` is the session as stored (still `Requested`),
    /// `authenticated` its next state.
    ///
    /// Whichever way the session goes on (the consent page, a remembered
    /// consent's code, a denial by the resource check, `consent_required`
    /// under `prompt=none`), someone has logged in to it: it no longer counts
    /// against the pending sessions of the address that opened it.
    pub(crate) async fn after_authentication(
        &self,
        session: &AuthorizationSession,
        authenticated: AuthorizationSession,
        client: &Client,
        account: &Account,
    ) -> Result<LoginOutcome> {
        let outcome = self.authenticated_outcome(session, authenticated, client, account).await;
        if outcome.is_ok() {
            self.pending_settled(session).await;
        }
        outcome
    }

    /// The resource check and consent of [`Authority::after_authentication`].
    async fn authenticated_outcome(
        &self,
        session: &AuthorizationSession,
        authenticated: AuthorizationSession,
        client: &Client,
        account: &Account,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let decision = self.services.resources.check(client, account, session.requested_scope(), now).await?;
        let scope = match decision {
            ResourceDecision::Allow(scope) => scope,
            ResourceDecision::Deny => {
                let denied = authenticated.deny(now)?;
                self.save_session(session, &denied).await?;
                if session.device_user_code().is_some() {
                    return Ok(LoginOutcome::Denied(self.conclude_device(&denied).await?));
                }
                return Ok(LoginOutcome::Denied(self.denied_location(session)));
            }
        };
        let checked = authenticated.resource_checked(scope.clone(), now)?;
        // A device request's user always sees the consent page, which shows
        // the user code to compare with the device's (SPEC-2).
        let given = match session.device_user_code() {
            Some(_) => None,
            None => self.consent_given(client, account.id, &scope, session.prompt()).await?,
        };
        if let Some(given) = given {
            let approved = checked.approve_remembered(&given, now)?;
            return self.issue_code(session, approved).await.map(LoginOutcome::Approved);
        }
        if session.prompt().none {
            let denied = checked.deny(now)?;
            self.save_session(session, &denied).await?;
            let location =
                self.error_location(session.redirect_uri().as_str(), &Error::ConsentRequired, session.client_state());
            return Ok(LoginOutcome::Denied(location));
        }
        self.save_session(session, &checked).await?;
        Ok(LoginOutcome::Consent(Box::new(checked)))
    }

    /// `Approved -> CodeIssued`, stored in place of `stored`; the client URL
    /// with `code`, `state` and `iss`.
    async fn issue_code(&self, stored: &AuthorizationSession, approved: AuthorizationSession) -> Result<String> {
        let now = self.now();
        let (code, hash) = self.opaque_secret()?;
        let issued = approved.issue_code(hash, now + self.settings.authorization_code_ttl, now)?;
        self.save_session(stored, &issued).await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = stored.client_state() {
            params.push(("state", s.as_str()));
        }
        params.push(("iss", &self.settings.issuer));
        Ok(with_params(stored.redirect_uri().as_str(), &params))
    }

    fn denied_location(&self, session: &AuthorizationSession) -> String {
        let error = Error::AccessDenied("the request was denied");
        self.error_location(session.redirect_uri().as_str(), &error, session.client_state())
    }

    pub(crate) async fn save_session(&self, old: &AuthorizationSession, new: &AuthorizationSession) -> Result<()> {
        if self.services.store.replace_session(old, new).await? {
            Ok(())
        } else {
            // Another request moved the session first (a double submit, say).
            Err(Error::IllegalTransition { from: old.state().name(), to: new.state().name() })
        }
    }
}
