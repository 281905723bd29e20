//! The failures that stop the server from starting or from stopping cleanly,
//! and `keys rotate` from opening its store.
//!
//! Each variant says what failed and keeps its cause, whose text ends the
//! message an operator reads in the log. Configuration errors are not here:
//! `config` reports them itself, with the key of each, and exits 2; every
//! error here exits 1 (docs/operations.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use oauth_core::StoreError;

/// Why serving (or opening the store for a command) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// sled could not open its directory (held by another process, a store of
    /// another format version, an IO error).
    #[error("cannot open the store at {}: {source}", path.display())]
    OpenSled {
        /// `store.path`.
        path: PathBuf,
        /// Why sled refused.
        source: oauth_store_sled::Error,
    },
    /// `keys rotate` could not open the sled store, most likely because a
    /// running server holds it.
    #[error(
        "cannot open the store at {}: {source}\n`keys rotate` needs the store to itself: stop the server first",
        path.display()
    )]
    SledHeld {
        /// `store.path`.
        path: PathBuf,
        /// Why sled refused.
        source: oauth_store_sled::Error,
    },
    /// `keys rotate` on `store.backend = "mem"`, which has no keys to rotate.
    #[error("store.backend is \"mem\", which keeps no keys between runs")]
    MemKeepsNoKeys,
    /// PostgreSQL could not be reached, or its schema not brought up to date.
    #[error("cannot open the PostgreSQL store: {0}")]
    OpenPostgres(#[source] oauth_store_postgres::Error),
    /// The database-wide lock of a starting node could not be taken or
    /// released.
    #[error("startup lock: {0}")]
    StartupLock(#[source] StoreError),
    /// The `[[accounts]]` of the configuration could not be written.
    #[error("cannot seed accounts: {0}")]
    SeedAccounts(#[source] StoreError),
    /// The signing keys could not be loaded, generated or stored.
    #[error("signing keys: {0}")]
    SigningKeys(#[source] oauth_jwt::Error),
    /// The OAuth Client List of `[medmij]` was refused.
    #[error("medmij.ocl: {0}")]
    MedmijOcl(#[source] oauth_medmij::Error),
    /// The password verifier's pool could not be built.
    #[error("password verifier: {0}")]
    PasswordVerifier(#[source] oauth_runtime::credentials::HashError),
    /// The HTTP front end refused its settings.
    #[error("cannot set up the HTTP front end: {0}")]
    Frontend(#[source] oauth_http::Error),
    /// A signal handler (SIGTERM, SIGINT, SIGHUP) could not be installed.
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A listener could not bind its address; `what` names the setting.
    #[error("cannot listen on {addr}{what}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// `""` for `listen`, `" (admin.listen)"` for the admin listener.
        what: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The public listener stopped with an error.
    #[error("the listener on {addr} failed: {source}")]
    Serve {
        /// The address it was bound to.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The sled store's flush at shutdown failed: writes acknowledged since
    /// the last group commit may be lost.
    #[error("final flush failed: {0}")]
    FinalFlush(#[source] StoreError),
}

/// What this crate's fallible steps return.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
