//! Errors of admin operations: what the CLI prints after `error:` and the REST API will map to
//! problem JSON. Each variant says what was wrong and, where it helps, what to do.

use std::path::PathBuf;

use easgate_pki::PkiError;
use easgate_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpsError {
    /// Input that fails validation before anything is written.
    #[error("{0}")]
    Invalid(String),
    #[error("{kind} `{key}` does not exist{hint}")]
    NotFound {
        kind: &'static str,
        key: String,
        hint: String,
    },
    #[error("{kind} `{key}` already exists")]
    AlreadyExists { kind: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    /// Something that existed and is no longer available (a used or expired one-time token).
    #[error("{0}")]
    Gone(String),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key: {0}")]
    MasterKey(String),
    /// A command other than `serve` or `init` found no data directory: nothing is created.
    #[error("no easgate data directory at {} (pass --data-dir or EASGATE_DATA_DIR, or run easgate serve/init first)", .0.display())]
    NoDataDir(PathBuf),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, key } => OpsError::NotFound {
                kind,
                key,
                hint: String::new(),
            },
            StoreError::AlreadyExists { kind, key } => OpsError::AlreadyExists { kind, key },
            StoreError::Conflict(msg) => OpsError::Conflict(msg),
            other => OpsError::Store(other),
        }
    }
}

impl OpsError {
    pub fn not_found(kind: &'static str, key: impl Into<String>, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        OpsError::NotFound {
            kind,
            key: key.into(),
            hint: if hint.is_empty() {
                hint
            } else {
                format!(" ({hint})")
            },
        }
    }

    /// A not-found error with `hint` (what to do) added; any other error unchanged.
    pub fn hint_if_not_found(self, hint: &str) -> Self {
        match self {
            OpsError::NotFound { kind, key, .. } => OpsError::not_found(kind, key, hint),
            other => other,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OpsError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, OpsError>;
