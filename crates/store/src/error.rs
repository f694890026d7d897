//! Store errors, classified by cause so callers never match on strings.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{kind} `{key}` does not exist")]
    NotFound { kind: &'static str, key: String },
    #[error("{kind} `{key}` already exists")]
    AlreadyExists { kind: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("unsupported database URL `{url}`: {why}")]
    UnsupportedUrl { url: String, why: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(sqlx::Error),
    /// The database cannot be reached now (refused, timed out, connection lost): nothing this
    /// call tried to write was committed, unless the connection broke during the commit itself.
    #[error("the database is unreachable ({0}); try again once it is back")]
    Unavailable(String),
    #[error(
        "cannot connect to PostgreSQL at {host}:{port} ({url}): {source}; check that the server \
         is running and accepts TCP connections there, and that the user, password and \
         database in the URL are right"
    )]
    Connect {
        url: String,
        host: String,
        port: u16,
        source: sqlx::Error,
    },
    #[error("PostgreSQL migration {name} failed: {source}")]
    PgMigration {
        name: &'static str,
        source: sqlx::Error,
    },
    /// A call recorded together with others (group commit) whose batch failed as a whole.
    #[error("{0}")]
    GroupCommit(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("PostgreSQL: {e}")),
            other => StoreError::Postgres(other),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached (a retry later may succeed; after a failed
    /// group commit, check first whether the change took effect).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Connect { .. } | StoreError::GroupCommit(_)
        )
    }

    pub(crate) fn not_found(kind: &'static str, key: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            key: key.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
