//! Embedding only the core: the MedMij steps (create session, check resource,
//! decide, exchange) as library calls, over a store of your own.
//!
//! ```sh
//! cargo run -p oauth-core --example medmij_steps
//! ```
//!
//! `oauth-core` does no IO, so everything it touches is passed in. This
//! example writes the store itself (`ListStore`, a mutex over maps: the
//! smallest honest implementation of `oauth_core::Store`; a real one is
//! durable and must pass `oauth-store-conformance`) and its own resource
//! check. The clock, randomness, secret verifier and token codec are the
//! core's test doubles (`testing` feature); a server uses `oauth-runtime` and
//! `oauth-jwt` for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use oauth_core::testing::{CountingSecrets, JsonProofs, JsonTokens, ManualClock, PlainVerifier};
use oauth_core::{
    AccessTokenId, Account, AccountId, Authority, AuthorizationSession, AuthorizeRequest, Client, ClientCredentials,
    ClientId, ClientRecord, ClientSettings, CodeRedemption, ConsentRule, Grant, GrantId, GrantType, IdTokenAlg,
    IgnoreEvents, LoginOutcome, Record, RecordKind, RedirectPolicy, RefreshLookup, RefreshRecord, ResourceCheck,
    ResourceDecision, Rotation, Scope, ScopeRule, Services, SessionId, SessionState, Settings, SigningKeyRecord, Store,
    StoreError, Swept, ThrottleKey, TokenHash, TokenRequest,
};
use time::OffsetDateTime;

/// Everything in maps behind one mutex: each method is atomic because it holds
/// the lock throughout.
#[derive(Debug, Default)]
struct ListStore(Mutex<Maps>);

#[derive(Debug, Default)]
struct Maps {
    sessions: HashMap<SessionId, AuthorizationSession>,
    codes: HashMap<TokenHash, SessionId>,
    grants: HashMap<GrantId, Grant>,
    refresh: HashMap<TokenHash, RefreshRecord>,
    revoked: HashMap<AccessTokenId, OffsetDateTime>,
    accounts: HashMap<AccountId, Account>,
    keys: BTreeMap<String, SigningKeyRecord>,
    failures: HashMap<ThrottleKey, Vec<OffsetDateTime>>,
    records: HashMap<(RecordKind, TokenHash), Record>,
    clients: BTreeMap<String, ClientRecord>,
}

impl ListStore {
    fn maps(&self) -> Result<MutexGuard<'_, Maps>, StoreError> {
        self.0.lock().map_err(|_| StoreError::Unavailable("a writer panicked".into()))
    }
}

impl Maps {
    fn live_grant(&self, id: GrantId, now: OffsetDateTime) -> Option<Grant> {
        self.grants.get(&id).filter(|g| now < g.expires_at).cloned()
    }
}

#[async_trait]
impl Store for ListStore {
    async fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError> {
        self.maps()?.sessions.insert(session.id(), session.clone());
        Ok(())
    }

    async fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError> {
        Ok(self.maps()?.sessions.get(&id).filter(|s| now < s.expires_at()).cloned())
    }

    async fn replace_session(
        &self,
        old: &AuthorizationSession,
        new: &AuthorizationSession,
    ) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        if maps.sessions.get(&old.id()) != Some(old) || old.id() != new.id() {
            return Ok(false);
        }
        if let SessionState::CodeIssued { code, .. } = new.state() {
            maps.codes.insert(*code, new.id());
        }
        maps.sessions.insert(new.id(), new.clone());
        Ok(true)
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut maps = self.maps()?;
        let Some(session) = maps.codes.get(code).and_then(|id| maps.sessions.get(id)) else {
            return Ok(CodeRedemption::NotFound);
        };
        // The core decides what a redemption does; the store makes it atomic.
        let (next, outcome) = session.redeem(code, grant, retain_until, now);
        if let Some(next) = next {
            maps.sessions.insert(next.id(), next);
        }
        Ok(outcome)
    }

    async fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        maps.grants.insert(grant.id, grant.clone());
        if let Some(r) = refresh {
            maps.refresh.insert(r.hash, r.clone());
        }
        Ok(())
    }

    async fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError> {
        Ok(self.maps()?.live_grant(id, now))
    }

    async fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError> {
        let maps = self.maps()?;
        let Some(record) = maps.refresh.get(hash).filter(|r| now < r.expires_at).cloned() else {
            return Ok(None);
        };
        Ok(maps.live_grant(record.grant, now).map(|grant| {
            let account = grant.account.and_then(|id| maps.accounts.get(&id)).cloned();
            RefreshLookup { record, grant, account }
        }))
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut maps = self.maps()?;
        let found = maps.refresh.get(old).filter(|r| now < r.expires_at).map(|r| (r.rotated, r.grant));
        let family = found.and_then(|(_, id)| maps.live_grant(id, now));
        match (found, family) {
            (Some((false, _)), Some(g)) if g.takes_rotation_to(new) => {
                maps.refresh.entry(*old).and_modify(|r| r.rotated = true);
                maps.refresh.insert(new.hash, new.clone());
                Ok(Rotation::Rotated)
            }
            (Some((true, id)), Some(g)) if g.takes_rotation_to(new) => {
                maps.grants.entry(id).and_modify(|g| g.revoked = true);
                Ok(Rotation::Reused(id))
            }
            _ => Ok(Rotation::NotFound),
        }
    }

    async fn add_refresh_token(&self, record: &RefreshRecord, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        let live = maps.live_grant(record.grant, now).is_some_and(|g| !g.revoked);
        if live {
            maps.refresh.insert(record.hash, record.clone());
        }
        Ok(live)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError> {
        self.maps()?.grants.entry(id).and_modify(|g| g.revoked = true);
        Ok(())
    }

    async fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.maps()?.revoked.insert(jti, expires_at);
        Ok(())
    }

    async fn access_token_revoked(
        &self,
        jti: AccessTokenId,
        grant: Option<GrantId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let maps = self.maps()?;
        let token = maps.revoked.get(&jti).is_some_and(|until| now < *until);
        let family = grant.and_then(|id| maps.grants.get(&id)).is_some_and(|g| g.revoked);
        Ok(token || family)
    }

    async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        if maps.accounts.values().any(|a| a.username == account.username && a.id != account.id) {
            return Err(StoreError::Conflict("username taken"));
        }
        maps.accounts.insert(account.id, account.clone());
        Ok(())
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.maps()?.accounts.get(&id).cloned())
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.maps()?.accounts.values().find(|a| a.username == username).cloned())
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.maps()?.accounts.values().cloned().collect())
    }

    async fn accounts_after(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        let mut all: Vec<Account> =
            self.maps()?.accounts.values().filter(|a| after.is_none_or(|x| a.id > x)).cloned().collect();
        all.sort_by_key(|a| a.id);
        all.truncate(limit);
        Ok(all)
    }

    async fn delete_account(&self, id: AccountId) -> Result<bool, StoreError> {
        Ok(self.maps()?.accounts.remove(&id).is_some())
    }

    async fn grants_of(
        &self,
        account: AccountId,
        after: Option<GrantId>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>, StoreError> {
        let maps = self.maps()?;
        let mut live: Vec<Grant> = maps
            .grants
            .values()
            .filter(|g| g.account == Some(account) && !g.revoked && now < g.expires_at)
            .filter(|g| after.is_none_or(|a| g.id > a))
            .cloned()
            .collect();
        live.sort_by_key(|g| g.id);
        live.truncate(limit);
        Ok(live)
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        if maps.clients.contains_key(client.id.as_str()) {
            return Err(StoreError::Conflict("client_id already taken"));
        }
        maps.clients.insert(client.id.as_str().to_owned(), client.clone());
        Ok(())
    }

    async fn replace_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        Ok(maps.clients.get_mut(client.id.as_str()).map(|c| *c = client.clone()).is_some())
    }

    async fn client_record(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.maps()?.clients.get(id.as_str()).cloned())
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.maps()?.clients.remove(id.as_str()).is_some())
    }

    async fn client_records(&self, after: Option<&ClientId>, limit: usize) -> Result<Vec<ClientRecord>, StoreError> {
        let maps = self.maps()?;
        let beyond = |id: &String| after.is_none_or(|a| id.as_str() > a.as_str());
        Ok(maps.clients.iter().filter(|(id, _)| beyond(id)).take(limit).map(|(_, c)| c.clone()).collect())
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        Ok(self.maps()?.clients.len() as u64)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.maps()?.keys.insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        Ok(self.maps()?.keys.values().cloned().collect())
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<Vec<OffsetDateTime>>, StoreError> {
        // One lock over every key's failures makes the add-and-read atomic.
        let mut guard = self.maps()?;
        let map = &mut guard.failures;
        Ok(keys
            .iter()
            .map(|key| {
                let failures = map.entry(*key).or_default();
                oauth_core::add_failure(failures, at, since);
                failures.clone()
            })
            .collect())
    }

    async fn forget_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime) -> Result<(), StoreError> {
        let mut guard = self.maps()?;
        let map = &mut guard.failures;
        for key in keys {
            if let Some(failures) = map.get_mut(key) {
                oauth_core::remove_failure(failures, at);
                if failures.is_empty() {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }

    async fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError> {
        let guard = self.maps()?;
        Ok(guard.failures.get(key).map(|f| f.iter().copied().filter(|t| *t >= since).collect()).unwrap_or_default())
    }

    async fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError> {
        let mut maps = self.maps()?;
        let before = (maps.sessions.len(), maps.grants.len(), maps.refresh.len(), maps.revoked.len());
        maps.sessions.retain(|_, s| now < s.expires_at());
        let Maps { sessions, codes, grants, refresh, revoked, failures, records, .. } = &mut *maps;
        codes.retain(|_, id| sessions.contains_key(id));
        grants.retain(|_, g| now < g.expires_at);
        refresh.retain(|_, r| now < r.expires_at && grants.contains_key(&r.grant));
        revoked.retain(|_, until| now < *until);
        let throttle_before = failures.len();
        failures.retain(|_, f| f.iter().any(|t| *t >= throttle_since));
        let records_before = records.len();
        records.retain(|_, r| now < r.expires_at);
        Ok(Swept {
            sessions: (before.0 - sessions.len()) as u64,
            grants: (before.1 - grants.len()) as u64,
            refresh_tokens: (before.2 - refresh.len()) as u64,
            revoked_tokens: (before.3 - revoked.len()) as u64,
            throttle_keys: (throttle_before - failures.len()) as u64,
            records: (records_before - records.len()) as u64,
        })
    }

    async fn insert_record(&self, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        let key = (record.kind, record.key);
        if maps.records.get(&key).is_some_and(|r| now < r.expires_at) {
            return Ok(false);
        }
        maps.records.insert(key, record.clone());
        Ok(true)
    }

    async fn record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        Ok(self.maps()?.records.get(&(kind, *key)).filter(|r| now < r.expires_at).cloned())
    }

    async fn replace_record(&self, old: &Record, new: &Record) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        match maps.records.get_mut(&(old.kind, old.key)) {
            Some(stored) if stored == old && (old.kind, old.key) == (new.kind, new.key) => {
                *stored = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn take_record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        Ok(self.maps()?.records.remove(&(kind, *key)).filter(|r| now < r.expires_at))
    }

    async fn delete_records_of(&self, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError> {
        let mut maps = self.maps()?;
        let before = maps.records.len();
        maps.records.retain(|(k, _), r| *k != kind || r.owner != Some(owner));
        Ok((before - maps.records.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.maps().map(|_| ())
    }
}

/// The provider's check (MedMij step 4): does it hold data of this service for
/// this user? Here: only for accounts with a BSN.
#[derive(Debug)]
struct HoldsDataFor;

#[async_trait]
impl ResourceCheck for HoldsDataFor {
    async fn check(
        &self,
        _client: &Client,
        account: &Account,
        scope: &Scope,
        _now: OffsetDateTime,
    ) -> oauth_core::Result<ResourceDecision> {
        let known = account.attributes.contains_key("bsn");
        Ok(if known { ResourceDecision::Allow(scope.clone()) } else { ResourceDecision::Deny })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(ListStore::default());
    let patient = Account {
        id: AccountId::from_random_bytes(*b"a patient's id!!"),
        username: "patient".into(),
        password_hash: None, // logs in through the national identity provider
        disabled: false,
        attributes: BTreeMap::from([("bsn".into(), "999990019".into())]),
        origin: oauth_core::AccountOrigin::Configuration,
    };
    store.put_account(&patient).await?;

    // A personal health app, as an OAuth Client List names it: a public client
    // identified by its hostname, with the host-bound https redirect rule.
    let app = Client::new(ClientSettings {
        id: ClientId::parse("pgo.example.org")?,
        name: "Example PGO".into(),
        secret: None,
        redirect: RedirectPolicy::HttpsHost("pgo.example.org".into()),
        grant_types: [GrantType::AuthorizationCode].into(),
        scopes: Scope::parse("4")?,
        scope_rule: ScopeRule::ExactlyOne,
        require_pkce: true,
        allowed_cors_origins: vec![],
        resources: Default::default(),
        jwks: None,
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: IdTokenAlg::Rs256,
        // The MedMij rule: the user sees every data service they release.
        consent: ConsentRule::Always,
    })?;
    let clients = BTreeMap::from([(app.id().clone(), Arc::new(app))]);
    let services = Services {
        store,
        clients: Arc::new(clients),
        clock: Arc::new(ManualClock::new(time::macros::datetime!(2026-11-25 12:00 UTC))),
        secrets: Arc::new(CountingSecrets::default()),
        verifier: Arc::new(PlainVerifier::default()),
        tokens: Arc::new(JsonTokens),
        id_tokens: Arc::new(JsonTokens),
        resources: Arc::new(HoldsDataFor),
        // This example has no log: a real server reports replays and lockouts
        // to one (oauth-http's SecurityEventLog).
        events: Arc::new(IgnoreEvents),
        // Unsigned test proofs: this example uses neither DPoP nor
        // private_key_jwt; a server uses oauth-jwt's `JwtProofs`.
        proofs: Arc::new(JsonProofs),
    };
    let authority = Authority::new(Settings::new("https://as.provider.example"), services);

    // 1. Create the session from the authorization request.
    let request = AuthorizeRequest {
        client_id: Some("pgo.example.org"),
        redirect_uri: Some("https://pgo.example.org/cb"),
        response_type: Some("code"),
        scope: Some("4"),
        state: Some("af0ifjsldkj"),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        code_challenge_method: Some("S256"),
        ..AuthorizeRequest::default()
    };
    let (session, _) = authority.authorize(&request, None, None).await.map_err(|r| format!("{r:?}"))?;
    println!("1. session {} opened: {:?}", session.id(), session.state().name());

    // 2. The identity provider says who logged in; 3. the resource check runs.
    let session = match authority.authenticate_session(session.id(), patient.id).await? {
        LoginOutcome::Consent(s) => s,
        LoginOutcome::Denied(location) => return Err(format!("the provider holds no data: {location}").into()),
        other => return Err(format!("an OCL client always sees the consent page, not {other:?}").into()),
    };
    println!("2-3. authenticated and checked: {:?}", session.state().name());

    // 4. The user approves on the consent page; the browser goes to the app.
    let location = authority.decide(session.id(), true).await?;
    println!("4. approved; redirect to {location}");
    let code = oauth_core::testing::query_param(&location, "code").ok_or("no code")?;

    // 5. The app's back channel exchanges the code, proving PKCE.
    let app = authority
        .authenticate_client(
            &ClientCredentials { client_id: Some("pgo.example.org"), ..ClientCredentials::default() },
            None,
        )
        .await?;
    let exchange = TokenRequest {
        grant_type: Some("authorization_code"),
        code: Some(&code),
        redirect_uri: Some("https://pgo.example.org/cb"),
        code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        ..TokenRequest::default()
    };
    let tokens = authority.token(&app, &exchange, None, None).await?;
    println!("5. exchanged: a {} token for scope {:?}, {} s", tokens.token_type, tokens.scope, tokens.expires_in);
    Ok(())
}
