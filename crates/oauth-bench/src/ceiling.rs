//! The ceiling: the least a hyper 1.x server can do for a request.
//!
//! It runs on the same tokio multi-thread runtime and the same `http1`
//! connection settings as `oauth-http` (timer, header timeout, keep-alive,
//! 64 KiB head limit, `TCP_NODELAY`), reads the whole request body as the
//! real endpoints do, and answers every request with one fixed body: a real
//! response of the benched route, captured from the server. What it costs per
//! request is what any server on this stack pays before doing any work.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Error;

/// Serves `body` (with `content_type`) on 127.0.0.1 on an ephemeral port,
/// printing `listening on ADDR` first. Runs until killed.
pub(crate) fn serve(body: Vec<u8>, content_type: String) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        let body = Bytes::from(body);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (body, content_type) = (body.clone(), content_type.clone());
            let service = service_fn(move |req: Request<Incoming>| {
                let (body, content_type) = (body.clone(), content_type.clone());
                async move {
                    // The server reads up to 64 KiB of body; so does the ceiling.
                    let _ = Limited::new(req.into_body(), 64 * 1024).collect().await;
                    let mut resp = Response::new(Full::new(body));
                    if let Ok(v) = header::HeaderValue::from_str(&content_type) {
                        resp.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true)
                .max_buf_size(64 * 1024);
            tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
        }
    })
}
