//! The PostgreSQL [`Store`] for oauth-rs: several server nodes sharing one
//! database.
//!
//! sled is embedded and single-process; when one machine is not enough,
//! operators run several `oauth-server` nodes behind a load balancer and keep
//! the shared state here. Every node sees every code, refresh token,
//! revocation, signing key and throttle counter at once.
//!
//! - **Atomicity across nodes.** Each compare-and-swap of the store contract is
//!   one conditional `UPDATE ... WHERE` that PostgreSQL re-checks on the row it
//!   locks, so of N racing callers on any number of connections exactly one
//!   succeeds: code redemption swaps the session only if it is still the one
//!   read, refresh rotation flips `rotated` only if it is still false.
//! - **Durability.** Each write is a committed statement or transaction; with
//!   PostgreSQL's default `synchronous_commit = on` a commit is on disk when
//!   acknowledged. Do not turn that off for this database.
//! - **Schema.** Numbered migrations embedded in this crate, applied at
//!   [`PostgresStore::connect`] under an advisory lock (`schema.rs`); a
//!   database with a newer schema is refused.
//! - **Outages.** A lost database makes operations fail with
//!   [`StoreError::Unavailable`] (the server answers 503); the pool replaces
//!   broken connections, so service resumes when the database returns.
//! - **Sweeping** deletes expired records in batches of [`SWEEP_BATCH`], so a
//!   large backlog never holds long locks.
//!
//! - **TLS** with rustls, the certificate checked by default ([`TlsMode`],
//!   `tls.rs`).
//! - **A bounded statement time.** Every connection runs with PostgreSQL's
//!   `statement_timeout` ([`Options::statement_timeout`]). A statement that
//!   exceeds it (a lock held elsewhere, a stalled disk) is cancelled by the
//!   server and its transaction rolled back, so the error the caller gets (a
//!   503) is never a committed write. The client sets no timer of its own on a
//!   statement it has sent: it waits for the server's verdict, so a committed
//!   write is never reported as failed because an answer was slow. Only the
//!   wait for a connection is bounded on this side, before anything is sent.
//! - **First start** of several nodes on an empty database: [`PostgresStore::startup_lock`]
//!   lets one node at a time create what must exist once (signing keys,
//!   seeded accounts).
//!
//! # Examples
//!
//! Two runnable programs show how the crates fit together when embedded
//! (`cargo xtask test` builds both):
//! - [`oauth-core/examples/medmij_steps.rs`](https://example.invalid/oauth-rs/crates/oauth-core/examples/medmij_steps.rs)
//!   (`cargo run -p oauth-core --example medmij_steps`): only the core, over a
//!   store of its own, driving the MedMij steps (create session, check
//!   resource, decide, exchange);
//! - [`oauth-http/examples/embed_http.rs`](https://example.invalid/oauth-rs/crates/oauth-http/examples/embed_http.rs)
//!   (`cargo run -p oauth-http --example embed_http`): every endpoint served
//!   by `oauth-http` on the memory store, with a resource check of its own.
//!
//! # Feature flags
//!
//! - `testing`: the `testing` module, a fresh database per test on the server that
//!   `OAUTH_TEST_POSTGRES_URL` names.

#![forbid(unsafe_code)]

mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SessionState, SigningKeyRecord, Store,
    StoreError, Swept, ThrottleKey, TokenHash,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};

pub use schema::SCHEMA_VERSION;
pub use tls::{Tls, TlsMode};

/// Rows deleted per statement when sweeping.
pub const SWEEP_BATCH: i64 = 1000;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL does not parse.
    #[error("bad PostgreSQL URL: {0}")]
    Url(String),
    /// No connection could be made within the timeout.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The TLS settings cannot be used (an unreadable CA file, no roots).
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    /// A statement failed while the schema was brought up to date.
    #[error("PostgreSQL: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer build.
    #[error("the database has schema version {found}; this build knows versions up to {SCHEMA_VERSION}")]
    NewerSchema {
        /// The version found.
        found: i32,
    },
}

/// Options for [`PostgresStore::connect`] (`[store] pool_size`,
/// `connect_timeout`, `statement_timeout`, `tls`, `tls_ca_file`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Most connections this node holds.
    pub pool_size: usize,
    /// Longest wait to open a connection, or for a free one from the pool.
    pub connect_timeout: Duration,
    /// Longest a statement may run on the server before the server cancels
    /// it (PostgreSQL's `statement_timeout`, whole milliseconds).
    pub statement_timeout: Duration,
    /// TLS to the database.
    pub tls: Tls,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            tls: Tls::default(),
        }
    }
}

/// Any 64-bit number, the same in every build, other than the migrations'
/// lock: the advisory lock of [`PostgresStore::startup_lock`].
const STARTUP_LOCK: i64 = 0x6f61_7574_6873_7374;

/// How long [`PostgresStore::startup_lock`] waits for another starting node.
pub const STARTUP_LOCK_WAIT: Duration = Duration::from_secs(60);

/// The lock of [`PostgresStore::startup_lock`], held until released or dropped.
pub struct StartupLock {
    client: ClientWrapper,
}

impl std::fmt::Debug for StartupLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupLock").finish_non_exhaustive()
    }
}

impl StartupLock {
    /// Releases the lock and closes its connection. Dropping the lock closes
    /// the connection too, which also releases it, a moment later.
    pub async fn release(self) -> Result<(), StoreError> {
        self.client.execute("SELECT pg_advisory_unlock($1)", &[&STARTUP_LOCK]).await.map_err(db)?;
        Ok(())
    }
}

/// The PostgreSQL store: a connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore").field("size", &status.size).field("max_size", &status.max_size).finish()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, or a
    /// key=value string; `host=/run/postgresql` for a Unix socket) and brings
    /// the schema up to date.
    pub async fn connect(url: &str, options: Options) -> Result<Self, Error> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| Error::Url(e.to_string()))?;
        config.connect_timeout(options.connect_timeout);
        // `[store] tls` decides; an `sslmode` in the URL that says otherwise is
        // refused rather than silently overridden.
        let wants_tls = options.tls.mode != TlsMode::Disable;
        match config.get_ssl_mode() {
            SslMode::Disable if wants_tls => {
                return Err(Error::Url("sslmode=disable in the URL conflicts with store.tls".into()));
            }
            SslMode::Require if !wants_tls => {
                return Err(Error::Url("sslmode=require in the URL conflicts with store.tls = \"disable\"".into()));
            }
            _ => {}
        }
        let sockets_only = config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
        config.ssl_mode(if wants_tls && !sockets_only { SslMode::Require } else { SslMode::Disable });
        let timeout_ms = options.statement_timeout.as_millis().max(1);
        let startup = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c statement_timeout={timeout_ms}"),
            _ => format!("-c statement_timeout={timeout_ms}"),
        };
        config.options(&startup);
        let connector = tls::connector(&options.tls)?;
        let manager =
            Manager::from_config(config, connector, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let timeout = Some(options.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| Error::Connect(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| Error::Connect(e.to_string()))?;
        schema::migrate(&mut client).await?;
        Ok(PostgresStore { pool })
    }

    /// Takes the database-wide lock under which a starting node creates what
    /// must exist once: the signing key of an empty database, the accounts
    /// seeded from the configuration. A second node starting at the same time
    /// waits here (up to [`STARTUP_LOCK_WAIT`]) and then finds what the first
    /// created. The lock lives on a connection of its own, outside the pool,
    /// so the holder's store operations never wait for it; it is released by
    /// [`StartupLock::release`], or when that connection closes.
    pub async fn startup_lock(&self) -> Result<StartupLock, StoreError> {
        let client = Object::take(self.client().await?);
        let wait = STARTUP_LOCK_WAIT.as_millis();
        client.batch_execute(&format!("SET statement_timeout = {wait}")).await.map_err(db)?;
        client.execute("SELECT pg_advisory_lock($1)", &[&STARTUP_LOCK]).await.map_err(db)?;
        Ok(StartupLock { client })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&statement, params).await.map_err(db)
    }

    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query_opt(&statement, params).await.map_err(db)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.execute(&statement, params).await.map_err(db)
    }

    /// Runs `sql` (a `DELETE` of at most [`SWEEP_BATCH`] rows, `$1` the
    /// cut-off, `$2` the batch size) until a batch comes back short.
    async fn sweep_batches(&self, sql: &str, cutoff: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.execute(sql, &[&cutoff, &SWEEP_BATCH]).await?;
            total += n;
            if n < SWEEP_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

/// A time as the schema keeps it: nanoseconds since the Unix epoch.
fn nanos(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| StoreError::Corrupt(format!("{t} is outside 1677-2262")))
}

fn time_of(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).map_err(|_| StoreError::Corrupt("a stored time".into()))
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn from_json<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Reads column `i` of `row`, a type mismatch being a corrupt record.
fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// The code hash a session carries once a code was issued, which `take_code`
/// finds it by.
fn code_of(session: &AuthorizationSession) -> Option<Vec<u8>> {
    match session.state() {
        SessionState::CodeIssued { code, .. } | SessionState::Exchanged { code, .. } => Some(code.as_bytes().to_vec()),
        _ => None,
    }
}

/// A `DELETE` of at most `$2` rows of `table`, chosen by `key` among the rows
/// of `from` where `condition` holds (`$1` the cut-off), for
/// [`PostgresStore::sweep_batches`].
fn sweep_sql(table: &str, key: &str, from: &str, condition: &str) -> String {
    format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {from} WHERE {condition} LIMIT $2)")
}

/// A record from the `owner, value, expires_at` columns of `row`.
fn record_of(kind: RecordKind, key: &TokenHash, row: &Row) -> Result<Record, StoreError> {
    let owner: Option<uuid::Uuid> = column(row, 0)?;
    Ok(Record {
        kind,
        key: *key,
        owner: owner.map(|o| AccountId::from_bytes(o.into_bytes())),
        value: column(row, 1)?,
        expires_at: time_of(column(row, 2)?)?,
    })
}

/// Decodes the `jsonb` column `i` of `row` straight into a `T`, without the
/// `serde_json::Value` in between that [`from_json`] takes: the refresh
/// path's lookup decodes three bodies per request. `None` for SQL `NULL`.
fn json_column<T: DeserializeOwned>(what: &str, row: &Row, i: usize) -> Result<Option<T>, StoreError> {
    let body: Option<Json<T>> = row.try_get(i).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    Ok(body.map(|Json(t)| t))
}

/// Like [`json_column`], for a column that is never `NULL`.
fn json_body<T: DeserializeOwned>(what: &str, row: &Row, i: usize) -> Result<T, StoreError> {
    json_column(what, row, i)?.ok_or_else(|| StoreError::Corrupt(format!("{what}: no body")))
}

/// A grant from its body and its authoritative `revoked` column (the
/// refresh token's `rotated` is authoritative in the same way).
fn grant_of(body: Value, revoked: bool) -> Result<Grant, StoreError> {
    Ok(Grant { revoked, ..from_json("grant", body)? })
}

const UPSERT_GRANT: &str = "INSERT INTO oauth_grants (id, expires_at, revoked, body, account)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, revoked = EXCLUDED.revoked, body = EXCLUDED.body,
        account = EXCLUDED.account";
const UPSERT_REFRESH: &str = "INSERT INTO oauth_refresh_tokens (hash, grant_id, expires_at, rotated, body)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (hash) DO UPDATE SET grant_id = EXCLUDED.grant_id, expires_at = EXCLUDED.expires_at,
        rotated = EXCLUDED.rotated, body = EXCLUDED.body";

const REVOKE_GRANT: &str = "UPDATE oauth_grants SET revoked = true WHERE id = $1";

#[async_trait]
impl Store for PostgresStore {
    async fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO oauth_sessions (id, expires_at, code, body) VALUES ($1, $2, $3, $4)",
            &[session.id().as_uuid(), &nanos(session.expires_at())?, &code_of(session), &to_json(session)?],
        )
        .await?;
        Ok(())
    }

    async fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError> {
        let row = self
            .query_opt(
                "SELECT body FROM oauth_sessions WHERE id = $1 AND expires_at > $2",
                &[id.as_uuid(), &nanos(now)?],
            )
            .await?;
        row.map(|r| from_json("session", column(&r, 0)?)).transpose()
    }

    async fn replace_session(
        &self,
        old: &AuthorizationSession,
        new: &AuthorizationSession,
    ) -> Result<bool, StoreError> {
        if old.id() != new.id() {
            return Ok(false);
        }
        // jsonb equality is semantic, so the stored body equals the old
        // session's encoding exactly when nobody has replaced it since.
        let n = self
            .execute(
                "UPDATE oauth_sessions SET body = $3, expires_at = $4, code = $5 WHERE id = $1 AND body = $2",
                &[old.id().as_uuid(), &to_json(old)?, &to_json(new)?, &nanos(new.expires_at())?, &code_of(new)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let code_bytes = code.as_bytes().as_slice();
        loop {
            let Some(row) =
                self.query_opt("SELECT id, body FROM oauth_sessions WHERE code = $1", &[&code_bytes]).await?
            else {
                return Ok(CodeRedemption::NotFound);
            };
            let (id, body): (uuid::Uuid, Value) = (column(&row, 0)?, column(&row, 1)?);
            let s: AuthorizationSession = from_json("session", body.clone())?;
            let (next, outcome) = s.redeem(code, grant, retain_until, now);
            let Some(next) = next else {
                return Ok(outcome);
            };
            // The one statement that decides a race: it swaps the session only
            // if it is still the body read above.
            let swapped = self
                .execute(
                    "UPDATE oauth_sessions SET body = $3, expires_at = $4 WHERE id = $1 AND body = $2",
                    &[&id, &body, &to_json(&next)?, &nanos(next.expires_at())?],
                )
                .await?;
            if swapped == 1 {
                return Ok(outcome);
            }
        }
    }

    async fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let upsert = tx.prepare_cached(UPSERT_GRANT).await.map_err(db)?;
        let account = grant.account.map(|a| *a.as_uuid());
        tx.execute(
            &upsert,
            &[grant.id.as_uuid(), &nanos(grant.expires_at)?, &grant.revoked, &to_json(grant)?, &account],
        )
        .await
        .map_err(db)?;
        if let Some(r) = refresh {
            let upsert = tx.prepare_cached(UPSERT_REFRESH).await.map_err(db)?;
            let hash = r.hash.as_bytes().as_slice();
            tx.execute(&upsert, &[&hash, r.grant.as_uuid(), &nanos(r.expires_at)?, &r.rotated, &to_json(r)?])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError> {
        let row = self
            .query_opt(
                "SELECT body, revoked FROM oauth_grants WHERE id = $1 AND expires_at > $2",
                &[id.as_uuid(), &nanos(now)?],
            )
            .await?;
        row.map(|r| grant_of(column(&r, 0)?, column(&r, 1)?)).transpose()
    }

    async fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError> {
        let row = self
            .query_opt(
                // The account in the same statement: a refresh checks that
                // it is still enabled, and this saves that read its own
                // round trip.
                "SELECT r.body, r.rotated, g.body, g.revoked, a.body FROM oauth_refresh_tokens r
                 JOIN oauth_grants g ON g.id = r.grant_id
                 LEFT JOIN oauth_accounts a ON a.id = g.account
                 WHERE r.hash = $1 AND r.expires_at > $2 AND g.expires_at > $2",
                &[&hash.as_bytes().as_slice(), &nanos(now)?],
            )
            .await?;
        row.map(|r| {
            Ok(RefreshLookup {
                record: RefreshRecord { rotated: column(&r, 1)?, ..json_body("refresh token", &r, 0)? },
                grant: Grant { revoked: column(&r, 3)?, ..json_body("grant", &r, 2)? },
                account: json_column("account", &r, 4)?,
            })
        })
        .transpose()
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        // One function call, one round trip, one implicit transaction
        // (`oauth_rotate_refresh`, migration 4, where the race is explained),
        // so not the read of `oauth_core::rotation_family` first: its rule
        // (`Grant::takes_rotation_to`: a family that is not revoked, and
        // `new` belongs to it) is in the function's conditions.
        let row = self
            .query_opt(
                "SELECT oauth_rotate_refresh($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &old.as_bytes().as_slice(),
                    &nanos(now)?,
                    &new.hash.as_bytes().as_slice(),
                    new.grant.as_uuid(),
                    &nanos(new.expires_at)?,
                    &new.rotated,
                    &Json(new),
                ],
            )
            .await?;
        let outcome: Option<String> = row.map_or(Ok(None), |r| column(&r, 0))?;
        match outcome.as_deref() {
            Some("rotated") => Ok(Rotation::Rotated),
            Some("reused") => Ok(Rotation::Reused(new.grant)),
            Some("not_found") => Ok(Rotation::NotFound),
            other => Err(StoreError::Corrupt(format!("refresh rotation answered {other:?}"))),
        }
    }

    async fn add_refresh_token(&self, record: &RefreshRecord, now: OffsetDateTime) -> Result<bool, StoreError> {
        // One statement: the insert happens only while the family is live and
        // not revoked. A revocation that commits after it is harmless, since
        // every use of a refresh token reads its family's `revoked`.
        let inserted = self
            .execute(
                "INSERT INTO oauth_refresh_tokens (hash, grant_id, expires_at, rotated, body)
                 SELECT $1, g.id, $3, $4, $5 FROM oauth_grants g
                 WHERE g.id = $2 AND g.expires_at > $6 AND NOT g.revoked
                 ON CONFLICT (hash) DO NOTHING",
                &[
                    &record.hash.as_bytes().as_slice(),
                    record.grant.as_uuid(),
                    &nanos(record.expires_at)?,
                    &record.rotated,
                    &to_json(record)?,
                    &nanos(now)?,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError> {
        self.execute(REVOKE_GRANT, &[id.as_uuid()]).await?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO oauth_revoked_access_tokens (jti, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti) DO UPDATE
             SET expires_at = GREATEST(oauth_revoked_access_tokens.expires_at, EXCLUDED.expires_at)",
            &[jti.as_uuid(), &nanos(expires_at)?],
        )
        .await?;
        Ok(())
    }

    async fn access_token_revoked(
        &self,
        jti: AccessTokenId,
        grant: Option<GrantId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let grant = grant.map(|g| *g.as_uuid());
        let row = self
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM oauth_revoked_access_tokens WHERE jti = $1 AND expires_at > $2)
                     OR EXISTS (SELECT 1 FROM oauth_grants WHERE id = $3 AND revoked)",
                &[jti.as_uuid(), &nanos(now)?, &grant],
            )
            .await?;
        row.map_or(Ok(false), |r| column(&r, 0))
    }

    async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let client = self.client().await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO oauth_accounts (id, username, body) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, body = EXCLUDED.body",
            )
            .await
            .map_err(db)?;
        match client.execute(&upsert, &[account.id.as_uuid(), &account.username, &to_json(account)?]).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::Conflict("username already taken"))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let row = self.query_opt("SELECT body FROM oauth_accounts WHERE id = $1", &[id.as_uuid()]).await?;
        row.map(|r| from_json("account", column(&r, 0)?)).transpose()
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let row = self.query_opt("SELECT body FROM oauth_accounts WHERE username = $1", &[&username]).await?;
        row.map(|r| from_json("account", column(&r, 0)?)).transpose()
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = self.query("SELECT body FROM oauth_accounts ORDER BY username", &[]).await?;
        rows.iter().map(|r| from_json("account", column(r, 0)?)).collect()
    }

    async fn accounts_after(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            Some(a) => {
                self.query("SELECT body FROM oauth_accounts WHERE id > $1 ORDER BY id LIMIT $2", &[a.as_uuid(), &limit])
                    .await?
            }
            None => self.query("SELECT body FROM oauth_accounts ORDER BY id LIMIT $1", &[&limit]).await?,
        };
        rows.iter().map(|r| from_json("account", column(r, 0)?)).collect()
    }

    async fn delete_account(&self, id: AccountId) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM oauth_accounts WHERE id = $1", &[id.as_uuid()]).await? == 1)
    }

    async fn grants_of(
        &self,
        account: AccountId,
        after: Option<GrantId>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.map(|g| *g.as_uuid());
        let rows = self
            .query(
                "SELECT body, revoked FROM oauth_grants
                 WHERE account = $1 AND NOT revoked AND expires_at > $2 AND ($3::uuid IS NULL OR id > $3)
                 ORDER BY id LIMIT $4",
                &[account.as_uuid(), &nanos(now)?, &after, &limit],
            )
            .await?;
        rows.iter().map(|r| grant_of(column(r, 0)?, column(r, 1)?)).collect()
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let inserted = self
            .execute(
                "INSERT INTO oauth_clients (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&client.id.as_str(), &to_json(client)?],
            )
            .await?;
        if inserted == 1 { Ok(()) } else { Err(StoreError::Conflict("client_id already taken")) }
    }

    async fn replace_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let n = self
            .execute("UPDATE oauth_clients SET body = $2 WHERE id = $1", &[&client.id.as_str(), &to_json(client)?])
            .await?;
        Ok(n == 1)
    }

    async fn client_record(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row = self.query_opt("SELECT body FROM oauth_clients WHERE id = $1", &[&id.as_str()]).await?;
        row.map(|r| from_json("client", column(&r, 0)?)).transpose()
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM oauth_clients WHERE id = $1", &[&id.as_str()]).await? == 1)
    }

    async fn client_records(&self, after: Option<&ClientId>, limit: usize) -> Result<Vec<ClientRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            Some(a) => {
                self.query("SELECT body FROM oauth_clients WHERE id > $1 ORDER BY id LIMIT $2", &[&a.as_str(), &limit])
                    .await?
            }
            None => self.query("SELECT body FROM oauth_clients ORDER BY id LIMIT $1", &[&limit]).await?,
        };
        rows.iter().map(|r| from_json("client", column(r, 0)?)).collect()
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        let row = self.query_opt("SELECT count(*) FROM oauth_clients", &[]).await?;
        let n: i64 = row.map_or(Ok(0), |r| column(&r, 0))?;
        Ok(n.unsigned_abs())
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO oauth_signing_keys (kid, body) VALUES ($1, $2)
             ON CONFLICT (kid) DO UPDATE SET body = EXCLUDED.body",
            &[&key.kid, &to_json(key)?],
        )
        .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = self.query("SELECT body FROM oauth_signing_keys ORDER BY kid", &[]).await?;
        rows.iter().map(|r| from_json("signing key", column(r, 0)?)).collect()
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<Vec<OffsetDateTime>>, StoreError> {
        // One statement, one round trip: each key's row is locked by its
        // upsert, which sees every add committed before it, so concurrent
        // adds on a key never lose each other. The rows are locked in key
        // order, so two adds naming the same keys never deadlock. Only failed
        // checks come here; a request that passes writes nothing.
        let mut sorted: Vec<&[u8]> = keys.iter().map(|key| key.as_bytes().as_slice()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let rows = self
            .query(
                "INSERT INTO oauth_throttle AS t (key, failures, latest)
                 SELECT k, ARRAY[$2::bigint], $2 FROM unnest($1::bytea[]) AS k ORDER BY k
                 ON CONFLICT (key) DO UPDATE SET
                     failures = ARRAY(
                         SELECT f FROM unnest(t.failures) AS old(f) WHERE f >= $3
                         UNION ALL SELECT $2::bigint
                         ORDER BY 1),
                     latest = GREATEST(t.latest, $2)
                 RETURNING key, failures",
                &[&sorted, &nanos(at)?, &nanos(since)?],
            )
            .await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let key: Vec<u8> = column(row, 0)?;
            let failures: Vec<i64> = column(row, 1)?;
            found.insert(key, failures.into_iter().map(time_of).collect::<Result<Vec<_>, _>>()?);
        }
        keys.iter()
            .map(|key| {
                found
                    .get(key.as_bytes().as_slice())
                    .cloned()
                    .ok_or_else(|| StoreError::Unavailable("a throttle key was not returned by its upsert".into()))
            })
            .collect()
    }

    async fn forget_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime) -> Result<(), StoreError> {
        // Removes one element equal to `at`, if there is one.
        let bytes: Vec<&[u8]> = keys.iter().map(|key| key.as_bytes().as_slice()).collect();
        self.execute(
            "UPDATE oauth_throttle
             SET failures = failures[:array_position(failures, $2::bigint) - 1]
                         || failures[array_position(failures, $2::bigint) + 1:]
             WHERE key = ANY($1) AND array_position(failures, $2::bigint) IS NOT NULL",
            &[&bytes, &nanos(at)?],
        )
        .await?;
        Ok(())
    }

    async fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError> {
        let row =
            self.query_opt("SELECT failures FROM oauth_throttle WHERE key = $1", &[&key.as_bytes().as_slice()]).await?;
        let all: Vec<i64> = row.map_or(Ok(Vec::new()), |r| column(&r, 0))?;
        let since = nanos(since)?;
        all.into_iter().filter(|t| *t >= since).map(time_of).collect()
    }

    async fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError> {
        let now = nanos(now)?;
        let expired = |table: &str, key: &str| sweep_sql(table, key, table, "expires_at <= $1");
        Ok(Swept {
            sessions: self.sweep_batches(&expired("oauth_sessions", "id"), now).await?,
            // Tokens of dead families first, so they are counted; deleting a
            // grant would remove them too, through the foreign key.
            refresh_tokens: self
                .sweep_batches(
                    &sweep_sql(
                        "oauth_refresh_tokens",
                        "hash",
                        "oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id",
                        "r.expires_at <= $1 OR g.expires_at <= $1",
                    ),
                    now,
                )
                .await?,
            grants: self.sweep_batches(&expired("oauth_grants", "id"), now).await?,
            revoked_tokens: self.sweep_batches(&expired("oauth_revoked_access_tokens", "jti"), now).await?,
            throttle_keys: self
                .sweep_batches(
                    &sweep_sql("oauth_throttle", "key", "oauth_throttle", "latest < $1"),
                    nanos(throttle_since)?,
                )
                .await?,
            records: self
                .sweep_batches(&sweep_sql("oauth_records", "ctid", "oauth_records", "expires_at <= $1"), now)
                .await?,
        })
    }

    async fn insert_record(&self, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError> {
        // One statement decides a race: the row goes in when the key is free
        // or its record has expired, and not when a live record holds it.
        let inserted = self
            .execute(
                "INSERT INTO oauth_records (kind, key, owner, value, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kind, key) DO UPDATE SET owner = EXCLUDED.owner, value = EXCLUDED.value,
                     expires_at = EXCLUDED.expires_at
                 WHERE oauth_records.expires_at <= $6",
                &[
                    &record.kind.name(),
                    &record.key.as_bytes().as_slice(),
                    &record.owner.map(|o| *o.as_uuid()),
                    &record.value,
                    &nanos(record.expires_at)?,
                    &nanos(now)?,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let row = self
            .query_opt(
                "SELECT owner, value, expires_at FROM oauth_records WHERE kind = $1 AND key = $2 AND expires_at > $3",
                &[&kind.name(), &key.as_bytes().as_slice(), &nanos(now)?],
            )
            .await?;
        row.map(|row| record_of(kind, key, &row)).transpose()
    }

    async fn replace_record(&self, old: &Record, new: &Record) -> Result<bool, StoreError> {
        if (old.kind, old.key) != (new.kind, new.key) {
            return Ok(false);
        }
        let replaced = self
            .execute(
                "UPDATE oauth_records SET owner = $3, value = $4, expires_at = $5
                 WHERE kind = $1 AND key = $2
                     AND owner IS NOT DISTINCT FROM $6 AND value = $7 AND expires_at = $8",
                &[
                    &old.kind.name(),
                    &old.key.as_bytes().as_slice(),
                    &new.owner.map(|o| *o.as_uuid()),
                    &new.value,
                    &nanos(new.expires_at)?,
                    &old.owner.map(|o| *o.as_uuid()),
                    &old.value,
                    &nanos(old.expires_at)?,
                ],
            )
            .await?;
        Ok(replaced == 1)
    }

    async fn take_record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        // DELETE ... RETURNING: of concurrent takers the row goes to one.
        let row = self
            .query_opt(
                "DELETE FROM oauth_records WHERE kind = $1 AND key = $2 RETURNING owner, value, expires_at",
                &[&kind.name(), &key.as_bytes().as_slice()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(record_of(kind, key, &row)?).filter(|r| now < r.expires_at))
    }

    async fn delete_records_of(&self, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError> {
        self.execute("DELETE FROM oauth_records WHERE kind = $1 AND owner = $2", &[&kind.name(), owner.as_uuid()]).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query_opt("SELECT 1", &[]).await.map(|_| ())
    }
}
