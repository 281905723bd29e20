//! A single-page app on another origin, in a real browser: headless Chromium
//! loads `examples/spa/index.html` from its own loopback origin, with
//! oauth4webapi's build from `interop/node_modules` (no CDN), and the page
//! completes a code flow against the real binary with cross-origin fetches:
//! discovery, the code exchange, `/userinfo`, a refresh and a revocation. A
//! page on an origin no client has can read the metadata but not the token
//! endpoint's or `/userinfo`'s answers.
//!
//! Needs Debian's `chromium` and `chromium-driver`, Node.js's packages in
//! `interop/` (`cargo xtask test` installs them), as the other browser and
//! interop tests do.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use support::*;

/// chromedriver in a process group of its own, so that dropping this (even
/// when a test panics before closing its session) ends the browser too.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: install the Debian packages chromium and chromium-driver (.ci/run does)");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-crash-reporter", "--disable-breakpad"
        ]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session");
    (driver, client)
}

/// A static web server on `listener`: `/oauth4webapi.js` is the library's
/// build, anything else under `/` is `page`.
fn serve_page(listener: TcpListener, page: String) {
    let library = Path::new(ROOT).join("interop/node_modules/oauth4webapi/build/index.js");
    let library = std::fs::read(&library).unwrap_or_else(|_| {
        panic!("{} is missing: run `npm ci --prefix interop` (cargo xtask test does it)", library.display())
    });
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
            let path = line.split(' ').nth(1).unwrap_or("/");
            let (status, kind, body): (&str, &str, &[u8]) = if path == "/oauth4webapi.js" {
                ("200 OK", "text/javascript", &library)
            } else if path == "/" || path.starts_with("/?") {
                ("200 OK", "text/html; charset=utf-8", page.as_bytes())
            } else {
                ("404 Not Found", "text/plain", b"not found")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
}

/// Waits until the page's `#result` holds JSON; returns it.
async fn result(c: &Client) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = c.find(Locator::Id("result")).await {
            let text = e.text().await.unwrap_or_default();
            if !text.is_empty() {
                return serde_json::from_str(&text).unwrap();
            }
        }
        let here = c.current_url().await.unwrap();
        assert!(Instant::now() < deadline, "no result at {here}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A page on an origin no client has: what it can read.
const STRANGER: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>
<pre id="result"></pre>
<script type="module">
const issuer = 'ISSUER'
async function attempt(f) {
  try { return `read ${(await f()).status}` } catch (e) { return `blocked: ${e.name}` }
}
const result = {
  metadata: await attempt(() => fetch(`${issuer}/.well-known/oauth-authorization-server`)),
  token: await attempt(() => fetch(`${issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'demo-spa' }),
  })),
  userinfo: await attempt(() => fetch(`${issuer}/userinfo`, { headers: { authorization: 'Bearer x' } })),
}
document.getElementById('result').textContent = JSON.stringify(result)
</script></body></html>"#;

#[tokio::test]
async fn a_single_page_app_on_another_origin_completes_a_code_flow_with_oauth4webapi_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    // The quick start's demo-spa lives on 127.0.0.1:5173; move it to a free
    // port, as the server itself moves from 8080.
    let spa = TcpListener::bind("127.0.0.1:0").unwrap();
    let spa_origin = format!("http://127.0.0.1:{}", spa.local_addr().unwrap().port());
    let (config, base) = quickstart(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace("http://127.0.0.1:5173", &spa_origin);
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, dir.path());

    let page = std::fs::read_to_string(Path::new(ROOT).join("examples/spa/index.html"))
        .unwrap()
        .replace("http://127.0.0.1:8080", &base);
    serve_page(spa, page);
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    let stranger_origin = format!("http://127.0.0.1:{}", stranger.local_addr().unwrap().port());
    serve_page(stranger, STRANGER.replace("ISSUER", &base));

    let (_driver, c) = browser().await;
    c.goto(&format!("{spa_origin}/")).await.unwrap();
    c.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
    // The authorization server's own pages: the user's part.
    let username = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("username")).await.unwrap();
    username.send_keys("alice").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys("alice-password").await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let allow = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("button[value=approve]")).await;
    allow.unwrap().click().await.unwrap();

    let done = result(&c).await;
    assert_eq!(c.current_url().await.unwrap().as_str(), format!("{spa_origin}/"), "back on the app's origin");
    assert_eq!(
        done,
        serde_json::json!({"ok": true, "scope": "read", "username": "alice", "rotated": true}),
        "the page's own report"
    );
    server.wait_for("client_id=demo-spa");

    c.goto(&format!("{stranger_origin}/")).await.unwrap();
    let seen = result(&c).await;
    assert_eq!(
        seen,
        serde_json::json!({"metadata": "read 200", "token": "blocked: TypeError", "userinfo": "blocked: TypeError"}),
        "what a page on a stranger's origin can read"
    );
    c.close().await.unwrap();
    assert_eq!(server.stop(), 0);
}
