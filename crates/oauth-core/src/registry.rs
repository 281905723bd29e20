//! Where the flows find clients at run time: the read-only clients of the
//! configuration file and the OAuth Client List, layered over the clients the
//! store keeps (created through the admin API or by dynamic registration).
//!
//! Store clients are cached per node for at most [`StoredClients::TTL`], so a
//! busy client costs no store round trip per request; a change made through
//! another node therefore holds here within that time (SPEC-2: 10 s). The node
//! that makes a change drops its copy at once ([`ClientRegistry::forget`]),
//! and a read that began before a change on this node is never cached, so
//! there the change holds at once. Unknown ids are not cached: a client
//! created on another node is found at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::client::{Client, ClientRegistry};
use crate::error::{Error, Result};
use crate::services::Clock;
use crate::store::{Store, StoreError};
use crate::types::{ClientId, WebOrigin};

/// Where a client is defined, as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSource {
    /// `[[clients]]` of the configuration file: read-only.
    Configuration,
    /// The MedMij OAuth Client List: read-only.
    Ocl,
    /// The store, created through the admin API.
    Admin,
    /// The store, registered by itself (RFC 7591).
    Registration,
}

impl ClientSource {
    /// The name the admin API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSource::Configuration => "configuration",
            ClientSource::Ocl => "ocl",
            ClientSource::Admin => "admin",
            ClientSource::Registration => "registration",
        }
    }

    /// Whether the admin API may change such a client.
    pub fn read_only(self) -> bool {
        matches!(self, ClientSource::Configuration | ClientSource::Ocl)
    }
}

/// Clients that the admin API lists but never changes: those of the
/// configuration file and of the OAuth Client List. They are in memory, so
/// these calls do not wait.
pub trait FixedClients: Send + Sync {
    /// The client with this id (OCL hostnames ignoring ASCII case), with where
    /// it is defined.
    fn fixed_client(&self, id: &ClientId) -> Option<(Arc<Client>, ClientSource)>;
    /// Every such client, in `client_id` order.
    fn fixed_clients(&self) -> Vec<(Arc<Client>, ClientSource)>;
}

/// The clients of the store, cached per node for at most [`Self::TTL`].
pub struct StoredClients {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<ClientId, (Arc<Client>, OffsetDateTime)>>,
    /// Every origin some stored client allows, with when it was read: a CORS
    /// preflight names no client, so the answer covers them all.
    origins: Mutex<Option<(Arc<BTreeSet<WebOrigin>>, OffsetDateTime)>>,
    /// Bumped by every [`ClientRegistry::forget`]: a read that saw another
    /// value when it began is not cached.
    changes: AtomicU64,
}

impl std::fmt::Debug for StoredClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredClients").finish_non_exhaustive()
    }
}

impl StoredClients {
    /// How long a node may use a client it read (SPEC-2 allows 10 s).
    pub const TTL: Duration = Duration::seconds(5);
    /// Past this many cached clients the cache starts over, so a flood of
    /// requests naming many clients cannot grow it.
    pub const MAX_CACHED: usize = 10_000;
    /// How many clients one store read returns while collecting origins.
    const SCAN_PAGE: usize = 500;

    /// The clients of `store`, timed by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        StoredClients {
            store,
            clock,
            cache: Mutex::new(HashMap::new()),
            origins: Mutex::new(None),
            changes: AtomicU64::new(0),
        }
    }

    /// Every origin the stored clients allow, read from the store at most
    /// once per [`Self::TTL`] (and again after a change on this node).
    async fn stored_origins(&self) -> Result<Arc<BTreeSet<WebOrigin>>> {
        let now = self.clock.now();
        if let Some((origins, read_at)) = self.origins.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            if now < *read_at + Self::TTL {
                return Ok(origins.clone());
            }
        }
        let generation = self.changes.load(Ordering::Acquire);
        let mut origins = BTreeSet::new();
        let mut after: Option<ClientId> = None;
        loop {
            let page = self.store.client_records(after.as_ref(), Self::SCAN_PAGE).await?;
            for record in &page {
                if let Ok(client) = record.to_client() {
                    origins.extend(client.origins().iter().cloned());
                }
            }
            match page.last() {
                Some(last) if page.len() == Self::SCAN_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        let origins = Arc::new(origins);
        let mut slot = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        if self.changes.load(Ordering::Acquire) == generation {
            *slot = Some((origins.clone(), now));
        }
        Ok(origins)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, (Arc<Client>, OffsetDateTime)>> {
        // The map holds only copies; a panic mid-update leaves it usable.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ClientRegistry for StoredClients {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>> {
        let now = self.clock.now();
        if let Some((client, read_at)) = self.lock().get(id) {
            if now < *read_at + Self::TTL {
                return Ok(Some(client.clone()));
            }
        }
        let generation = self.changes.load(Ordering::Acquire);
        let Some(record) = self.store.client_record(id).await? else {
            return Ok(None);
        };
        // Every record was checked when it was written; one that fails now is
        // damaged, not a client.
        let client =
            Arc::new(record.to_client().map_err(|_| Error::Store(StoreError::Corrupt("stored client".into())))?);
        let mut cache = self.lock();
        if self.changes.load(Ordering::Acquire) == generation {
            if cache.len() >= Self::MAX_CACHED {
                cache.clear();
            }
            cache.insert(id.clone(), (client.clone(), now));
        }
        Ok(Some(client))
    }

    async fn any_client_allows_origin(&self, origin: &WebOrigin) -> Result<bool> {
        Ok(self.stored_origins().await?.contains(origin))
    }

    fn forget(&self, id: &ClientId) {
        let mut cache = self.lock();
        self.changes.fetch_add(1, Ordering::AcqRel);
        cache.remove(id);
        *self.origins.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The registry the server runs with: the fixed clients first, then the
/// store's.
pub struct LayeredClients {
    fixed: Arc<dyn FixedClients>,
    stored: StoredClients,
}

impl std::fmt::Debug for LayeredClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayeredClients").finish_non_exhaustive()
    }
}

impl LayeredClients {
    /// `fixed` over the clients of `store`.
    pub fn new(fixed: Arc<dyn FixedClients>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        LayeredClients { fixed, stored: StoredClients::new(store, clock) }
    }

    /// The read-only layer.
    pub fn fixed(&self) -> &Arc<dyn FixedClients> {
        &self.fixed
    }
}

#[async_trait]
impl ClientRegistry for LayeredClients {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>> {
        if let Some((client, _)) = self.fixed.fixed_client(id) {
            return Ok(Some(client));
        }
        self.stored.client(id).await
    }

    async fn any_client_allows_origin(&self, origin: &WebOrigin) -> Result<bool> {
        if self.fixed.fixed_clients().iter().any(|(c, _)| c.allows_origin(origin)) {
            return Ok(true);
        }
        self.stored.any_client_allows_origin(origin).await
    }

    fn forget(&self, id: &ClientId) {
        self.stored.forget(id);
    }
}

/// No fixed clients: a server whose clients all live in the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFixedClients;

impl FixedClients for NoFixedClients {
    fn fixed_client(&self, _: &ClientId) -> Option<(Arc<Client>, ClientSource)> {
        None
    }
    fn fixed_clients(&self) -> Vec<(Arc<Client>, ClientSource)> {
        Vec::new()
    }
}
