//! The write transaction and what every change writes with it.
//!
//! Why one lock for all writers: SQLite has one writer at a time, and the store's semantics
//! (a gap-free, commit-ordered change feed; check-then-write sequences) rest on that. A
//! transaction-scoped advisory lock, keyed by the schema, taken as the first statement of each
//! write transaction gives the same on PostgreSQL, across processes, and is released by commit
//! or rollback.

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::error::{Result, StoreError};
use crate::model::Ctx;

use super::PgStore;

impl PgStore {
    /// Begin a write transaction holding the writers' lock.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Postgres>> {
        begin_write(&self.pool).await
    }
}

/// Begin a write transaction on a connection of `pool`, holding the writers' lock.
pub(crate) async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    lock_writers(&mut tx).await?;
    Ok(tx)
}

/// Take the writers' lock for the rest of the transaction `tx` is in.
pub(crate) async fn lock_writers(tx: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('easgate-write:' || current_schema()))")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Append the audit event and the change-feed row of a change, inside its transaction.
pub(crate) async fn record(
    tx: &mut PgConnection,
    ctx: &Ctx,
    action: &str,
    entity: &str,
    key: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ctx.now)
    .bind(&ctx.actor)
    .bind(action)
    .bind(format!("{entity}:{key}"))
    .bind(detail)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO changes (at, entity, key) VALUES ($1, $2, $3)")
        .bind(ctx.now)
        .bind(entity)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A unique-constraint violation as `AlreadyExists` of `kind`/`key`; any other error as is.
pub(crate) fn unique_violation(e: sqlx::Error, kind: &'static str, key: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists {
            kind,
            key: key.to_string(),
        },
        _ => StoreError::Postgres(e),
    }
}

/// The id a one-parameter query finds, or `NotFound` of `kind`.
pub(crate) async fn id_of(
    tx: &mut PgConnection,
    sql: &str,
    key: &str,
    kind: &'static str,
) -> Result<i64> {
    sqlx::query_scalar(sql)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found(kind, key))
}

/// `lower()` of a text parameter as the NOCASE columns compare (ASCII-only folding under the
/// "C" collation, as SQLite's NOCASE), for `lower(col) = NOCASE_PARAM` with `$1`.
pub(crate) const NOCASE_1: &str = "lower($1::text COLLATE \"C\")";

/// Revoke every valid certificate matching `where_clause` (with `$1` bound to `id`); the
/// serials revoked, in serial order.
pub(crate) async fn revoke_where(
    tx: &mut PgConnection,
    where_clause: &str,
    id: i64,
    revoke: &crate::model::Revocation,
) -> Result<Vec<String>> {
    let serials: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT serial FROM certificates WHERE status = 'valid' AND {where_clause} ORDER BY serial"
    ))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3 \
         WHERE status = 'valid' AND {where_clause}"
    ))
    .bind(id)
    .bind(revoke.at)
    .bind(&revoke.reason)
    .execute(&mut *tx)
    .await?;
    Ok(serials)
}

/// The first column of every row of `sql`, given one text parameter.
pub(crate) async fn names_where(
    tx: &mut PgConnection,
    sql: &str,
    param: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sql)
        .bind(param)
        .fetch_all(&mut *tx)
        .await?)
}
