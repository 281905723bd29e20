//! The accept loop: connection limit, header timeout, keep-alive, and graceful
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::Frontend;

/// Largest request head (request line and headers) read before the
/// connection is refused with 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Serves `frontend` on `listener` until `shutdown` completes; then stops
/// accepting, lets in-flight requests finish for up to `drain`, and returns.
pub async fn serve(
    listener: TcpListener,
    frontend: Arc<Frontend>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(frontend.config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
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
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Over the limit: refuse by closing at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let f = frontend.clone();
        let service = service_fn(move |req| {
            let f = f.clone();
            async move { Ok::<_, Infallible>(f.handle(req, peer).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // The header timer also runs while a keep-alive connection waits for
            // its next request, so it bounds idle time too.
            .header_read_timeout(frontend.config.header_read_timeout.min(frontend.config.idle_timeout))
            .keep_alive(true)
            // hyper refuses more than 100 headers with 431 by default, keeping
            // them on the stack; setting max_headers would move them to the heap.
            .max_buf_size(MAX_HEAD);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: connections still open after the drain deadline");
    }
    Ok(())
}
