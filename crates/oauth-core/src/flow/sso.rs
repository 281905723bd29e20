//! Single sign-on (SPEC-2): browser sessions that skip the login page,
//! consents that skip the consent page, and `prompt` and `max_age`, which
//! decide when neither may be skipped.
//!
//! After [`Authority::authorize`] has opened a session, [`Authority::proceed`]
//! decides what the browser sees: the login page, the consent page, or
//! nothing at all (a redirect to the client with a code or an error). The
//! same step serves any flow that authenticates a browser for a request, so
//! the login and consent pages are reusable whatever opened the session.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::authority::Authority;
use crate::client::{Client, ConsentRule};
use crate::error::{Error, Result};
use crate::session::{Authentication, AuthorizationSession, SessionState};
use crate::sso::{
    BROWSER_SESSION, ConsentGiven, LiveBrowserSession, REMEMBERED_CONSENT, consent_key, consent_record, consented_scope,
};
use crate::types::{AccountId, Prompt, Scope, SessionId, Sid, TokenHash};

use super::login::LoginOutcome;

/// How often at most a browser session's last use is written back: its idle
/// timer is kept to the minute, not to the request, which spares most single
/// sign-ons a store write.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

/// What the browser sees after the authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The login page for this session.
    Login(Box<AuthorizationSession>),
    /// The consent page for this session.
    Consent(Box<AuthorizationSession>),
    /// Nothing: go to this client URL, which carries a `code` or an `error`
    /// (`login_required`, `consent_required`, `access_denied`), with `state`
    /// and `iss`.
    Redirect(String),
}

impl From<LoginOutcome> for Step {
    fn from(outcome: LoginOutcome) -> Self {
        match outcome {
            LoginOutcome::Consent(s) => Step::Consent(s),
            LoginOutcome::Denied(location) | LoginOutcome::Approved(location) => Step::Redirect(location),
        }
    }
}

impl Authority {
    /// The step after the authorization request for session `id`, in a
    /// browser that sent the session cookie `cookie` (if any).
    ///
    /// A live browser session of this issuer skips the login page, unless
    /// the request says `prompt=login` or `max_age=0`, or its login is older
    /// than `max_age`. The resource check then runs as after any login, and a
    /// remembered consent (or a `skip_consent` client) skips the consent
    /// page, unless the request says `prompt=consent` or the client always
    /// asks (MedMij). With `prompt=none` no page is shown: a missing login is
    /// `login_required`, a missing consent `consent_required`.
    pub async fn proceed(&self, id: SessionId, cookie: Option<&str>) -> Result<Step> {
        let (session, client) = self.session(id).await?;
        if session.state() != &SessionState::Requested {
            return Err(Error::IllegalTransition { from: session.state().name(), to: "Authenticated" });
        }
        let now = self.now();
        let live = match cookie {
            Some(c) => self.browser_session(c).await?,
            None => None,
        };
        let Some(live) = live.filter(|l| session.accepts_login_from(l.auth_time(), now)) else {
            if session.prompt().none {
                let denied = session.deny(now)?;
                self.save_session(&session, &denied).await?;
                // Ended unauthenticated: no longer pending for its address.
                self.pending_settled(&session).await;
                let location =
                    self.error_location(session.redirect_uri().as_str(), &Error::LoginRequired, session.client_state());
                return Ok(Step::Redirect(location));
            }
            return Ok(Step::Login(Box::new(session)));
        };
        self.touch(&live, now).await?;
        let account = self.services.store.account(live.account()).await?;
        let Some(account) = account.filter(|a| !a.disabled) else {
            // Checked by the lookup a moment ago; disabled since.
            return Ok(Step::Login(Box::new(session)));
        };
        let authenticated = session.resume(&live, now)?;
        Ok(self.after_authentication(&session, authenticated, &client, &account).await?.into())
    }

    /// The live browser session the cookie `cookie` names, for this issuer,
    /// with an enabled account. A session whose account is disabled or gone
    /// ends here, with every other session of that account.
    pub async fn browser_session(&self, cookie: &str) -> Result<Option<LiveBrowserSession>> {
        let now = self.now();
        let Some(record) = self.services.store.record(BROWSER_SESSION, &TokenHash::of(cookie), now).await? else {
            return Ok(None);
        };
        let Some(live) = LiveBrowserSession::from_record(record, &self.settings.issuer)? else {
            return Ok(None);
        };
        match self.services.store.account(live.account()).await? {
            Some(a) if !a.disabled => Ok(Some(live)),
            _ => {
                self.end_sessions_of(live.account()).await?;
                Ok(None)
            }
        }
    }

    /// Ends the browser session `cookie` names (logout). Answers whether
    /// there was one.
    pub async fn end_browser_session(&self, cookie: &str) -> Result<bool> {
        let now = self.now();
        Ok(self.services.store.take_record(BROWSER_SESSION, &TokenHash::of(cookie), now).await?.is_some())
    }

    /// Ends every browser session of `account` at once (a disabled account,
    /// "log out everywhere"). Answers how many there were.
    pub async fn end_sessions_of(&self, account: AccountId) -> Result<u64> {
        Ok(self.services.store.delete_records_of(BROWSER_SESSION, account).await?)
    }

    /// Forgets every consent `account` gave, so every client asks again.
    /// Answers how many there were.
    pub async fn forget_consents_of(&self, account: AccountId) -> Result<u64> {
        Ok(self.services.store.delete_records_of(REMEMBERED_CONSENT, account).await?)
    }

    /// Starts a browser session for `account`, logged in at `now`, ending
    /// the one `replacing` names. Returns the cookie value (256 bits from the
    /// CSPRNG) and the authentication it stands for.
    pub(crate) async fn start_browser_session(
        &self,
        account: AccountId,
        now: OffsetDateTime,
        replacing: Option<&str>,
    ) -> Result<(String, Authentication)> {
        if let Some(old) = replacing {
            self.end_browser_session(old).await?;
        }
        let mut secret = [0u8; 32];
        self.services.secrets.fill(&mut secret)?;
        let cookie = URL_SAFE_NO_PAD.encode(secret);
        let sid = Sid::from_random_bytes(self.random_16()?);
        let record = LiveBrowserSession::new_record(
            &self.settings.issuer,
            TokenHash::of(&cookie),
            account,
            sid,
            now,
            self.settings.browser_session_lifetime,
            self.settings.browser_session_idle,
        )?;
        if !self.services.store.insert_record(&record, now).await? {
            // 256 random bits met a live key: the randomness is broken.
            return Err(Error::Internal("a new browser session's key is taken".into()));
        }
        Ok((cookie, Authentication { auth_time: now, sid: Some(sid) }))
    }

    /// Writes the session's last use back when it is older than
    /// [`TOUCH_EVERY`]. A concurrent touch that came first is as good.
    async fn touch(&self, live: &LiveBrowserSession, now: OffsetDateTime) -> Result<()> {
        if now - live.last_used() < TOUCH_EVERY {
            return Ok(());
        }
        let next = live.touched(now, self.settings.browser_session_lifetime, self.settings.browser_session_idle)?;
        self.services.store.replace_record(live.record(), &next).await?;
        Ok(())
    }

    /// Whether `account` needs no consent page for `client` and `scope`: the
    /// proof for [`AuthorizationSession::approve_remembered`], or `None`.
    /// `prompt=consent` and a client that always asks (MedMij) never skip
    /// it; a `skip_consent` client always does; otherwise a remembered
    /// consent must cover the scope.
    pub(crate) async fn consent_given(
        &self,
        client: &Client,
        account: AccountId,
        scope: &Scope,
        prompt: Prompt,
    ) -> Result<Option<ConsentGiven>> {
        if prompt.consent {
            return Ok(None);
        }
        match client.consent() {
            ConsentRule::Always => Ok(None),
            ConsentRule::Skip => Ok(Some(ConsentGiven::not_needed(account, client.id().clone()))),
            ConsentRule::Remember => {
                let key = consent_key(account, client.id());
                let Some(record) = self.services.store.record(REMEMBERED_CONSENT, &key, self.now()).await? else {
                    return Ok(None);
                };
                Ok(consented_scope(&record, client.id())?
                    .filter(|approved| scope.is_subset(approved))
                    .map(|approved| ConsentGiven::remembered(account, client.id().clone(), approved)))
            }
        }
    }

    /// Remembers that `account` approved `scope` for `client`, adding to what
    /// it approved before. Concurrent approvals each add their scope: a lost
    /// compare-and-swap reads again.
    pub(crate) async fn remember_consent(
        &self,
        account: AccountId,
        client: &Client,
        scope: &Scope,
        now: OffsetDateTime,
    ) -> Result<()> {
        let store = &self.services.store;
        let key = consent_key(account, client.id());
        let expires_at = now + self.settings.consent_lifetime;
        for _ in 0..8 {
            match store.record(REMEMBERED_CONSENT, &key, now).await? {
                None => {
                    let record = consent_record(account, client.id(), scope.clone(), expires_at)?;
                    if store.insert_record(&record, now).await? {
                        return Ok(());
                    }
                }
                Some(old) => {
                    let before = consented_scope(&old, client.id())?.unwrap_or_else(Scope::empty);
                    let union: BTreeSet<&str> = before.iter().chain(scope.iter()).collect();
                    let union = Scope::from_tokens(union)?;
                    let record = consent_record(account, client.id(), union, expires_at)?;
                    if store.replace_record(&old, &record).await? {
                        return Ok(());
                    }
                }
            }
        }
        Err(Error::Internal("remembering a consent lost eight races in a row".into()))
    }
}
