//! The PostgreSQL backend: a pool of connections to one database (and optionally one schema of
//! it, `?schema=NAME`), migrations embedded in the binary and applied on open.
//!
//! Why sqlx here while SQLite stays on rusqlite: a PostgreSQL statement is a network round
//! trip, so an async driver that yields the runtime thread while waiting is the right trade
//! (the SQLite backend's calls take microseconds and run inline). sqlx's pool also gives
//! reconnects and bounded waiting for free.
//!
//! Semantics follow the SQLite backend exactly (see `Store`'s docs): every mutating call is one
//! transaction that also appends its audit event and change-feed row. Writers are serialized by
//! a transaction-scoped advisory lock taken first thing in each write transaction, which is
//! what SQLite's single writer gives: the change feed's revisions then commit in order (a
//! poller never sees revision 7 before 6 is visible), and check-then-write sequences (e.g. "no
//! valid certificates, then remove") cannot interleave. Reads run without it. Uniqueness
//! (certificate serials, names) is enforced by the database's constraints, so it holds across
//! processes; CRL numbers come from `UPDATE … RETURNING` on a per-CA counter row.
//!
//! Modules, one job each: `url` (URL and `schema` parameter), `migrate` (versioned schema under
//! an advisory lock), `cluster` (change notifications and leases for several instances),
//! `write` (the write transaction, audit/change recording, error mapping), `rows` (shared
//! SELECTs and row mapping), `core` (change feed, settings, CA creation, issuance, CRL
//! numbers), `directory` (CAs, trusted CAs, groups, users), `devices` (templates, devices,
//! certificates), `pki` (CRLs, SCEP, audit), `profiles` (profiles, service keys, tokens,
//! renewals), `gateway` (rules, overrides, partnerships, bindings), `provision` (EAS policies
//! and remote wipes), `api` (API tokens, paged lists), `batch` (group commit of certificate
//! issuance), `store_impl` (the `Store` trait over all of them).

mod api;
mod batch;
mod cluster;
mod core;
mod devices;
mod directory;
mod gateway;
mod migrate;
mod pki;
mod profiles;
mod provision;
mod rows;
mod store_impl;
mod url;
mod write;

pub(crate) use url::PgUrl;
pub(crate) use write::lock_writers;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection;

use crate::error::Result;

/// Connections kept by one store.
const MAX_CONNECTIONS: u32 = 8;

/// The PostgreSQL implementation of the store.
pub struct PgStore {
    pool: PgPool,
    /// What the pool connects with (the lease connection is opened with the same).
    options: PgConnectOptions,
    /// Woken by change notifications once something waits for changes.
    follower: tokio::sync::OnceCell<std::sync::Arc<tokio::sync::Notify>>,
    leases: tokio::sync::Mutex<cluster::Leases>,
    /// Group commit of certificate inserts (`batch`); `None` when opened outside a runtime.
    certificates: Option<batch::CertificateWriter>,
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://` or `postgresql://`, with an optional
    /// `schema=NAME` parameter) and bring its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let parsed = url::PgUrl::parse(url)?;
        // One connection first, so a wrong host, port or credential fails at once with a
        // clear message (a pool would retry until its acquire timeout); it also migrates.
        let mut conn = parsed.connect().await?;
        migrate::migrate(&mut conn, parsed.schema.as_deref()).await?;
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // Also how long a call waits while the database is unreachable before it fails
            // (the pool retries connecting until then): short, so an admin hears at once.
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(parsed.options.clone());
        let certificates = batch::CertificateWriter::start(pool.clone());
        Ok(PgStore {
            pool,
            options: parsed.options,
            follower: tokio::sync::OnceCell::new(),
            leases: tokio::sync::Mutex::new(cluster::Leases::default()),
            certificates,
        })
    }

    /// The schema version this database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM easgate_migrations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The newest schema version this build knows.
    pub fn latest_schema_version() -> i64 {
        migrate::LATEST
    }
}
