//! A full disk: writes fail with a store error (never a panic, never an
//! acknowledgement), and the store works again once space returns.
//!
//! Runs on a small tmpfs, which really fills up (as root, `chmod` cannot make a
//! directory unwritable). Needs root to mount; CI runs as root.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::process::Command;

use oauth_core::{Store, StoreError};
use oauth_store_sled::{Options, ReopeningStore};
use support::{T0, grant, grant_with_scope};

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs needs root");
        Tmpfs(dir)
    }

    fn resize(&self, size: &str) {
        let ok =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.0.path()).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_the_store_recovers_when_space_returns() {
    let fs = Tmpfs::mount("8m");
    let store = ReopeningStore::open(fs.0.path().join("db"), Options { cache_capacity: 1 << 20, ..Options::default() })
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for n in 0..200_000u64 {
        let (g, r) = grant_with_scope(n, &format!("read padding-{}", "x".repeat(200)));
        match store.insert_grant(&g, Some(&r)).await {
            Ok(()) => acknowledged.push(n),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("an 8 MiB disk fills up");
    assert!(matches!(failure, StoreError::Unavailable(_)), "{failure}");
    assert!(!acknowledged.is_empty());

    fs.resize("64m");
    let (g, r) = grant(1_000_000);
    let mut recovered = false;
    for _ in 0..50 {
        if store.insert_grant(&g, Some(&r)).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "writes work again once space returns");
    for n in acknowledged.iter().rev().take(100) {
        let (_, r) = grant(*n);
        assert!(store.refresh_token(&r.hash, T0).await.unwrap().is_some(), "acknowledged write {n} is readable");
    }
}
