//! The schema, as numbered migrations embedded in the binary.
//!
//! [`migrate`] applies the ones a database lacks, in order, in one transaction
//! under an advisory lock, so nodes that start together apply each migration
//! once. A database whose schema is newer than this build is refused rather
//! than written with old assumptions.
//!
//! Times are `bigint` nanoseconds since the Unix epoch: exact (the store hands
//! back the very instants it was given, which `timestamptz`'s microseconds
//! would round) and cheap to compare. Records are `jsonb` bodies with the
//! columns every lookup, expiry and compare-and-swap needs beside them.

use tokio_postgres::Client;

use crate::Error;

/// Every migration, in order; the number of a migration is its index plus one.
/// Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE oauth_sessions (
        id          uuid PRIMARY KEY,
        expires_at  bigint NOT NULL,
        code        bytea UNIQUE,
        body        jsonb NOT NULL
    );
    CREATE INDEX oauth_sessions_expiry ON oauth_sessions (expires_at);

    CREATE TABLE oauth_grants (
        id          uuid PRIMARY KEY,
        expires_at  bigint NOT NULL,
        revoked     boolean NOT NULL,
        body        jsonb NOT NULL
    );
    CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);

    CREATE TABLE oauth_refresh_tokens (
        hash        bytea PRIMARY KEY,
        grant_id    uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        expires_at  bigint NOT NULL,
        rotated     boolean NOT NULL,
        body        jsonb NOT NULL
    );
    CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
    CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);

    CREATE TABLE oauth_revoked_access_tokens (
        jti         uuid PRIMARY KEY,
        expires_at  bigint NOT NULL
    );
    CREATE INDEX oauth_revoked_access_tokens_expiry ON oauth_revoked_access_tokens (expires_at);

    CREATE TABLE oauth_accounts (
        id          uuid PRIMARY KEY,
        username    text NOT NULL UNIQUE,
        body        jsonb NOT NULL
    );

    CREATE TABLE oauth_signing_keys (
        kid         text PRIMARY KEY,
        body        jsonb NOT NULL
    );

    CREATE TABLE oauth_throttle (
        key         bytea PRIMARY KEY,
        failures    bigint[] NOT NULL,
        latest      bigint NOT NULL
    );
    CREATE INDEX oauth_throttle_latest ON oauth_throttle (latest);
    "#,
    // 2: short-lived records by kind and key (Store::insert_record and friends).
    r#"
    CREATE TABLE oauth_records (
        kind        text NOT NULL,
        key         bytea NOT NULL,
        owner       uuid,
        value       bytea NOT NULL,
        expires_at  bigint NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE INDEX oauth_records_owner ON oauth_records (kind, owner) WHERE owner IS NOT NULL;
    CREATE INDEX oauth_records_expiry ON oauth_records (expires_at);
    "#,
    // 3: clients in the store (the admin API, dynamic registration), and the
    // grants of an account. Client ids sort bytewise ("C"), as the store
    // contract lists them.
    r#"
    CREATE TABLE oauth_clients (
        id          text COLLATE "C" PRIMARY KEY,
        body        jsonb NOT NULL
    );
    ALTER TABLE oauth_grants ADD COLUMN account uuid;
    UPDATE oauth_grants SET account = (body->>'account')::uuid WHERE body->>'account' IS NOT NULL;
    CREATE INDEX oauth_grants_account ON oauth_grants (account, id) WHERE account IS NOT NULL;
    "#,
    // 4: refresh rotation as one function call (`Store::rotate_refresh`, one
    // round trip). It replaces a statement of four parts (lock the token's
    // row, flip it, insert the successor, revoke on reuse) whose every part
    // ran on every call: here the usual case is one update and one insert.
    //
    // Under READ COMMITTED an UPDATE that finds its row locked by a racing
    // rotation waits for it to commit, then re-checks its WHERE on the row
    // as committed; `NOT rotated` is then false, so of racing callers
    // exactly one flips the token. Each later statement of a VOLATILE
    // function takes a new snapshot, so a loser's second look sees the
    // winner's committed rotation, and revokes the family: reuse.
    r#"
    CREATE FUNCTION oauth_rotate_refresh(
        old_hash    bytea,
        now_ns      bigint,
        new_hash    bytea,
        family      uuid,
        new_expires bigint,
        new_rotated boolean,
        new_body    jsonb
    ) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        -- The token is live and not rotated, and its family (which `new`
        -- belongs to) is live and not revoked: rotate it.
        UPDATE oauth_refresh_tokens SET rotated = true
        WHERE hash = old_hash AND NOT rotated AND expires_at > now_ns AND grant_id = family
          AND EXISTS (SELECT 1 FROM oauth_grants WHERE id = family AND expires_at > now_ns AND NOT revoked);
        IF FOUND THEN
            INSERT INTO oauth_refresh_tokens (hash, grant_id, expires_at, rotated, body)
            VALUES (new_hash, family, new_expires, new_rotated, new_body)
            ON CONFLICT (hash) DO UPDATE SET grant_id = EXCLUDED.grant_id, expires_at = EXCLUDED.expires_at,
                rotated = EXCLUDED.rotated, body = EXCLUDED.body;
            RETURN 'rotated';
        END IF;
        -- Not rotated here: if the token is live but already rotated, in a
        -- live family that is not revoked, this is reuse.
        PERFORM 1 FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
        WHERE r.hash = old_hash AND r.rotated AND r.expires_at > now_ns
          AND g.id = family AND g.expires_at > now_ns AND NOT g.revoked;
        IF FOUND THEN
            UPDATE oauth_grants SET revoked = true WHERE id = family;
            RETURN 'reused';
        END IF;
        RETURN 'not_found';
    END
    $$;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Any 64-bit number, the same in every build: the advisory lock migrations
/// run under.
const MIGRATION_LOCK: i64 = 0x6f61_7574_6873_7172;

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(client: &mut Client) -> Result<(), Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS oauth_schema_migrations (
            version     integer PRIMARY KEY,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let row = tx.query_one("SELECT coalesce(max(version), 0) FROM oauth_schema_migrations", &[]).await?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        return Err(Error::NewerSchema { found });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO oauth_schema_migrations (version) VALUES ($1)", &[&version]).await?;
    }
    tx.commit().await?;
    Ok(())
}
