//! Project automation: `cargo xtask test` runs every check CI runs.
//!
//! Kept to the standard library and `serde_json` so it builds fast and never
//! needs anything the workspace does not already have.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

mod deps;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        _ => {
            eprintln!("usage: cargo xtask test");
            eprintln!("  test   fmt, clippy, every test (nextest if installed, plus doctests),");
            eprintln!("         rustdoc with -D warnings, and the crate dependency rules");
            ExitCode::from(2)
        }
    }
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
    step("dependency rules", &deps::check);
    if nextest_available() {
        step("tests (nextest)", &|| cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &[]));
        step("doctests", &|| cargo(&["test", "--workspace", "--doc"], &[]));
    } else {
        step("tests (cargo test)", &|| cargo(&["test", "--workspace", "--no-fail-fast"], &[]));
    }
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

fn nextest_available() -> bool {
    Command::new(cargo_bin()).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
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
