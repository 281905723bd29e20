//! The schemathesis run of `cargo xtask test`: starts `oauth-server` with its
//! admin API on 127.0.0.1 and lets schemathesis (PyPI) fuzz that API from its
//! own OpenAPI description, with a fixed seed and a time bound. It fails on
//! any 5xx and on any answer that its schema does not describe (status, content
//! type, body, headers).
//!
//! Before the fuzzing, a fixture (`schemathesis_seed.py`, run with the
//! virtual environment's Python) makes real accounts, clients and grants
//! through the server's own APIs, and the run's `schemathesis.toml` hands
//! their ids to the operations that take an id, most of the time (the rest
//! are generated, so unknown ids are still tried). Beside that, the
//! description's OpenAPI links let the stateful phase change and delete what
//! its own create operations made.
//!
//! schemathesis lives in a virtual environment in the target directory, made
//! on first use with the machine's `python3` and pinned to one version; the
//! repository holds none of it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The schemathesis release the run is pinned to.
const VERSION: &str = "4.32.5";
/// The fixed seed: a failure reproduces.
const SEED: &str = "20261129";
/// Examples per operation.
const MAX_EXAMPLES: &str = "40";
/// The whole run's bound.
const TIME_BOUND: Duration = Duration::from_secs(600);
/// How many of each seeded thing the fixture makes.
const SEEDED: &str = "10";
/// How often an operation that takes an id gets a seeded one rather than a
/// generated one.
const SEEDED_SHARE: f64 = 0.75;
/// The fixture.
const SEED_SCRIPT: &str = include_str!("schemathesis_seed.py");
/// Which seeded pool each operation that takes an id draws from; each pool
/// serves one kind of change, so deletions do not empty the pool that
/// changes use.
const POOLS: &[(&str, &str)] = &[
    ("getAccount", "patch_accounts"),
    ("updateAccount", "patch_accounts"),
    ("forgetConsents", "patch_accounts"),
    ("endSessions", "patch_accounts"),
    ("deleteAccount", "delete_accounts"),
    ("listGrants", "grant_accounts"),
    ("revokeGrant", "grants"),
    ("getClient", "clients"),
    ("replaceClient", "clients"),
    ("deleteClient", "delete_clients"),
];

/// Runs the fuzzing; true when it passes.
pub(crate) fn run(target: &str) -> bool {
    match try_run(Path::new(target)) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("  schemathesis: {e}");
            false
        }
    }
}

fn try_run(target: &Path) -> Result<bool, String> {
    let st = install(target)?;
    let server = target.join("debug").join("oauth-server");
    if !server.exists() {
        return Err(format!("{} is not built", server.display()));
    }
    let dir = target.join("schemathesis-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = Command::new(&server).arg("gen-secret").output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let (token, hash) = match (lines.next(), lines.next()) {
        (Some(t), Some(h)) => (t.to_owned(), h.to_owned()),
        _ => return Err("gen-secret printed no secret".into()),
    };
    let (port, admin_port) = (free_port()?, free_port()?);
    let config = dir.join("server.toml");
    // sled, the default store, so that `POST /admin/backup` writes real
    // copies; `process` durability, since nothing here survives the run.
    let (store, backups) = (dir.join("store"), dir.join("backups"));
    let (store, backups) = (store.display(), backups.display());
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [store]\nbackend = \"sled\"\npath = \"{store}\"\ndurability = \"process\"\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{hash}\"\nbackup_dir = \"{backups}\"\n\
             [[clients]]\nclient_id = \"configured\"\ngrant_types = [\"client_credentials\"]\n\
             client_secret_hash = \"{hash}\"\nscopes = [\"read\"]\n\
             [[clients]]\nclient_id = \"seeder\"\ngrant_types = [\"password\", \"refresh_token\"]\n\
             client_secret_hash = \"{hash}\"\nscopes = [\"read\"]\n\
             [grants]\npassword = true\n\
             [[accounts]]\nusername = \"configured-user\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = Command::new(&server)
        .arg("--config")
        .arg(&config)
        .current_dir(&dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (tx, log) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let ready = loop {
        match log.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("listening on") && !line.contains("admin") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    let seeded = if ready { seed(&st, &dir, admin_port, port, &token) } else { Err("the server did not start".into()) };
    let result = seeded.and_then(|settings| {
        let schema = format!("http://127.0.0.1:{admin_port}/admin/openapi.json");
        let mut fuzz = Command::new(&st);
        fuzz.arg("--config-file")
            .arg(&settings)
            .args(["run", &schema, "--header", &format!("Authorization: Bearer {token}")])
            .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,response_headers_conformance",
            ])
            .args(["--request-timeout", "10"])
            // Every request and answer, for reading a failure afterwards.
            .args(["--report", "har", "--report-dir"])
            .arg(dir.join("report"))
            .current_dir(&dir);
        bounded(fuzz)
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Runs the fixture against the started server and writes the
/// `schemathesis.toml` that hands its ids to the operations; answers the
/// file's path.
fn seed(st: &Path, dir: &Path, admin_port: u16, port: u16, token: &str) -> Result<PathBuf, String> {
    let script = dir.join("schemathesis_seed.py");
    std::fs::write(&script, SEED_SCRIPT).map_err(|e| e.to_string())?;
    // The venv's interpreter sits beside its `st`.
    let python = st.with_file_name("python3");
    let out = Command::new(&python)
        .arg(&script)
        .args([&format!("http://127.0.0.1:{admin_port}"), &format!("http://127.0.0.1:{port}"), token, token, SEEDED])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err("the fixture could not seed the server".into());
    }
    let pools: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("the fixture said: {e}"))?;
    let mut toml = String::from("# Written by `cargo xtask test` for one run: the seeded ids.\n");
    for (name, ids) in pools.as_object().into_iter().flatten() {
        if ids.as_array().is_none_or(Vec::is_empty) {
            return Err(format!("the fixture seeded no {name}"));
        }
        // JSON strings of these ids (UUIDs and client ids the fixture
        // chose) are TOML basic strings as they stand.
        toml.push_str(&format!("\n[dictionaries.{name}]\nvalues = {ids}\n"));
    }
    for (operation, pool) in POOLS {
        if pools.get(pool).is_none() {
            return Err(format!("the fixture made no pool {pool}"));
        }
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-operation-id = \"{operation}\"\n\
             parameters = {{ \"path.id\" = {{ dictionary = \"{pool}\", probability = {SEEDED_SHARE} }} }}\n"
        ));
    }
    let path = dir.join("schemathesis.toml");
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Runs `command`, killing it past [`TIME_BOUND`]; whether it succeeded.
fn bounded(mut command: Command) -> Result<bool, String> {
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => return Ok(status.success()),
            None if started.elapsed() > TIME_BOUND => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no result within {} s", TIME_BOUND.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The `st` of the pinned schemathesis, installing it on first use.
fn install(target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    let marker = venv.join(format!("installed-{VERSION}"));
    if st.exists() && marker.exists() {
        return Ok(st);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("cannot run python3 -m venv (Debian packages python3 and python3-venv): {e}"))?;
    if !made.success() {
        return Err("python3 -m venv failed (Debian package python3-venv)".into());
    }
    let pip = venv.join("bin").join("pip");
    let installed = Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check", &format!("schemathesis=={VERSION}")])
        .status()
        .map_err(|e| e.to_string())?;
    if !installed.success() {
        return Err(format!("pip could not install schemathesis {VERSION}"));
    }
    std::fs::write(&marker, VERSION).map_err(|e| e.to_string())?;
    Ok(st)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}
