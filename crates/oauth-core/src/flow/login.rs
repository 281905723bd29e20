//! The steps after the authorization request: login, the resource availability
//! check, and the consent decision.

use std::net::IpAddr;
use std::sync::Arc;

use crate::account::Account;
use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::services::ResourceDecision;
use crate::session::{AuthorizationSession, SessionState};
use crate::throttle::{Counted, subjects};
use crate::types::{AccountId, SessionId};

use super::redirect::with_params;

/// Where the browser goes after a successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Show the consent page for this session.
    Consent(Box<AuthorizationSession>),
    /// The resource check refused: redirect to this client URL, which carries
    /// `error=access_denied`, `state` and `iss`.
    Denied(String),
}

impl Authority {
    /// The live session with this handle, and its client (for the login and
    /// consent pages). An unknown or expired handle is [`Error::SessionExpired`].
    pub async fn session(&self, id: SessionId) -> Result<(AuthorizationSession, Arc<Client>)> {
        let session = self.services.store.session(id, self.now()).await?.ok_or(Error::SessionExpired)?;
        let client = self.services.clients.client(session.client_id()).await?.ok_or(Error::UnknownClient)?;
        Ok((session, client))
    }

    /// The built-in username and password login for session `id`.
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
        let (session, client) = self.session(id).await?;
        // Checked before the password hash is spent; the store returns no
        // expired session.
        if session.state() != &SessionState::Requested {
            return Err(Error::IllegalTransition { from: session.state().name(), to: "Authenticated" });
        }
        let account = self.check_password(username, password, peer).await?;
        self.after_authentication(session, &client, account).await
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
        self.after_authentication(session, &client, account).await
    }

    /// The consent decision for session `id`. Returns the client URL to redirect
    /// to: with `code`, `state` and `iss` on approval, or `error=access_denied`,
    /// `state` and `iss` on denial.
    pub async fn decide(&self, id: SessionId, approve: bool) -> Result<String> {
        let (session, _) = self.session(id).await?;
        let now = self.now();
        if !approve {
            let denied = session.deny(now)?;
            self.save_session(&session, &denied).await?;
            return Ok(self.denied_location(&session));
        }
        let approved = session.approve(now)?;
        let (code, hash) = self.opaque_secret()?;
        let issued = approved.issue_code(hash, now + self.settings.authorization_code_ttl, now)?;
        self.save_session(&session, &issued).await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = session.client_state() {
            params.push(("state", s.as_str()));
        }
        params.push(("iss", &self.settings.issuer));
        Ok(with_params(session.redirect_uri().as_str(), &params))
    }

    /// Verifies a username and password under the throttle; the shared core of
    /// the login page and the password grant.
    pub(crate) async fn check_password(&self, username: &str, password: &str, peer: Option<IpAddr>) -> Result<Account> {
        let counted = subjects(Counted::Account(username), peer);
        self.throttle_check(&counted, ErrorCode::InvalidGrant).await?;
        let account = self.services.store.account_by_username(username).await?;
        let hash = account.as_ref().and_then(|a| a.password_hash.as_ref());
        let matches = self.services.verifier.verify(hash, password).await?;
        match account {
            Some(account) if matches && hash.is_some() && !account.disabled => Ok(account),
            _ => {
                self.throttle_fail(&counted).await?;
                Err(Error::InvalidGrant("invalid username or password"))
            }
        }
    }

    async fn after_authentication(
        &self,
        session: AuthorizationSession,
        client: &Client,
        account: Account,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let authenticated = session.authenticate(account.id, now)?;
        let decision = self.services.resources.check(client, &account, session.requested_scope(), now).await?;
        match decision {
            ResourceDecision::Allow(scope) => {
                let checked = authenticated.resource_checked(scope, now)?;
                self.save_session(&session, &checked).await?;
                Ok(LoginOutcome::Consent(Box::new(checked)))
            }
            ResourceDecision::Deny => {
                let denied = authenticated.deny(now)?;
                self.save_session(&session, &denied).await?;
                Ok(LoginOutcome::Denied(self.denied_location(&session)))
            }
        }
    }

    fn denied_location(&self, session: &AuthorizationSession) -> String {
        let error = Error::AccessDenied("the request was denied");
        self.error_location(session.redirect_uri().as_str(), &error, session.client_state())
    }

    async fn save_session(&self, old: &AuthorizationSession, new: &AuthorizationSession) -> Result<()> {
        if self.services.store.replace_session(old, new).await? {
            Ok(())
        } else {
            // Another request moved the session first (a double submit, say).
            Err(Error::IllegalTransition { from: old.state().name(), to: new.state().name() })
        }
    }
}
