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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
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
        let s = Server { child, log };
        s.wait_for("listening on");
        s
    }

    /// The next log line holding `needle`; the lines before it are dropped.
    pub fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Stops with SIGTERM; the exit code.
    pub fn stop(mut self) -> i32 {
        Command::new("kill").args(["-s", "TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

/// An HTTP client that follows no redirect.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
