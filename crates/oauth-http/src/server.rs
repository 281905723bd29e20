//! The accept loop: connection limits, header timeout, keep-alive, and graceful
//! shutdown.
//!
//! Slow clients cannot fill the connection limit (SPEC). Each connection is,
//! at any moment, either *waiting* (idle between requests, or still sending a
//! request head), *reading a body*, or *busy* (its request is being handled).
//! At the limit a new connection does not simply lose: the connection that has
//! been waiting or reading a body the longest is closed at once, whatever it
//! was in the middle of, and the newcomer takes its place. Only when every
//! connection is busy is the newcomer closed at once. So an attacker who holds
//! `max_connections` sockets open, sending nothing, or a head or a body one
//! byte at a time, cannot lock out real clients, and a flood costs one accept
//! and one close per connection, never memory.
//!
//! One address may hold at most `max_connections_per_ip` connections (trusted
//! proxies are exempt: they carry many clients). At that cap a newcomer from
//! the address displaces that address's own longest-waiting connection, or is
//! closed when all of them are busy; it never displaces anyone else's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body as HttpBody, Frame, SizeHint};
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
    /// Answers one request from `peer`. The body is generic so that the
    /// accept loop can watch it arrive (to tell a slow client from a busy
    /// server).
    fn answer<B>(
        &self,
        req: http::Request<B>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<crate::BoxError>;
}

impl Handler for Frontend {
    fn http_config(&self) -> &HttpConfig {
        &self.config
    }
    fn answer<B>(
        &self,
        req: http::Request<B>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<crate::BoxError>,
    {
        self.handle(req, peer)
    }
}

impl Handler for AdminApi {
    fn http_config(&self) -> &HttpConfig {
        self.config()
    }
    fn answer<B>(
        &self,
        req: http::Request<B>,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<crate::BoxError>,
    {
        self.handle(req, peer)
    }
}

/// Largest request head (request line and headers) read before the
/// connection is refused with 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How long a newcomer waits for the connection it displaced to close.
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
    let per_ip = frontend.http_config().max_connections_per_ip.max(1);
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
        let ip = peer.ip().to_canonical();
        let capped = !frontend.http_config().trusted_proxies.contains(&ip);
        // Counted from now on, so that a burst from one address sees itself.
        let address = registry.address(ip);
        let conn =
            Connection { frontend: frontend.clone(), registry: registry.clone(), stopping: stopping.clone(), address };
        if capped && conn.address.count() > per_ip {
            // At the address's own cap: it makes room among its own
            // connections, or waits for nobody.
            if !registry.displace_longest_waiting(Some(ip)) {
                continue;
            }
            tokio::spawn(conn.run_when_free(connections.clone(), stream, peer));
            continue;
        }
        match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(conn.run(stream, peer, permit));
            }
            Err(_) if registry.displace_longest_waiting(None) => {
                // A slot frees as soon as the displaced connection closes.
                tokio::spawn(conn.run_when_free(connections.clone(), stream, peer));
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
    /// Its place in its address's count; the count drops when this does.
    address: AddressCount,
}

impl<H: Handler> Connection<H> {
    /// Waits (a little) for a free slot, then serves; a newcomer that
    /// displaced another connection takes its slot this way.
    async fn run_when_free(self, connections: Arc<Semaphore>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        if let Ok(Ok(permit)) = tokio::time::timeout(TAKEOVER_WAIT, connections.acquire_owned()).await {
            self.run(stream, peer, permit).await;
        }
    }
    /// Serves the connection until the client closes it, it times out, it is
    /// displaced, or the server stops.
    async fn run(mut self, stream: tokio::net::TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        let (id, slot) = self.registry.insert(peer.ip().to_canonical());
        let f = self.frontend.clone();
        let tracked = slot.clone();
        let registry = self.registry.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let f = f.clone();
            let guard = PhaseGuard::enter(tracked.clone(), registry.clone(), req.body().is_end_stream());
            let req = req.map(|body| TrackedBody { inner: body, slot: tracked.clone() });
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
                // Displaced: closed now, not gracefully. A graceful shutdown
                // waits for a head or body that has begun, which is exactly
                // what a slow client never finishes.
                () = slot.displace.notified() => break,
                _ = self.stopping.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        self.registry.remove(id);
        drop(self.address);
        drop(permit);
    }
}

/// What the accept loop knows about each open connection.
#[derive(Default)]
struct Registry {
    /// Time base for `Slot::since`.
    epoch: OnceInstant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Connections per address, accepted ones waiting for a slot included.
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Where a connection is, for choosing whom to displace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Idle between requests, or still sending a request head.
    Waiting = 0,
    /// The head arrived; the body is still coming.
    ReadingBody = 1,
    /// The request is being handled.
    Busy = 2,
}

/// One connection's state, as the accept loop sees it.
struct Slot {
    ip: IpAddr,
    /// A [`Phase`].
    phase: AtomicU8,
    /// When it entered its phase, in ms since the epoch.
    since: AtomicU64,
    /// Set once the connection was chosen to make room.
    displaced: AtomicBool,
    /// Wakes the connection task to close.
    displace: Notify,
}

impl Slot {
    fn set(&self, phase: Phase, registry: &Registry) {
        self.since.store(registry.epoch.millis(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Release);
    }
}

impl Registry {
    fn insert(&self, ip: IpAddr) -> (u64, Arc<Slot>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            ip,
            phase: AtomicU8::new(Phase::Waiting as u8),
            since: AtomicU64::new(self.epoch.millis()),
            displaced: AtomicBool::new(false),
            displace: Notify::new(),
        });
        lock(&self.open).insert(id, slot.clone());
        (id, slot)
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Counts one more connection from `ip` until the returned value drops.
    fn address(&self, ip: IpAddr) -> AddressCount {
        let count = {
            let mut by = lock(&self.by_address);
            let n = by.entry(ip).or_insert(0);
            *n += 1;
            *n
        };
        AddressCount { ip, count, by_address: self.by_address.clone() }
    }

    /// Closes the connection (of address `ip`, or any) that has been waiting
    /// or reading a body the longest; false when every one is busy.
    fn displace_longest_waiting(&self, ip: Option<IpAddr>) -> bool {
        let open = lock(&self.open);
        let victim = open
            .values()
            .filter(|s| ip.is_none_or(|ip| s.ip == ip))
            .filter(|s| s.phase.load(Ordering::Acquire) != Phase::Busy as u8 && !s.displaced.load(Ordering::Relaxed))
            .min_by_key(|s| s.since.load(Ordering::Relaxed));
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold only bookkeeping that no panic leaves half changed.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection's place in its address's count.
struct AddressCount {
    ip: IpAddr,
    /// The address's count when this one was added.
    count: usize,
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl AddressCount {
    fn count(&self) -> usize {
        self.count
    }
}

impl Drop for AddressCount {
    fn drop(&mut self) {
        let mut by = lock(&self.by_address);
        if let Some(n) = by.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by.remove(&self.ip);
            }
        }
    }
}

/// Marks a connection as reading a body or busy while one request is handled,
/// and as waiting again when it is answered.
struct PhaseGuard {
    slot: Arc<Slot>,
    registry: Arc<Registry>,
}

impl PhaseGuard {
    fn enter(slot: Arc<Slot>, registry: Arc<Registry>, body_done: bool) -> Self {
        slot.set(if body_done { Phase::Busy } else { Phase::ReadingBody }, &registry);
        PhaseGuard { slot, registry }
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.slot.set(Phase::Waiting, &self.registry);
    }
}

/// A request body that marks its connection busy once it has arrived whole
/// (or failed): from then on the server is working, not waiting for the client.
struct TrackedBody<B> {
    inner: B,
    slot: Arc<Slot>,
}

impl<B> TrackedBody<B> {
    fn arrived(&self) {
        // Only the move from reading to busy: the guard has the last word.
        let _ = self.slot.phase.compare_exchange(
            Phase::ReadingBody as u8,
            Phase::Busy as u8,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

impl<B: HttpBody + Unpin> HttpBody for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.arrived(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.arrived(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
