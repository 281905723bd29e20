//! The boundary of the binary, for the test files that share it: run a
//! command, start a server on a free port with a configuration of its own, read
//! its log, and talk to it over HTTP.

#![allow(dead_code, unreachable_pub, reason = "each test binary uses part of the harness, which is private to it")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The secret of `demo-app` in `examples/quickstart.toml`.
pub const SECRET: &str = "demo-secret-0123456789-abcdefghijklmnop";

/// Runs the binary with `args`, `stdin` and extra environment variables; its
/// exit code, stdout and stderr.
pub fn run_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`run_env`] without extra variables.
pub fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    run_env(args, stdin, &[])
}

/// A port that is free now, for a server started next. It is chosen below
/// Linux's ephemeral range (32768 and up), where the kernel also picks the
/// local ports of outgoing connections and of `bind(0)`: a port from there can
/// be taken by another test's client between this check and the server's own
/// bind, and that server then fails to start.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..1000 {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + (random % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port from 20000 to 32000")
}

/// The quick-start example moved to a free port (issuer and listen together),
/// plus `extra` TOML, written to `dir/server.toml`; the path and the base URL.
pub fn quickstart(dir: &Path, extra: &str) -> (PathBuf, String) {
    let port = free_port();
    let text = std::fs::read_to_string(Path::new(ROOT).join("examples/quickstart.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let path = dir.join("server.toml");
    std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    (path, format!("http://127.0.0.1:{port}"))
}

/// A running server; killed when dropped, so a failing test leaves none.
pub struct Server {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the binary on `config` in `cwd` and waits until it listens.
    pub fn start(config: &Path, cwd: &Path) -> Server {
        Self::start_env(config, cwd, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_env(config: &Path, cwd: &Path, env: &[(&str, &str)]) -> Server {
        let s = Self::spawn_env(&["--config", config.to_str().unwrap()], cwd, env);
        s.wait_for("listening on");
        s
    }

    /// Starts the binary with `args` in `cwd` and waits until it listens.
    pub fn start_args(args: &[&str], cwd: &Path) -> Server {
        let s = Self::spawn(args, cwd);
        s.wait_for("listening on");
        s
    }

    /// Starts the binary with `args` without waiting for it to listen.
    pub fn spawn(args: &[&str], cwd: &Path) -> Server {
        Self::spawn_env(args, cwd, &[])
    }

    fn spawn_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Server { child, log }
    }

    /// The next log line holding `needle`; the lines before it are dropped.
    /// When none comes (the server exited, or 20 s passed), the panic shows
    /// the lines that did, so that a failure says why.
    pub fn wait_for(&self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let Ok(line) = self.log.recv_timeout(Duration::from_secs(20)) else {
                panic!("no log line with {needle:?}; the log had:\n{}", seen.join("\n"))
            };
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }

    /// The next log line, or `None` when none comes within `within`.
    pub fn next_line(&self, within: Duration) -> Option<String> {
        self.log.recv_timeout(within).ok()
    }

    /// The process id, to read the process's memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `sig` (a name such as `HUP`).
    pub fn signal(&self, sig: &str) {
        Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap();
    }

    /// Stops with SIGTERM; the exit code.
    pub fn stop(mut self) -> i32 {
        self.signal("TERM");
        self.child.wait().unwrap().code().unwrap_or(-1)
    }

    /// Ends the process with SIGKILL, as a crash would (dropping does it).
    pub fn kill9(self) {}

    /// The log lines written so far and not yet read, after a short wait.
    pub fn rest_of_log(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }
}

/// `s` percent-encoded as a form value (RFC 6749 appendix B).
pub fn form_urlencoded(s: &str) -> String {
    ::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An HTTP client that follows no redirect.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let m = format!("name=\"{name}\" value=\"");
    let i = html.find(&m).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + m.len();
    html[i..].split('"').next().unwrap().to_owned()
}

/// The value of query parameter `name` in `url`.
pub fn query(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).map(str::to_owned)
}

/// RFC 7636 appendix B's verifier and challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The quick start's redirect URI.
pub const REDIRECT: &str = "http://127.0.0.1:9000/callback";

/// The user's part of a code flow on the quick start: open the authorization
/// URL `url`, log in as alice, approve. Where the server sends the browser.
pub async fn user_approves(base: &str, url: &str) -> String {
    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let login = http()
        .post(format!("{base}/authorize/login"))
        .header("cookie", &cookie)
        .form(&[
            ("session", hidden(&html, "session").as_str()),
            ("csrf", &hidden(&html, "csrf")),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let consent = login.headers()["location"].to_str().unwrap().to_owned();
    let consent = if consent.starts_with("http") { consent } else { format!("{base}{consent}") };
    let page = http().get(consent).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let decided = http()
        .post(format!("{base}/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("session", hidden(&page, "session").as_str()),
            ("csrf", &hidden(&page, "csrf")),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 303);
    decided.headers()["location"].to_str().unwrap().to_owned()
}

/// A code flow for `demo-app` on the quick start, with the user's approval.
/// The code.
pub async fn code_flow(base: &str) -> String {
    let url = format!(
        "{base}/authorize?response_type=code&client_id=demo-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
         &scope=read&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let location = user_approves(base, &url).await;
    query(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

/// Redeems `code` for `demo-app`: the status and the body.
pub async fn redeem(base: &str, code: &str) -> (u16, serde_json::Value) {
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The text of `/metrics`.
pub async fn metrics(base: &str) -> String {
    http().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}
