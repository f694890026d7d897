//! Schema migrations of the PostgreSQL backend, applied when a store opens.
//!
//! Why not sqlx's migrator: it needs its own macros or a directory at run time; the SQL here is
//! embedded like the SQLite backend's, and tracked in `easgate_migrations` (one row per applied
//! version). Two processes opening the same database at once must not both migrate, so the
//! whole check-and-apply runs under a session advisory lock keyed by the schema; the second
//! process waits, then finds every version applied. Each migration and its tracking row commit
//! together, so a failure leaves the schema at the previous version.

use sqlx::{Connection, PgConnection};

use crate::error::{Result, StoreError};

/// The migrations, in order; version = index + 1. Never edit one that has shipped: add another.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_change_notify",
        include_str!("../../migrations/postgres/0002_change_notify.sql"),
    ),
    (
        "0003_eas_provision",
        include_str!("../../migrations/postgres/0003_eas_provision.sql"),
    ),
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Create `schema` if given and missing, then apply every migration not yet applied, holding
/// the migration lock throughout.
pub(crate) async fn migrate(conn: &mut PgConnection, schema: Option<&str>) -> Result<()> {
    let key = format!("easgate-migrate:{}", schema.unwrap_or(""));
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await?;
    let outcome = migrate_locked(conn, schema).await;
    // Unlock even after a failure; closing the connection would release it too.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(conn: &mut PgConnection, schema: Option<&str>) -> Result<()> {
    if let Some(name) = schema {
        // The name was checked to need no quoting (url.rs).
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{name}\""))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS easgate_migrations (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_at BIGINT NOT NULL DEFAULT CAST(extract(epoch FROM now()) AS BIGINT))",
    )
    .execute(&mut *conn)
    .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM easgate_migrations")
            .fetch_one(&mut *conn)
            .await?;
    if current > LATEST {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is version {current}, newer than this easgate knows \
             ({LATEST}): upgrade easgate"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::PgMigration { name, source })?;
        sqlx::query("INSERT INTO easgate_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(*name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
