//! Opening the configured store, for serving and for `keys rotate`.

use std::sync::Arc;
use std::time::Duration;

use oauth_core::Store;
use oauth_store_mem::MemStore;
use oauth_store_postgres::{Options as PostgresOptions, PostgresStore};
use oauth_store_sled::{Options, ReopeningStore, SledStore};

use crate::config::{Backend, StoreSection, std_duration};
use crate::error::{Error, Result};

/// The store as opened for serving: the trait object, sled's handle for the
/// final flush, and PostgreSQL's for the startup lock.
pub(crate) struct OpenStore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sled: Option<Arc<ReopeningStore>>,
    pub(crate) postgres: Option<PostgresStore>,
}

/// Opens the store to serve from.
pub(crate) async fn open_for_serving(config: &StoreSection) -> Result<OpenStore> {
    match config.backend {
        Backend::Mem => Ok(OpenStore { store: Arc::new(MemStore::new()), sled: None, postgres: None }),
        Backend::Sled => {
            // Reopening: after an IO error (a full disk) the store recovers
            // once the cause is gone, without a restart.
            let sled = ReopeningStore::open(&config.path, sled_options(config))
                .map_err(|source| Error::OpenSled { path: config.path.clone(), source })?;
            let sled = Arc::new(sled);
            Ok(OpenStore { store: sled.clone(), sled: Some(sled), postgres: None })
        }
        Backend::Postgres => {
            let store = connect_postgres(config).await?;
            Ok(OpenStore { store: Arc::new(store.clone()), sled: None, postgres: Some(store) })
        }
    }
}

/// Opens the store for a command that needs it to itself (`keys rotate`).
/// sled refuses a directory a running server holds, and the error says to
/// stop it first; PostgreSQL is shared with running nodes by design.
pub(crate) async fn open_exclusive(config: &StoreSection) -> Result<Box<dyn Store>> {
    match config.backend {
        Backend::Mem => Err(Error::MemKeepsNoKeys),
        Backend::Postgres => Ok(Box::new(connect_postgres(config).await?)),
        Backend::Sled => match SledStore::open(&config.path, sled_options(config)) {
            Ok(s) => Ok(Box::new(s)),
            Err(source) => Err(Error::SledHeld { path: config.path.clone(), source }),
        },
    }
}

fn sled_options(config: &StoreSection) -> Options {
    Options { cache_capacity: config.cache_capacity, durability: config.durability }
}

/// Connects to the configured PostgreSQL and brings its schema up to date.
/// The error never holds the URL, which may hold a password.
async fn connect_postgres(config: &StoreSection) -> Result<PostgresStore> {
    let connect_timeout: Duration = std_duration(config.connect_timeout);
    let options = PostgresOptions {
        pool_size: config.pool_size,
        connect_timeout,
        statement_timeout: config.statement_timeout,
        tls: config.tls.clone(),
    };
    PostgresStore::connect(&config.url, options).await.map_err(Error::OpenPostgres)
}
