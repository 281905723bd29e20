//! Slow clients, connection floods and header floods, over raw TCP: each is
//! cut off quickly, and the server goes on serving.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or 5 s pass); returns what
/// it sent and how long it took.
async fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test]
async fn slow_headers_are_cut_off_after_the_header_timeout() {
    let s = start(Options { header_read_timeout: Duration::from_secs(1), ..Options::default() }).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(b"POST /token HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (answer, took) = read_to_close(&mut stream).await;
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A server whose password checks wait until released, so that a password
/// grant keeps its connection busy (its request in the handler).
async fn holding_server(opts: Options) -> (TestServer, std::sync::Arc<HeldVerifier>) {
    let held = HeldVerifier::new();
    let s = start(Options { verifier: Some(held.clone()), max_failures_per_account: 1000, ..opts }).await;
    (s, held)
}

/// Opens a connection and sends a whole password grant, which the held
/// verifier keeps in its handler: a busy connection.
async fn busy_connection(addr: std::net::SocketAddr) -> TcpStream {
    use base64::Engine;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CONFIDENTIAL}:{SECRET}"));
    let body = format!("grant_type=password&username={USERNAME}&password=x");
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
    stream
}

/// A GET /healthz on a fresh connection: the status line, or "" when closed.
async fn healthz_status(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let (answer, _) = read_to_close(&mut stream).await;
    answer.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn at_the_limit_the_longest_idle_connection_makes_room() {
    let s = start(Options { max_connections: 2, ..Options::default() }).await;
    let mut oldest = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(healthz_status(s.addr).await, "HTTP/1.1 200 OK");
    let (_, took) = read_to_close(&mut oldest).await;
    assert!(took < Duration::from_secs(2), "the longest idle connection was not closed");
    // The newer idle connection was left alone and still works.
    newer.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (answer, _) = read_to_close(&mut newer).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn when_every_connection_is_busy_new_ones_are_closed_at_once() {
    let (s, verifier) = holding_server(Options { max_connections: 2, ..Options::default() }).await;
    let held = [busy_connection(s.addr).await, busy_connection(s.addr).await];
    verifier.wait_for(2).await;
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, took) = read_to_close(&mut third).await;
    assert!(answer.is_empty() && took < Duration::from_secs(2), "over the limit: {answer:?} after {took:?}");
    verifier.release();
    drop(held);
    // The slots free as the server sees the busy connections close.
    let deadline = Instant::now() + Duration::from_secs(3);
    while healthz_status(s.addr).await != "HTTP/1.1 200 OK" {
        assert!(Instant::now() < deadline, "no slot freed after the held connections closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory of this process in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_connection_flood_sheds_load_keeps_health_and_bounds_memory() {
    const LIMIT: usize = 32;
    let (s, verifier) = holding_server(Options { max_connections: LIMIT, ..Options::default() }).await;
    // Half the slots stay busy throughout; the flood fights over the rest.
    let mut busy = Vec::new();
    for _ in 0..LIMIT / 2 {
        busy.push(busy_connection(s.addr).await);
    }
    verifier.wait_for(LIMIT / 2).await;
    let mut growth = Vec::new();
    let before = rss_kib();
    for wave in 0..10 {
        // 200 idle connections at once, over a limit of 32.
        let mut flood = Vec::new();
        for _ in 0..200 {
            flood.push(TcpStream::connect(s.addr).await.unwrap());
        }
        let started = Instant::now();
        assert_eq!(healthz_status(s.addr).await, "HTTP/1.1 200 OK", "wave {wave}");
        assert!(started.elapsed() < Duration::from_secs(2), "wave {wave}: health took {:?}", started.elapsed());
        drop(flood);
        growth.push(rss_kib().saturating_sub(before));
    }
    // 2,000 connections later, memory has not grown with them (the first
    // waves may warm allocator pools; 8 MiB is far below what 2,000 kept buffers would take).
    eprintln!("rss growth KiB per wave: {growth:?}");
    let last = *growth.last().unwrap();
    assert!(last < 8 * 1024, "resident memory grew by {last} KiB: {growth:?}");
    verifier.release();
}

/// Health checks on fresh connections for `for_how_long`, one after another:
/// how many were answered 200 within 2 s, of how many.
async fn health_under_attack(addr: std::net::SocketAddr, for_how_long: Duration) -> (usize, usize) {
    let (mut ok, mut all) = (0, 0);
    let end = Instant::now() + for_how_long;
    while Instant::now() < end {
        let answered = tokio::time::timeout(Duration::from_secs(2), healthz_status(addr)).await;
        all += 1;
        if answered.is_ok_and(|status| status == "HTTP/1.1 200 OK") {
            ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (ok, all)
}

#[tokio::test]
async fn slow_request_heads_cannot_fill_the_connection_limit() {
    const LIMIT: usize = 64;
    let s = start(Options { max_connections: LIMIT, ..Options::default() }).await;
    // The attack: 70 sockets that each send one byte of a request head, and
    // open again whenever the server closes them.
    let attacker = tokio::spawn(async move {
        let mut open = std::collections::VecDeque::new();
        loop {
            while open.len() < 70 {
                if let Ok(mut c) = TcpStream::connect(s.addr).await {
                    let _ = c.write_all(b"P").await;
                    open.push_back(c);
                }
            }
            // Replace the ones the server closed.
            let mut byte = [0u8; 1];
            for _ in 0..open.len() {
                let mut c = open.pop_front().unwrap();
                match tokio::time::timeout(Duration::from_millis(1), c.read(&mut byte)).await {
                    Ok(_) => {}
                    Err(_) => open.push_back(c),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, all) = health_under_attack(s.addr, Duration::from_secs(3)).await;
    attacker.abort();
    assert_eq!(ok, all, "health checks answered while slow heads fill the limit");
}

#[tokio::test]
async fn slow_request_bodies_cannot_fill_the_connection_limit() {
    const LIMIT: usize = 64;
    let s = start(Options { max_connections: LIMIT, ..Options::default() }).await;
    // The attack: 64 POST /token that announce 1,000 bytes and send one a second.
    let mut slow = Vec::new();
    for _ in 0..LIMIT {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let head = "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n";
        c.write_all(format!("{head}Content-Length: 1000\r\n\r\ng").as_bytes()).await.unwrap();
        slow.push(c);
    }
    let dribble = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for c in &mut slow {
                let _ = c.write_all(b"r").await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answered = 0;
    for _ in 0..40 {
        let r = tokio::time::timeout(Duration::from_secs(2), http().get(format!("{}/healthz", s.base)).send()).await;
        if r.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)) {
            answered += 1;
        }
    }
    dribble.abort();
    assert_eq!(answered, 40, "real requests answered while slow bodies fill the limit");
}

/// A connection from `ip` (a loopback address such as 127.0.0.2).
async fn connect_from(ip: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// True when the server closes `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut out = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut out)).await.is_ok()
}

#[tokio::test]
async fn one_address_holds_at_most_max_connections_per_ip_and_displaces_only_its_own() {
    let s = start(Options { max_connections_per_ip: 4, ..Options::default() }).await;
    let mut other = connect_from("127.0.0.3", s.addr).await;
    let mut own = Vec::new();
    for _ in 0..4 {
        own.push(connect_from("127.0.0.2", s.addr).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fifth from the capped address takes the place of its own oldest...
    let mut fifth = connect_from("127.0.0.2", s.addr).await;
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (answer, _) = read_to_close(&mut fifth).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed_within(&mut own[0], Duration::from_secs(2)).await, "its oldest connection made room");
    // ...never another address's, which was older still.
    assert!(!closed_within(&mut other, Duration::from_millis(500)).await, "another address is left alone");
    assert!(!closed_within(&mut own[1], Duration::from_millis(100)).await);
}

#[tokio::test]
async fn trusted_proxies_are_exempt_from_the_per_address_cap() {
    let proxy = "127.0.0.4";
    let s = start(Options {
        max_connections_per_ip: 2,
        trusted_proxies: vec![proxy.parse().unwrap()],
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(proxy, s.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for c in &mut held {
        assert!(!closed_within(c, Duration::from_millis(100)).await, "a proxy carries many clients");
    }
}

#[tokio::test]
async fn header_floods_are_refused_without_a_5xx() {
    let s = start(Options::default()).await;
    let many: String = (0..300).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge = format!("x-big: {}\r\n", "a".repeat(100_000));
    for headers in [many, huge] {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        let req = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let _ = stream.write_all(req.as_bytes()).await;
        let (answer, _) = read_to_close(&mut stream).await;
        let status = answer.get(9..12).unwrap_or("");
        assert!(
            answer.is_empty() || status == "431" || status == "400",
            "{} headers: {}",
            headers.len(),
            &answer[..answer.len().min(200)]
        );
    }
    assert_eq!(http().get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
}
