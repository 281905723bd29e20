//! The accept loop: connection limit, header timeout, keep-alive, and graceful
//! shutdown.
//!
//! At the connection limit a new connection does not simply lose: if some
//! connection is idle (no request being handled), the one idle longest is
//! closed and the newcomer takes its place. Only when every connection is busy
//! is the newcomer closed at once. An attacker who opens `max_connections`
//! idle sockets therefore cannot lock out real clients, and a flood costs one
//! accept and one close per connection, never memory.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::response::Body;
use crate::{AdminApi, Frontend, HttpConfig};

/// What [`serve`] runs on a listener: the public [`Frontend`] or the
/// [`AdminApi`].
pub trait Handler: Send + Sync + 'static {
    /// The connection limit and timeouts of the listener.
    fn http_config(&self) -> &HttpConfig;
    /// Answers one request from `peer`.
    fn answer(
        &self,
        req: http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send;
}

impl Handler for Frontend {
    fn http_config(&self) -> &HttpConfig {
        &self.config
    }
    fn answer(
        &self,
        req: http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send {
        self.handle(req, peer)
    }
}

impl Handler for AdminApi {
    fn http_config(&self) -> &HttpConfig {
        self.config()
    }
    fn answer(
        &self,
        req: http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send {
        self.handle(req, peer)
    }
}

/// Largest request head (request line and headers) read before the
/// connection is refused with 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How long a newcomer waits for the idle connection it displaced to close.
const TAKEOVER_WAIT: Duration = Duration::from_secs(1);

/// Serves `frontend` (the public endpoints or the admin API) on `listener`
/// until `shutdown` completes; then stops accepting, lets in-flight requests
/// finish for up to `drain`, and returns.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    frontend: Arc<H>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let limit = frontend.http_config().max_connections.max(1);
    let connections = Arc::new(Semaphore::new(limit));
    let registry = Arc::new(Registry::default());
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Connection { frontend: frontend.clone(), registry: registry.clone(), stopping: stopping.clone() };
        match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(conn.run(stream, peer, permit));
            }
            Err(_) if registry.close_longest_idle() => {
                // A slot frees as soon as the displaced connection closes.
                let connections = connections.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(permit)) = tokio::time::timeout(TAKEOVER_WAIT, connections.acquire_owned()).await {
                        conn.run(stream, peer, permit).await;
                    }
                });
            }
            // Every connection is busy: refuse by closing at once.
            Err(_) => drop(stream),
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limit).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, connections.acquire_many(all)).await.is_err() {
        tracing::warn!("shutdown: connections still open after the drain deadline");
    }
    Ok(())
}

/// One accepted connection and what it shares with the accept loop.
struct Connection<H> {
    frontend: Arc<H>,
    registry: Arc<Registry>,
    stopping: watch::Receiver<bool>,
}

impl<H: Handler> Connection<H> {
    /// Serves the connection until the client closes it, it times out, it is
    /// displaced while idle, or the server stops.
    async fn run(mut self, stream: tokio::net::TcpStream, peer: std::net::SocketAddr, permit: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        let (id, slot) = self.registry.insert();
        let f = self.frontend.clone();
        let busy = slot.clone();
        let registry = self.registry.clone();
        let service = service_fn(move |req| {
            let f = f.clone();
            let guard = BusyGuard::enter(busy.clone(), registry.clone());
            async move {
                let answer = f.answer(req, peer).await;
                drop(guard);
                Ok::<_, Infallible>(answer)
            }
        });
        let config = self.frontend.http_config();
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // The header timer also runs while a keep-alive connection waits for
            // its next request, so it bounds idle time too.
            .header_read_timeout(config.header_read_timeout.min(config.idle_timeout))
            .keep_alive(true)
            // hyper refuses more than 100 headers with 431 by default, keeping
            // them on the stack; setting max_headers would move them to the heap.
            .max_buf_size(MAX_HEAD);
        let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
        let mut closing = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                () = slot.displace.notified(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.stopping.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        self.registry.remove(id);
        drop(permit);
    }
}

/// What the accept loop knows about each open connection.
#[derive(Default)]
struct Registry {
    /// Time base for `Slot::idle_since`.
    epoch: OnceInstant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
}

/// One connection's state, as the accept loop sees it.
#[derive(Default)]
struct Slot {
    /// Requests being handled on the connection now.
    busy: AtomicUsize,
    /// When its last request finished (or it opened), in ms since the epoch.
    idle_since: AtomicU64,
    /// Set once the connection was chosen to make room.
    displaced: AtomicBool,
    /// Wakes the connection task to close gracefully.
    displace: Notify,
}

impl Registry {
    fn insert(&self) -> (u64, Arc<Slot>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        slot.idle_since.store(self.epoch.millis(), Ordering::Relaxed);
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(id, slot.clone());
        (id, slot)
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Asks the connection idle longest to close; false when none is idle.
    fn close_longest_idle(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let victim = open
            .values()
            .filter(|s| s.busy.load(Ordering::Acquire) == 0 && !s.displaced.load(Ordering::Relaxed))
            .min_by_key(|s| s.idle_since.load(Ordering::Relaxed));
        match victim {
            Some(slot) => {
                slot.displaced.store(true, Ordering::Relaxed);
                slot.displace.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Marks a connection busy while one request is handled.
struct BusyGuard {
    slot: Arc<Slot>,
    registry: Arc<Registry>,
}

impl BusyGuard {
    fn enter(slot: Arc<Slot>, registry: Arc<Registry>) -> Self {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard { slot, registry }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot.idle_since.store(self.registry.epoch.millis(), Ordering::Relaxed);
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The instant the registry was made, for cheap millisecond stamps.
struct OnceInstant(Instant);

impl Default for OnceInstant {
    fn default() -> Self {
        OnceInstant(Instant::now())
    }
}

impl OnceInstant {
    fn millis(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
