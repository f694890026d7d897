//! Why a copy stopped, by cause: a wrong URL, a target that already holds data, a schema that
//! does not match the table list, a value that cannot be carried over exactly, a database
//! error (named by table), or a verification that found a difference.

use thiserror::Error;

use super::Report;
use crate::error::StoreError;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CopyError {
    #[error("the source must be a SQLite database (sqlite://PATH), not `{url}`")]
    SourceNotSqlite { url: String },
    #[error("the target must be a PostgreSQL URL (postgres://… or postgresql://…), not `{url}`")]
    TargetNotPostgres { url: String },
    #[error(
        "the target {url} already holds easgate data ({tables}); migrate copies into an empty \
         database or schema only: name another one (e.g. ?schema=NAME) or empty it first"
    )]
    TargetNotEmpty { url: String, tables: String },
    #[error("the {side} schema does not match what migrate copies: {detail}")]
    SchemaMismatch { side: &'static str, detail: String },
    #[error("{table} (SQLite rowid {row}), column {column}: {why}; nothing was copied")]
    Value {
        table: &'static str,
        row: i64,
        column: &'static str,
        why: String,
    },
    #[error("reading {table} from SQLite failed: {source}")]
    Read {
        table: &'static str,
        source: rusqlite::Error,
    },
    #[error("writing {table} to PostgreSQL failed (nothing was committed): {source}")]
    Write {
        table: &'static str,
        source: sqlx::Error,
    },
    #[error("reading {table} back from PostgreSQL failed (nothing was committed): {source}")]
    ReadBack {
        table: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "verification failed for {} (row count or checksum differs); the copy was rolled back",
        .mismatched.join(", ")
    )]
    Mismatch {
        mismatched: Vec<String>,
        report: Box<Report>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> Self {
        CopyError::Store(StoreError::Sqlite(e))
    }
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(StoreError::from(e))
    }
}
