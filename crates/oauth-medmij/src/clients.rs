//! OCL clients as a `ClientRegistry`, with reload.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use oauth_core::{
    Client, ClientId, ClientRegistry, ClientSettings, ConsentRule, GrantType, IdTokenAlg, RedirectPolicy, Scope,
    ScopeRule, WebOrigin,
};

use crate::{Error, Ocl};

/// The provider's side of the profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The data-service ids this provider offers; an OCL client asks for
    /// exactly one of them.
    pub scopes: Scope,
    /// Whether OCL clients must use PKCE. `false` departs from RFC 9700 2.1.1 for
    /// the scheme's deployed clients; a challenge that is sent is still enforced.
    pub require_pkce: bool,
}

/// The clients of the current OCL.
#[derive(Debug)]
pub struct OclClients {
    profile: Profile,
    current: RwLock<Arc<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    sequence: u64,
    /// By lowercased hostname; each client keeps the list's spelling.
    clients: BTreeMap<String, Arc<Client>>,
}

impl OclClients {
    /// Clients for `ocl` under `profile`.
    pub fn new(ocl: &Ocl, profile: Profile) -> Result<Self, Error> {
        let loaded = build(ocl, &profile)?;
        Ok(OclClients { profile, current: RwLock::new(Arc::new(loaded)) })
    }

    /// Replaces the list with `ocl`, unless its sequence number is lower than
    /// the current one; on error the current list stays in use. Returns the
    /// number of clients now listed.
    pub fn reload(&self, ocl: &Ocl) -> Result<usize, Error> {
        let current = self.snapshot().sequence;
        if ocl.sequence < current {
            return Err(Error::Older { current, new: ocl.sequence });
        }
        let loaded = build(ocl, &self.profile)?;
        let n = loaded.clients.len();
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(n)
    }

    /// The sequence number of the list in use.
    pub fn sequence(&self) -> u64 {
        self.snapshot().sequence
    }

    /// True when `id` is on the list in use, in any case.
    pub fn contains(&self, id: &ClientId) -> bool {
        self.snapshot().clients.contains_key(&id.as_str().to_ascii_lowercase())
    }

    /// The client `id` of the list in use, ignoring ASCII case, with the
    /// list's spelling as its id.
    pub fn get(&self, id: &ClientId) -> Option<Arc<Client>> {
        self.snapshot().clients.get(&id.as_str().to_ascii_lowercase()).cloned()
    }

    /// Every client of the list in use, in hostname order.
    pub fn all(&self) -> Vec<Arc<Client>> {
        self.snapshot().clients.values().cloned().collect()
    }

    /// The hostnames on the list in use, as the list spells them.
    pub fn hostnames(&self) -> Vec<ClientId> {
        self.snapshot().clients.values().map(|c| c.id().clone()).collect()
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn build(ocl: &Ocl, profile: &Profile) -> Result<Loaded, Error> {
    let mut clients = BTreeMap::new();
    for c in &ocl.clients {
        let settings = ClientSettings {
            id: c.hostname.clone(),
            name: c.organisation.clone(),
            secret: None,
            redirect: RedirectPolicy::HttpsHost(c.hostname.to_string()),
            grant_types: [GrantType::AuthorizationCode].into(),
            scopes: profile.scopes.clone(),
            scope_rule: ScopeRule::ExactlyOne,
            require_pkce: profile.require_pkce,
            allowed_cors_origins: vec![],
            resources: Default::default(),
            // OCL clients are public, use neither DPoP nor PAR by the scheme's
            // rules, and have no keys.
            jwks: None,
            dpop_bound_access_tokens: false,
            require_pushed_authorization_requests: false,
            post_logout_redirect_uris: Vec::new(),
            id_token_alg: IdTokenAlg::Rs256,
            // MedMij: the user sees every data service released, on every
            // authorization, and the answer is never remembered.
            consent: ConsentRule::Always,
        };
        let client = Client::new(settings).map_err(|_| Error::Hostname(c.hostname.to_string()))?;
        clients.insert(c.hostname.as_str().to_ascii_lowercase(), Arc::new(client));
    }
    Ok(Loaded { sequence: ocl.sequence, clients })
}

#[async_trait]
impl ClientRegistry for OclClients {
    /// The client named `id` in any case (hostnames ignore ASCII case), with
    /// the list's spelling as its id.
    async fn client(&self, id: &ClientId) -> oauth_core::Result<Option<Arc<Client>>> {
        Ok(self.snapshot().clients.get(&id.as_str().to_ascii_lowercase()).cloned())
    }

    async fn any_client_allows_origin(&self, origin: &WebOrigin) -> oauth_core::Result<bool> {
        Ok(self.snapshot().clients.values().any(|c| c.allows_origin(origin)))
    }
}
