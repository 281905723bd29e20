//! Faults and side channels: a store that hangs, and the time a failed login
//! takes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use oauth_core::*;
use oauth_runtime::GatedStore;
use oauth_store_mem::MemStore;
use support::*;
use time::OffsetDateTime;

/// A store whose every operation waits forever.
struct Hanging;

macro_rules! hanging {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        #[allow(unused_variables, reason = "a hung store ignores its arguments")]
        impl Store for Hanging {
            $(async fn $m(&self $(, $a: $t)*) -> $r { pending().await })*
        }
    };
}
oauth_core::with_store_methods!(hanging);

fn request(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(if path == "/token" { "POST" } else { "GET" })
        .uri(path)
        .header("authorization", "Basic ZGVtby1hcHA6YS1tYWNoaW5lLWdlbmVyYXRlZC1zZWNyZXQtb2YtNDMtY2hhcmFjdGVycw==")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"grant_type=client_credentials")))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_store_gives_prompt_503s_not_a_pile_of_waiting_requests() {
    let gate = Arc::new(GatedStore::new(Arc::new(Hanging), 4, Duration::from_millis(200)));
    let (frontend, _) =
        frontend_on(&Options::default(), "http://127.0.0.1:8080", Arc::new(MemStore::new()), gate).await;
    let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let f = frontend.clone();
        let path = if i % 2 == 0 { "/token" } else { "/healthz" };
        // Four requests take the four permits and hang, as a hung store makes
        // them; every other one must be refused within the store timeout.
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), f.handle(request(path), peer)).await
        }));
    }
    let mut refused = 0;
    let mut hung = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(resp) => {
                assert_eq!(resp.status(), 503);
                refused += 1;
            }
            Err(_) => hung += 1,
        }
    }
    assert_eq!(hung, 4, "only the permit holders wait on the hung store");
    assert_eq!(refused, 36);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    let opts =
        Options { max_failures_per_account: 100_000, max_failures_per_account_total: 100_000, ..Options::default() };
    let (frontend, _, _) = frontend(&opts, "http://127.0.0.1:8080").await;
    let client = frontend
        .authority()
        .authenticate_client(
            &ClientCredentials { client_id: Some(CONFIDENTIAL), secret: Some(SECRET), assertion: None },
            None,
        )
        .await
        .unwrap();
    let time = |username: &'static str| {
        let (frontend, client) = (frontend.clone(), client.clone());
        async move {
            let req = TokenRequest {
                grant_type: Some("password"),
                username: Some(username),
                password: Some("wrong"),
                ..Default::default()
            };
            let started = Instant::now();
            let err = frontend.authority().token(&client, &req, None, None).await.unwrap_err();
            assert!(matches!(err, Error::InvalidGrant(_)));
            started.elapsed()
        }
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    // Interleaved in ABBA order, so load on the machine, and whatever favours
    // the first call of a pair, fall on both alike.
    for i in 0..200 {
        if i % 2 == 0 {
            unknown.push(time("mallory").await);
            wrong.push(time(USERNAME).await);
        } else {
            wrong.push(time(USERNAME).await);
            unknown.push(time("mallory").await);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (u, w) = (median(&mut unknown), median(&mut wrong));
    let gap = u.abs_diff(w).as_secs_f64() / u.max(w).as_secs_f64();
    eprintln!("medians: unknown user {u:?}, wrong password {w:?} ({:.1}% apart)", gap * 100.0);
    assert!(gap < 0.10, "medians: unknown user {u:?}, wrong password {w:?} ({:.1}% apart)", gap * 100.0);
}
