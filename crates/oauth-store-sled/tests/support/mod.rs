//! Records for the sled-specific tests: numbered grants with a refresh token.

#![allow(dead_code, unreachable_pub, reason = "each test binary uses part of it, privately")]

use oauth_core::{AccountId, ClientId, Grant, GrantId, RefreshRecord, Scope, TokenHash};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

/// Grant number `n` with its first refresh token (`refresh-{n}`). `scope`
/// lets a test make records bigger.
pub fn grant_with_scope(n: u64, scope: &str) -> (Grant, RefreshRecord) {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let g = Grant {
        id: GrantId::from_random_bytes(id),
        client_id: ClientId::parse("test-client").expect("client id"),
        account: Some(AccountId::from_random_bytes(id)),
        scope: Scope::parse(scope).expect("scope"),
        created_at: T0,
        expires_at: T0 + Duration::days(90),
        revoked: false,
        resource: None,
        dpop_jkt: None,
        authentication: None,
    };
    let r = RefreshRecord {
        hash: TokenHash::of(&format!("refresh-{n}")),
        grant: g.id,
        generation: 0,
        issued_at: T0,
        expires_at: T0 + Duration::days(14),
        rotated: false,
    };
    (g, r)
}

/// Grant number `n` with scope `read`.
pub fn grant(n: u64) -> (Grant, RefreshRecord) {
    grant_with_scope(n, "read")
}

/// Runs `open` until it does not fail on the directory's lock, for up to 10 s.
/// sled writes its log on background threads that hold the directory (and
/// its lock) for a moment after the last handle is dropped; on a loaded
/// machine that is long enough for an immediate reopen to fail with
/// `WouldBlock`. The server never reopens at once (`ReopeningStore` retries
/// once a second); tests that do, wait here.
pub fn when_unlocked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Err(e) if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}
