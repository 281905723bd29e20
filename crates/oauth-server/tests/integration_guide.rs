//! docs/integration.md, run as printed: the guide shows example files whole
//! (a test here checks that it still does), and each runs against the real
//! binary on the quick start. The single-page app runs in Chromium
//! (`browser_app.rs`); the Rust resource server in `oauth-http`'s
//! `tests/resource_server.rs`; the Node programs here, with the npm packages
//! of `interop/` (`cargo xtask test` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

/// The example files the guide shows whole.
const SHOWN: &[&str] = &[
    "examples/spa/index.html",
    "examples/node/web-app.mjs",
    "examples/node/resource-server.mjs",
    "crates/oauth-http/examples/resource_server.rs",
];

/// The first fenced block after the line that links `file`: its lines, with
/// the final newline.
fn shown(guide: &str, file: &str) -> String {
    let link = format!("[`{file}`]");
    let mut lines = guide.lines().skip_while(|l| !l.contains(&link));
    assert!(lines.next().is_some(), "docs/integration.md does not link {file}");
    let mut block = lines.skip_while(|l| !l.starts_with("```")).skip(1).take_while(|l| *l != "```");
    block.by_ref().fold(String::new(), |mut out, l| {
        out.push_str(l);
        out.push('\n');
        out
    })
}

#[test]
fn the_guide_shows_each_example_file_as_it_is() {
    let guide = std::fs::read_to_string(Path::new(ROOT).join("docs/integration.md")).unwrap();
    for file in SHOWN {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
        assert!(shown(&guide, file) == text, "docs/integration.md does not show {file} as it is, after its link");
    }
}

/// A Node.js program of `examples/node`, run from a folder of its own that
/// sees the packages of `interop/`; killed when dropped.
struct Node {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts `examples/node/{script}` with `env` and waits for "listening on".
    fn start(script: &str, env: &[(&str, &str)]) -> Node {
        let modules = Path::new(ROOT).join("interop/node_modules");
        assert!(
            modules.is_dir(),
            "interop/node_modules is missing: run `npm ci --prefix interop` (cargo xtask test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
        std::fs::copy(Path::new(ROOT).join("examples/node").join(script), dir.path().join(script)).unwrap();
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node is not installed (Debian package `nodejs`)");
        let (tx, rx) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => seen.push(line),
                Err(_) => panic!("{script} did not start:\n{}", seen.join("\n")),
            }
        }
        Node { child, _dir: dir }
    }
}

fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test]
async fn the_node_web_app_signs_a_user_in_with_the_code_flow_and_calls_an_api() {
    let dir = tempfile::tempdir().unwrap();
    let (config, issuer) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let port = free_port().to_string();
    let app = format!("http://127.0.0.1:{port}");
    let _app = Node::start(
        "web-app.mjs",
        &[("ISSUER", &issuer), ("PORT", &port), ("CLIENT_ID", "demo-app"), ("CLIENT_SECRET", SECRET)],
    );

    let front = http().get(format!("{app}/")).send().await.unwrap().text().await.unwrap();
    assert!(front.contains("Sign in"), "{front}");
    let login = http().get(format!("{app}/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let login_cookie = set_cookie(&login, "app_login");
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!("{issuer}/authorize?")), "{authorize}");

    let callback = user_approves(&issuer, &authorize).await;
    assert!(callback.starts_with(&format!("{app}/callback?code=")), "{callback}");
    let back = http().get(&callback).header("cookie", &login_cookie).send().await.unwrap();
    assert_eq!(back.status(), 303, "{}", back.text().await.unwrap());
    let session = set_cookie(&back, "app_session");

    let page = http().get(format!("{app}/")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    assert_eq!(page, "signed in as alice (scope read)");
    server.wait_for("client_id=demo-app");
    // A replayed callback does not sign anyone in: the login is spent.
    let again = http().get(&callback).header("cookie", &login_cookie).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(server.stop(), 0);
}

async fn client_credentials(base: &str, scope: &str) -> String {
    let r: serde_json::Value = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_node_resource_server_accepts_our_tokens_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let (config, issuer) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let port = free_port().to_string();
    let _api = Node::start("resource-server.mjs", &[("ISSUER", &issuer), ("PORT", &port)]);
    let records = format!("http://127.0.0.1:{port}/records");
    let call = |token: Option<String>| {
        let records = records.clone();
        async move {
            let mut req = http().get(records);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };

    let ok = call(Some(client_credentials(&issuer, "read").await)).await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!((body["sub"].as_str(), body["client_id"].as_str()), (Some("demo-app"), Some("demo-app")));

    let narrow = call(Some(client_credentials(&issuer, "profile").await)).await;
    assert_eq!(narrow.status(), 403);
    assert!(narrow.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    let forged = call(Some("eyJhbGciOiJub25lIn0.e30.".into())).await;
    assert_eq!(forged.status(), 401);
    assert!(forged.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(call(None).await.status(), 401);
    assert_eq!(server.stop(), 0);
}
