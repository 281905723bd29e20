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

/// Opens a connection and starts a POST whose body never completes, so the
/// request is in its handler (busy) until the body timeout.
async fn busy_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n";
    stream.write_all(format!("{head}Content-Length: 100\r\n\r\ngrant_type=").as_bytes()).await.unwrap();
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
    let s = start(Options { max_connections: 2, ..Options::default() }).await;
    let held = [busy_connection(s.addr).await, busy_connection(s.addr).await];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, took) = read_to_close(&mut third).await;
    assert!(answer.is_empty() && took < Duration::from_secs(2), "over the limit: {answer:?} after {took:?}");
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
    let s = start(Options { max_connections: LIMIT, ..Options::default() }).await;
    // Half the slots stay busy throughout; the flood fights over the rest.
    let mut busy = Vec::new();
    for _ in 0..LIMIT / 2 {
        busy.push(busy_connection(s.addr).await);
    }
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
