//! The processes under load: `oauth-server` with the bench config, the
//! ceiling, and the peer. Each is a child of this process, ended by its PID on
//! drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{BENCH_PASSWORD, Error};

/// The bench client's secret: machine-generated, so stored as `$sha256$`.
pub(crate) const CLIENT_SECRET: &str = "bench-secret-7f3a9c2e4b1d8f6a0e5c3b9d7a1f4e2c";
pub(crate) const CLIENT_ID: &str = "bench-app";
/// The client that authenticates with `private_key_jwt`
/// ([`crate::client_jwt`]'s key).
pub(crate) const KEYS_CLIENT_ID: &str = "bench-keys";
pub(crate) const USERNAME: &str = "bench";
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// A child process that is killed (by PID) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    child: Child,
    pub(crate) base: String,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built next to this one (`cargo xtask bench` builds them together).
fn sibling(name: &str) -> Result<PathBuf, Error> {
    let path = std::env::current_exe()?.with_file_name(name);
    if path.exists() { Ok(path) } else { Err(Error::Setup(format!("{} is not built", path.display()))) }
}

/// The environment variable naming a PostgreSQL database for the server to
/// use instead of sled (`cargo xtask bench --postgres` sets it to a throwaway
/// cluster).
pub(crate) const POSTGRES_VAR: &str = "OAUTH_BENCH_POSTGRES_URL";

/// The environment variable naming a PostgreSQL database for the store
/// comparison (`cargo xtask bench` sets it to a throwaway cluster).
pub(crate) const COMPARE_POSTGRES_VAR: &str = "OAUTH_BENCH_COMPARE_POSTGRES_URL";

/// The bench config's `[store]` table: sled in `dir`, or the database named
/// by [`POSTGRES_VAR`].
pub(crate) fn store_table() -> String {
    match std::env::var(POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => postgres_table(&url),
        _ => sled_table("power"),
    }
}

/// sled at `durability`. A page cache small enough to fill in the soak's
/// first minute, so that what the soak sees after it is growth, not the cache
/// filling.
pub(crate) fn sled_table(durability: &str) -> String {
    format!("backend = \"sled\"\npath = \"data\"\ncache_capacity = 16777216\ndurability = \"{durability}\"")
}

/// PostgreSQL at `url`, a throwaway cluster on this machine without TLS.
pub(crate) fn postgres_table(url: &str) -> String {
    format!("backend = \"postgres\"\nurl = \"{url}\"\npool_size = 32\ntls = \"disable\"")
}

/// Token lifetimes and the sweep interval of the bench config, in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// `tokens.access_token_ttl`.
    pub(crate) access: u64,
    /// `tokens.refresh_token_ttl`.
    pub(crate) refresh: u64,
    /// `tokens.refresh_token_max_lifetime`: also how long a grant lives.
    pub(crate) family: u64,
    /// `store.sweep_interval`.
    pub(crate) sweep: u64,
}

impl Lifetimes {
    /// The server's defaults.
    pub(crate) const DEFAULT: Lifetimes = Lifetimes { access: 900, refresh: 1_209_600, family: 7_776_000, sweep: 60 };
}

/// Writes the bench config into `dir` and starts `oauth-server` on it, with
/// request logging at INFO into `dir/server.log`, as in production.
pub(crate) fn start_server(dir: &Path, password_hash: &str, lifetimes: Lifetimes) -> Result<Running, Error> {
    start_server_on(dir, password_hash, lifetimes, &store_table())
}

/// [`start_server`] with the `[store]` table `store`.
pub(crate) fn start_server_on(
    dir: &Path,
    password_hash: &str,
    lifetimes: Lifetimes,
    store: &str,
) -> Result<Running, Error> {
    std::fs::create_dir_all(dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let secret_hash =
        oauth_runtime::credentials::hash_sha256(CLIENT_SECRET).map_err(|e| Error::Setup(e.to_string()))?;
    let Lifetimes { access, refresh, family, sweep } = lifetimes;
    let jwks = crate::client_jwt::jwks()?;
    let config = format!(
        r#"# Written by oauth-bench: sled in a temp dir (or PostgreSQL), ES256, two clients, one account.
issuer = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"

# The load generator stands in for many clients from one address: at 256
# connections it would meet the per-address cap (default 256), which would
# close its idle keep-alive connections under it.
[server]
max_connections_per_ip = 1024

[store]
{store}
sweep_interval = {sweep}

[tokens]
signing_alg = "ES256"
access_token_ttl = {access}
refresh_token_ttl = {refresh}
refresh_token_max_lifetime = {family}

[grants]
password = true

[device]
interval = 1

[[clients]]
client_id = "{CLIENT_ID}"
name = "Bench App"
client_secret_hash = "{secret_hash}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:device_code"]
scopes = ["openid", "read", "write"]

[[clients]]
client_id = "{KEYS_CLIENT_ID}"
name = "Bench Keys"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{jwks}'
grant_types = ["client_credentials"]
scopes = ["read", "write"]

[[accounts]]
username = "{USERNAME}"
password_hash = "{password_hash}"
"#
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, config)?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(sibling("oauth-server")?)
        .arg("--config")
        .arg(&path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let running = Running { child, base: format!("http://127.0.0.1:{port}") };
    wait_until_served(&running, port)?;
    Ok(running)
}

/// Polls until the port takes connections, or fails after 30 s.
fn wait_until_served(running: &Running, port: u16) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(Error::Setup(format!("{} did not start listening", running.base)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Starts the ceiling answering every request with `body` (`content_type`).
pub(crate) fn start_ceiling(dir: &Path, body: &[u8], content_type: &str) -> Result<Running, Error> {
    let file = dir.join("ceiling.body");
    std::fs::write(&file, body)?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("ceiling")
        .arg(&file)
        .arg(content_type)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let addr = line.trim().strip_prefix("listening on ").map(str::to_owned);
    let mut running = Running { child, base: String::new() };
    let addr = addr.ok_or_else(|| Error::Setup(format!("the ceiling said {line:?}")))?;
    running.base = format!("http://{addr}");
    Ok(running)
}

/// Starts the peer, panva's oidc-provider ([`crate::peer`]), from its script
/// `script`, for the bench client with its secret, and waits until its workers
/// listen. Its messages go to `dir/peer.log`.
pub(crate) fn start_peer(dir: &Path, script: &Path) -> Result<Running, Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new("node")
        .arg(script)
        .env("PEER_PORT", port.to_string())
        .env("PEER_CLIENT_ID", CLIENT_ID)
        .env("PEER_CLIENT_SECRET", CLIENT_SECRET)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("peer.log"))?)
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot run node ({e}): the peer comparison needs Node.js")))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let running = Running { child, base: format!("http://127.0.0.1:{port}") };
    if line.trim() != format!("listening on 127.0.0.1:{port}") {
        let log = std::fs::read_to_string(dir.join("peer.log")).unwrap_or_default();
        return Err(Error::Setup(format!("the peer said {line:?}; its log: {log}")));
    }
    Ok(running)
}

/// `Authorization: Basic` for the bench client.
pub(crate) fn basic() -> String {
    use base64::Engine;
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// The bench account's password, Argon2id-hashed with the server's parameters.
pub(crate) fn password_hash() -> Result<String, Error> {
    oauth_runtime::credentials::hash_argon2(BENCH_PASSWORD).map_err(|e| Error::Setup(e.to_string()))
}
