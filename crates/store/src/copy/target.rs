//! The PostgreSQL side: is the target empty, does its schema match the list, batched inserts,
//! sequences, and reading rows back for the checksum.
//!
//! Why multi-row INSERTs with bound parameters rather than COPY: every value goes through the
//! same typed binding as the backend's own queries (no text escaping of our own to get
//! wrong), and a batch of a few hundred rows per round trip is fast enough for the sizes an
//! install reaches (audit trails of millions of rows take minutes, not hours).

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};

use super::error::CopyError;
use super::tables::{column_list, key_order, quoted, Kind, Table, TABLES};
use super::value::{Checksum, Value};

/// PostgreSQL's limit on bound parameters per statement is 65 535; stay well below.
const MAX_PARAMETERS: usize = 30_000;
/// Rows per INSERT at most.
pub(crate) const MAX_ROWS_PER_INSERT: usize = 500;

/// The row the PostgreSQL migration itself writes (the `allow-managed` rule a new install
/// starts with): a freshly migrated, unused schema is still empty. The copy replaces it with
/// the source's rules.
const MIGRATION_SEED_RULE: &str = "name = 'allow-managed' AND priority = 100 AND users = '[]' \
     AND groups = '[]' AND platforms = '[]' AND clients = '[]' \
     AND device_states = '[\"managed\"]' AND networks = '[]' AND action = 'allow'";

/// The easgate tables of the target's schema that hold rows (other than the migration's own
/// seed rule), with their row counts. Reads only: a schema that does not exist yet is empty.
pub(crate) async fn rows_present(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, CopyError> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut found = Vec::new();
    for table in TABLES
        .iter()
        .filter(|t| present.iter().any(|p| p == t.name))
    {
        let sql = if table.name == "access_rules" {
            format!("SELECT count(*) FROM access_rules WHERE NOT ({MIGRATION_SEED_RULE})")
        } else {
            format!("SELECT count(*) FROM {}", quoted(table.name))
        };
        let count: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?;
        if count > 0 {
            found.push((table.name.to_string(), count));
        }
    }
    Ok(found)
}

/// Remove the migration's seed rule (the only row an empty target may hold).
pub(crate) async fn clear_seed(conn: &mut PgConnection) -> Result<(), CopyError> {
    sqlx::query(&format!(
        "DELETE FROM access_rules WHERE {MIGRATION_SEED_RULE}"
    ))
    .execute(&mut *conn)
    .await
    .map_err(|source| CopyError::Write {
        table: "access_rules",
        source,
    })?;
    Ok(())
}

/// PostgreSQL's `data_type` for a kind.
fn pg_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "bigint",
        Kind::Text => "text",
        Kind::Blob => "bytea",
        Kind::Bool => "boolean",
    }
}

/// Refuse a target whose tables lack a column of the list, have one more, or one of another
/// type (a schema migrated by another easgate version).
pub(crate) async fn check_schema(conn: &mut PgConnection) -> Result<(), CopyError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut columns: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (table, column, data_type) in &rows {
        columns
            .entry(table.as_str())
            .or_default()
            .insert(column.as_str(), data_type.as_str());
    }
    for table in TABLES {
        let expected: BTreeMap<&str, &str> = table
            .columns
            .iter()
            .map(|c| (c.name, pg_type(c.kind)))
            .collect();
        let actual = columns.get(table.name).cloned().unwrap_or_default();
        if actual != expected {
            return Err(CopyError::SchemaMismatch {
                side: "PostgreSQL",
                detail: format!(
                    "table {} has columns {actual:?}, migrate copies {expected:?}",
                    table.name
                ),
            });
        }
    }
    Ok(())
}

/// Rows per INSERT for `table`.
pub(crate) fn rows_per_insert(table: &Table) -> usize {
    (MAX_PARAMETERS / table.columns.len().max(1)).clamp(1, MAX_ROWS_PER_INSERT)
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    value: &Value,
    kind: Kind,
) -> Query<'q, Postgres, PgArguments> {
    match (value, kind) {
        (Value::Int(v), _) => query.bind(*v),
        (Value::Text(v), _) => query.bind(v.clone()),
        (Value::Blob(v), _) => query.bind(v.clone()),
        (Value::Bool(v), _) => query.bind(*v),
        (Value::Null, Kind::Int) => query.bind(None::<i64>),
        (Value::Null, Kind::Text) => query.bind(None::<String>),
        (Value::Null, Kind::Blob) => query.bind(None::<Vec<u8>>),
        (Value::Null, Kind::Bool) => query.bind(None::<bool>),
    }
}

/// Insert `rows` (at most [`rows_per_insert`]) into `table` in one statement.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    table: &'static Table,
    rows: &[Vec<Value>],
) -> Result<(), CopyError> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = table.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        quoted(table.name),
        column_list(table)
    );
    for r in 0..rows.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (value, column) in row.iter().zip(table.columns) {
            query = bind(query, value, column.kind);
        }
    }
    query
        .execute(&mut *conn)
        .await
        .map_err(|source| CopyError::Write {
            table: table.name,
            source,
        })?;
    Ok(())
}

/// Move `table`'s serial sequence past the largest copied value (and past `floor`, the highest
/// value SQLite ever handed out), so the next insert gets a fresh id.
pub(crate) async fn advance_sequence(
    conn: &mut PgConnection,
    table: &'static Table,
    column: &'static str,
    floor: Option<i64>,
) -> Result<(), CopyError> {
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(MAX({col}), 0), $3, 1), \
         GREATEST(COALESCE(MAX({col}), 0), $3) >= 1) FROM {table}",
        col = quoted(column),
        table = quoted(table.name)
    );
    sqlx::query(&sql)
        .bind(quoted(table.name))
        .bind(column)
        .bind(floor.unwrap_or(0))
        .execute(&mut *conn)
        .await
        .map_err(|source| CopyError::Write {
            table: table.name,
            source,
        })?;
    Ok(())
}

/// Row count and checksum of `table` as PostgreSQL holds it, rows in key order (text
/// byte-wise, as on the SQLite side).
pub(crate) async fn checksum(
    conn: &mut PgConnection,
    table: &'static Table,
) -> Result<(u64, String), CopyError> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        column_list(table),
        quoted(table.name),
        key_order(table, "\"C\"")
    );
    let read_error = |source| CopyError::ReadBack {
        table: table.name,
        source,
    };
    let mut sum = Checksum::new(table);
    let mut rows = sqlx::query(&sql).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(read_error)? {
        sum.add_row(&read_row(table, &row).map_err(read_error)?);
    }
    Ok(sum.finish())
}

fn read_row(table: &Table, row: &PgRow) -> Result<Vec<Value>, sqlx::Error> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column.kind {
                Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
                Kind::Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
                Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
            }
            .unwrap_or(Value::Null))
        })
        .collect()
}
