//! Project automation: `cargo xtask test` runs every check CI runs;
//! `cargo xtask bench` builds release binaries and runs the HTTP benchmark
//! (the work is in the `oauth-bench` crate).
//!
//! Kept to the standard library and `serde_json` so it builds fast and never
//! needs anything the workspace does not already have.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

mod deps;
mod schemathesis;
// One copy of the throwaway cluster for xtask and the PostgreSQL store's own
// tests; the file uses the standard library only.
#[path = "../../crates/oauth-store-postgres/src/testing/cluster.rs"]
#[allow(dead_code, unreachable_pub, reason = "the store's tests use more of it than xtask")]
mod postgres;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("schemathesis") => fuzz_admin_api(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test | schemathesis | bench [--postgres] [--smoke] [--only SCENARIO,...] \
                 | bench [--postgres] --soak SECS | bench --peer [--smoke]"
            );
            eprintln!("  test   fmt, clippy, the examples, every test (nextest if installed, plus doctests),");
            eprintln!("         schemathesis against the admin API, rustdoc with -D warnings, and the");
            eprintln!("         crate dependency rules");
            eprintln!("  schemathesis  that step of test alone: the admin API fuzzed from its description");
            eprintln!("  bench  release build, then every route against the ceiling and the raw");
            eprintln!("         limits (about 4 minutes; needs wrk); --smoke: a few seconds per");
            eprintln!("         scenario; --only: those scenarios (client_credentials, userinfo,");
            eprintln!("         introspect, refresh_token, password, code_flow); --soak SECS:");
            eprintln!("         mixed load, fails if memory grows;");
            eprintln!("         --postgres: the server on a throwaway PostgreSQL instead of sled;");
            eprintln!("         without it the run ends with the store comparison (sled power against");
            eprintln!("         process, sled against PostgreSQL; --only stores runs it alone);");
            eprintln!("         --peer: client_credentials against panva's oidc-provider (needs node)");
            ExitCode::from(2)
        }
    }
}

/// `cargo xtask schemathesis`: the schemathesis step of `test` alone, for
/// work on the admin API.
fn fuzz_admin_api() -> ExitCode {
    let ok = cargo(&["build", "-p", "oauth-server"], &[]) && target_dir().is_some_and(|t| schemathesis::run(&t));
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// One named step and whether it passed.
struct Outcome {
    name: &'static str,
    ok: bool,
    seconds: f64,
}

fn test() -> ExitCode {
    let mut outcomes = Vec::new();
    let mut step = |name: &'static str, f: &dyn Fn() -> bool| {
        eprintln!("\n==> {name}");
        let start = Instant::now();
        let ok = f();
        outcomes.push(Outcome { name, ok, seconds: start.elapsed().as_secs_f64() });
    };
    step("fmt", &|| cargo(&["fmt", "--all", "--check"], &[]));
    step("clippy", &|| cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[]));
    // The embedding examples are part of the documentation: they must build.
    step("examples", &|| cargo(&["build", "--workspace", "--examples"], &[]));
    step("dependency rules", &deps::check);
    step("npm packages", &npm_packages);
    step("python packages", &python_packages);
    // The Postgres tests need a server: the one named, or a throwaway one. If
    // none can be had, they fail with the reason (OAUTH_TEST_POSTGRES_ERROR).
    let mut cluster = None;
    let mut pg_env: Vec<(&str, String)> = Vec::new();
    match env::var("OAUTH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => pg_env.push(("OAUTH_TEST_POSTGRES_URL", url)),
        _ => {
            eprintln!("\n==> throwaway PostgreSQL");
            match postgres::Throwaway::start() {
                Ok(c) => {
                    eprintln!("  {}", c.url);
                    pg_env.push(("OAUTH_TEST_POSTGRES_URL", c.url.clone()));
                    cluster = Some(c);
                }
                Err(why) => {
                    eprintln!("  cannot start one: {why}");
                    pg_env.push(("OAUTH_TEST_POSTGRES_ERROR", why));
                }
            }
        }
    }
    let envs: Vec<(&str, &str)> = pg_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if nextest_available() {
        step("tests (nextest)", &|| cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &envs));
        step("doctests", &|| cargo(&["test", "--workspace", "--doc"], &envs));
    } else {
        step("tests (cargo test)", &|| cargo(&["test", "--workspace", "--no-fail-fast"], &envs));
    }
    drop(cluster);
    // The admin API, fuzzed from its OpenAPI description by schemathesis; the
    // server binary was built by the tests.
    step("schemathesis", &|| {
        cargo(&["build", "-p", "oauth-server"], &[]) && target_dir().is_some_and(|t| schemathesis::run(&t))
    });
    step("rustdoc", &|| cargo(&["doc", "--workspace", "--no-deps"], &[("RUSTDOCFLAGS", "-D warnings")]));

    eprintln!("\n==> summary");
    for o in &outcomes {
        eprintln!("  {:<20} {:>5}  {:6.1}s", o.name, if o.ok { "ok" } else { "FAIL" }, o.seconds);
    }
    if outcomes.iter().all(|o| o.ok) {
        eprintln!("all checks passed");
        ExitCode::SUCCESS
    } else {
        eprintln!("some checks failed");
        ExitCode::FAILURE
    }
}

/// Builds `oauth-server` and `oauth-bench` in release mode and runs the bench;
/// with `--postgres`, the server's store is a throwaway PostgreSQL cluster.
fn bench(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--peer") {
        return peer(args);
    }
    let postgres = args.iter().any(|a| a == "--postgres");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--postgres").collect();
    if !cargo(&["build", "--release", "--quiet", "-p", "oauth-server", "-p", "oauth-bench"], &[]) {
        return ExitCode::FAILURE;
    }
    let Some(target) = target_dir() else {
        eprintln!("cannot find the target directory (cargo metadata failed)");
        return ExitCode::FAILURE;
    };
    let bench = std::path::Path::new(&target).join("release").join("oauth-bench");
    let mut command = Command::new(&bench);
    command.arg("run").args(&args);
    let cluster = if postgres {
        match postgres::Throwaway::start() {
            Ok(c) => {
                command.env("OAUTH_BENCH_POSTGRES_URL", &c.url);
                Some(c)
            }
            Err(why) => {
                eprintln!("--postgres: {why}");
                return ExitCode::FAILURE;
            }
        }
    } else if args.iter().any(|a| *a == "--soak") {
        None
    } else {
        // The store comparison runs the same routes on PostgreSQL; without a
        // cluster it reports those figures as not measured.
        match postgres::Throwaway::start() {
            Ok(c) => {
                command.env("OAUTH_BENCH_COMPARE_POSTGRES_URL", &c.url);
                Some(c)
            }
            Err(why) => {
                eprintln!("no PostgreSQL for the store comparison: {why}");
                None
            }
        }
    };
    let status = command.status();
    drop(cluster);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("could not run {}: {e}", bench.display());
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask bench --peer`: the release build, the peer's npm packages, then
/// `oauth-bench peer` (crates/oauth-bench/src/peer.rs).
fn peer(args: &[String]) -> ExitCode {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/oauth-bench/peer");
    if !cargo(&["build", "--release", "--quiet", "-p", "oauth-server", "-p", "oauth-bench"], &[])
        || !npm_packages_in(&dir)
    {
        return ExitCode::FAILURE;
    }
    let Some(target) = target_dir() else {
        eprintln!("cannot find the target directory (cargo metadata failed)");
        return ExitCode::FAILURE;
    };
    let bench = std::path::Path::new(&target).join("release").join("oauth-bench");
    let rest = args.iter().filter(|a| *a != "--peer");
    match Command::new(&bench).arg("peer").arg(dir.join("oidc-provider.mjs")).args(rest).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("could not run {}: {e}", bench.display());
            ExitCode::FAILURE
        }
    }
}

/// The workspace's target directory, as cargo resolves it.
fn target_dir() -> Option<String> {
    let out = Command::new(cargo_bin()).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta["target_directory"].as_str().map(str::to_owned)
}

fn nextest_available() -> bool {
    Command::new(cargo_bin()).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Installs the npm packages of `interop/` (the independent client libraries
/// the interop tests drive).
fn npm_packages() -> bool {
    npm_packages_in(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop"))
}

/// Installs the npm packages of `dir` when they are missing or older than its
/// lock file.
fn npm_packages_in(dir: &std::path::Path) -> bool {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    if installed.is_some() && installed >= modified(&dir.join("package-lock.json")) {
        eprintln!("  up to date");
        return true;
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    match npm.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("could not run npm (Debian packages `nodejs` and `npm`): {e}");
            false
        }
    }
}

/// Installs the Python packages of `interop/` (Authlib, the second
/// `private_key_jwt` client) into `interop/.venv` when they are missing or
/// older than `requirements.txt`, which pins every one.
fn python_packages() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let marker = dir.join(".venv/installed");
    let installed = modified(&marker);
    if installed.is_some() && installed >= modified(&dir.join("requirements.txt")) {
        eprintln!("  up to date");
        return true;
    }
    let run = |program: &str, args: &[&str]| match Command::new(program).args(args).current_dir(&dir).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("could not run {program} (Debian packages `python3` and `python3-venv`): {e}");
            false
        }
    };
    run("python3", &["-m", "venv", ".venv"])
        && run(".venv/bin/pip", &["install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"])
        && std::fs::write(&marker, b"").is_ok()
}

/// Runs cargo with `args`; true when it succeeds.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> bool {
    let mut cmd = Command::new(cargo_bin());
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("could not run cargo {}: {e}", args.join(" "));
            false
        }
    }
}

#[cfg(test)]
mod tidy;
