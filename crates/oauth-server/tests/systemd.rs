//! The hardened systemd unit in `examples/systemd/` stays valid and hardened:
//! `systemd-analyze verify` accepts it with no warning, and its offline
//! `systemd-analyze security` exposure stays at "OK" or better.
//!
//! CI machines have no systemd as PID 1, so the unit is checked, not run. Where
//! `systemd-analyze` is missing the test says so on stderr and checks nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit as shipped.
fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/systemd/oauth-server.service");
    std::fs::read_to_string(path).unwrap()
}

/// The unit with `ExecStart` pointing at the binary this test was built with,
/// since `verify` requires the executable to exist.
fn unit_here(dir: &Path) -> PathBuf {
    let text = unit().replace("/usr/local/bin/oauth-server", env!("CARGO_BIN_EXE_oauth-server"));
    let path = dir.join("oauth-server.service");
    std::fs::write(&path, text).unwrap();
    path
}

fn analyze_available() -> bool {
    let found = Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("systemd-analyze is not installed (Debian package `systemd`): the unit was not checked");
    }
    found
}

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    if !analyze_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(unit_here(dir.path())).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    // verify exits 0 on unknown keys and bad values, and only warns.
    assert!(stderr.trim().is_empty(), "verify warned: {stderr}");
}

#[test]
fn the_systemd_unit_keeps_its_hardening() {
    if !analyze_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_here(dir.path()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{stdout}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"));
    assert!(score <= 2.0, "the unit's exposure rose to {score}: {line}");
    for must in ["NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "StateDirectory=oauth-rs"] {
        assert!(unit().lines().any(|l| l == must), "{must} is missing");
    }
}
