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

#[tokio::test]
async fn connections_above_the_limit_are_closed_and_service_continues() {
    let s = start(Options { max_connections: 2, ..Options::default() }).await;
    let held = [TcpStream::connect(s.addr).await.unwrap(), TcpStream::connect(s.addr).await.unwrap()];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, took) = read_to_close(&mut third).await;
    assert!(answer.is_empty() && took < Duration::from_secs(2), "over the limit: {answer:?} after {took:?}");
    drop(held);
    // The slots free as the server sees the held connections close.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match http().get(format!("{}/healthz", s.base)).send().await {
            Ok(r) if r.status() == 200 => break,
            _ => assert!(Instant::now() < deadline, "no slot freed after the held connections closed"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
