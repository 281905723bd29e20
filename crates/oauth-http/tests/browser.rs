//! The login, consent and device pages in a real browser: headless Chromium,
//! driven through chromedriver, clicks through login and consent and lands on
//! the client's redirect URI with a code, at a phone's width; and types a
//! device's user code while the device polls, and lands on the page that says
//! to return to the device.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run`
//! installs them). With `OAUTH_SCREENSHOTS=DIR` it saves a PNG of each page
//! there (the ones in `docs/screenshots/` were made this way).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
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

fn chromedriver() -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: install the Debian packages chromium and chromium-driver (.ci/run does)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Driver(child), port)
}

/// A stand-in for the client's redirect endpoint: answers 200 to anything.
fn client_endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    port
}

async fn save(c: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("OAUTH_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), c.screenshot().await.unwrap()).unwrap();
    }
}

/// A headless Chromium session at a phone's width.
async fn browser(port: u16) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-crash-reporter", "--disable-breakpad"
        ],
        // A phone's viewport: a headless window cannot be narrower than 500 px.
        "mobileEmulation": {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}}}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session")
}

/// Waits until the browser is at `prefix` (the client's redirect URI).
async fn land(c: &fantoccini::Client, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = c.current_url().await.unwrap();
        if now.as_str().starts_with(prefix) {
            return now.to_string();
        }
        assert!(Instant::now() < deadline, "stuck at {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_real_browser_logs_in_consents_and_reaches_the_client_with_a_code() {
    let s = start(Options::default()).await;
    let (_driver, port) = chromedriver();
    let c = browser(port).await;

    // The registered redirect URI is http://127.0.0.1:9000/callback; RFC 8252 7.3
    // lets a loopback client pick its port at run time.
    let callback = format!("http://127.0.0.1:{}/callback", client_endpoint());
    let url = format!(
        "{}/authorize?response_type=code&client_id={CONFIDENTIAL}&redirect_uri={}&scope=read&state=br0wser&code_challenge={CHALLENGE}&code_challenge_method=S256",
        s.base,
        urlencode(&callback)
    );
    c.goto(&url).await.unwrap();
    save(&c, "login").await;
    // Nothing scrolls sideways at 390 px.
    let widths = c.execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![]).await.unwrap();
    assert_eq!(widths, serde_json::json!([390, 390]), "[viewport, page] widths");
    c.find(Locator::Id("username")).await.unwrap().send_keys(USERNAME).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();

    let allow = c.wait().for_element(Locator::Css("button[value=approve]")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("Demo App") && page.contains("Read your data"), "{page}");
    save(&c, "consent").await;
    allow.click().await.unwrap();

    let landed = land(&c, &callback).await;
    let code = query(&landed, "code").expect("a code");
    assert_eq!(query(&landed, "state").as_deref(), Some("br0wser"));
    assert_eq!(query(&landed, "iss").as_deref(), Some(s.base.as_str()));
    c.close().await.unwrap();

    let resp = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_real_browser_signs_in_once_for_two_clients_and_logs_out() {
    let s = start(Options::default()).await;
    let (_driver, port) = chromedriver();
    let c = browser(port).await;
    let callback = format!("http://127.0.0.1:{}/callback", client_endpoint());
    let url = |client: &str| {
        format!(
            "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile&state=sso&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256",
            s.base,
            urlencode(&callback)
        )
    };

    // The first client: login and consent.
    c.goto(&url(OIDC)).await.unwrap();
    c.find(Locator::Id("username")).await.unwrap().send_keys(USERNAME).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("button[value=approve]")).await.unwrap().click().await.unwrap();
    assert!(query(&land(&c, &callback).await, "code").is_some());

    // The second client: no login page, the consent page names the account.
    c.goto(&url(OIDC_OTHER)).await.unwrap();
    let allow = c.wait().for_element(Locator::Css("button[value=approve]")).await.unwrap();
    assert!(c.find(Locator::Id("password")).await.is_err(), "no login page with a live session");
    let page = c.source().await.unwrap();
    assert!(page.contains("Other App") && page.contains(USERNAME), "{page}");
    let widths = c.execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![]).await.unwrap();
    assert_eq!(widths, serde_json::json!([390, 390]), "[viewport, page] widths");
    save(&c, "consent-signed-in").await;
    allow.click().await.unwrap();
    assert!(query(&land(&c, &callback).await, "code").is_some());

    // Logout: the confirmation page, one button, then the signed-out page.
    c.goto(&format!("{}/logout", s.base)).await.unwrap();
    save(&c, "logout").await;
    c.find(Locator::Css("form[action='/logout'] button[type=submit]")).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.source().await.unwrap().contains("Signed out") {
        assert!(Instant::now() < deadline, "no signed-out page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The next authorization shows the login page again.
    c.goto(&url(OIDC)).await.unwrap();
    c.wait().for_element(Locator::Id("password")).await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_real_browser_types_a_device_code_logs_in_and_approves_while_the_device_polls() {
    let s = start(Options { device_interval: time::Duration::seconds(1), ..Options::default() }).await;
    let started = device_start(&s, "openid read").await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    assert_eq!(device_poll(&s, &device_code).await.1["error"], "authorization_pending");
    let (_driver, port) = chromedriver();
    let c = browser(port).await;

    // The user types the code from the TV, in lower case and without the dash.
    c.goto(started["verification_uri"].as_str().unwrap()).await.unwrap();
    save(&c, "device").await;
    let widths = c.execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![]).await.unwrap();
    assert_eq!(widths, serde_json::json!([390, 390]), "[viewport, page] widths");
    let typed = user_code.to_lowercase().replace('-', "");
    c.find(Locator::Id("user_code")).await.unwrap().send_keys(&typed).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();

    c.wait().for_element(Locator::Id("password")).await.unwrap();
    c.find(Locator::Id("username")).await.unwrap().send_keys(USERNAME).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();

    let allow = c.wait().for_element(Locator::Css("button[value=approve]")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("Living Room TV") && page.contains(&user_code), "the consent page shows the code: {page}");
    save(&c, "device-consent").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(device_poll(&s, &device_code).await.1["error"], "authorization_pending", "not yet approved");
    allow.click().await.unwrap();

    land(&c, &format!("{}/device/done", s.base)).await;
    let page = c.source().await.unwrap();
    assert!(page.contains("Return to your device"), "{page}");
    save(&c, "device-done").await;
    c.close().await.unwrap();

    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (status, tokens) = device_poll(&s, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
}
