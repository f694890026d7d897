//! Why `serve` could not start or had to stop.

use std::net::SocketAddr;
use std::path::PathBuf;

use easgate_ops::OpsError;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("config file {path}: {why}")]
    ConfigFile { path: PathBuf, why: String },
    #[error("cannot listen on {addr} ({listener}): {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}
