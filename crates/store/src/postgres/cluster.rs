//! What several easgate processes on one database need from it beyond shared tables: being told
//! at once that the change feed grew, and a lease that exactly one of them holds at a time.
//!
//! **Change notifications.** A trigger (migration 0002) sends `NOTIFY` on a channel named after
//! the schema whenever a transaction adds change-feed rows; PostgreSQL delivers it at commit.
//! [`PgStore::wait_for_changes`] returns when one arrives, so a revocation made through any
//! instance reaches every other instance's memory in milliseconds rather than a poll interval.
//! The listening connection is opened on first use only (CLI commands never wait) and reopened
//! after it is lost; since notifications sent while no one listened are gone, every (re)connect
//! counts as a notification, and the caller's timeout keeps polling as the fallback.
//!
//! **Leases.** A session-level advisory lock on a connection of its own: PostgreSQL frees it
//! the moment that session ends, which is when the holder's process dies (its socket closes)
//! or its connection is lost. TCP keepalives on that connection make the server notice a
//! vanished host in about 25 s, inside the 30 s takeover promise. The holder checks its
//! connection every time it renews, so a holder cut off from the database stops acting as the
//! holder by itself; what it protects (CRL numbers) is also guarded by the database, so a brief
//! overlap cannot produce duplicates.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool};
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;

use crate::error::Result;

use super::PgStore;

/// How long a lease check may take before the connection counts as lost.
const LEASE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before reopening a lost listening connection.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// The channel the trigger notifies for the schema the store's tables are in (the same
/// expression as migration 0002, applied to the schema `changes` resolves to).
const CHANNEL_SQL: &str = "SELECT 'easgate_' || left(md5(n.nspname), 16) FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'changes'::regclass";

/// The lease connection and the leases it holds.
#[derive(Default)]
pub(crate) struct Leases {
    conn: Option<PgConnection>,
    held: HashSet<String>,
}

impl PgStore {
    /// Wait for a change notification or `at_most`, whichever is first.
    pub async fn wait_for_changes(&self, at_most: Duration) {
        let notify = self
            .follower
            .get_or_init(|| async {
                let notify = Arc::new(Notify::new());
                tokio::spawn(listen(self.pool.clone(), Arc::downgrade(&notify)));
                notify
            })
            .await;
        let _ = tokio::time::timeout(at_most, notify.notified()).await;
    }

    /// Hold (take, or keep) the lease `name`; `false` while another process holds it.
    pub async fn hold_lease(&self, name: &str) -> Result<bool> {
        let mut leases = self.leases.lock().await;
        // Owned while in use (and put back only if it still works).
        let kept = match leases.conn.take() {
            Some(mut conn) => alive(&mut conn).await.then_some(conn),
            None => None,
        };
        let mut conn = match kept {
            Some(conn) => conn,
            None => {
                leases.held.clear();
                lease_connection(&self.options).await?
            }
        };
        if leases.held.contains(name) {
            leases.conn = Some(conn);
            return Ok(true);
        }
        let taken: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('easgate-lease:' || current_schema() || ':' || $1))",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
        if taken {
            leases.held.insert(name.to_string());
        }
        leases.conn = Some(conn);
        Ok(taken)
    }
}

/// Whether the lease connection still answers. (Boxed futures here and below: sqlx's
/// connection futures otherwise trip the compiler's `Send` inference for the trait's future.)
fn alive(conn: &mut PgConnection) -> BoxFuture<'_, bool> {
    Box::pin(async move {
        tokio::time::timeout(LEASE_CHECK_TIMEOUT, conn.ping())
            .await
            .is_ok_and(|ping| ping.is_ok())
    })
}

/// A connection for leases: its own session, with keepalives so the server frees its locks
/// soon after its host vanishes.
fn lease_connection(options: &PgConnectOptions) -> BoxFuture<'_, Result<PgConnection>> {
    let options = options.clone().options([
        ("tcp_keepalives_idle", "10"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
    ]);
    Box::pin(async move {
        match tokio::time::timeout(LEASE_CHECK_TIMEOUT, PgConnection::connect_with(&options)).await
        {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(crate::StoreError::Unavailable(
                "no connection for the leader lease within 5 s".into(),
            )),
        }
    })
}

/// Listen for change notifications until the store is dropped, waking the follower on each
/// (and on every reconnect, which may have missed some).
async fn listen(pool: PgPool, notify: Weak<Notify>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await {
            let channel: std::result::Result<String, _> = sqlx::query_scalar(CHANNEL_SQL)
                .fetch_one(&mut listener)
                .await;
            if let Ok(channel) = channel {
                if listener.listen(&channel).await.is_ok() {
                    loop {
                        let Some(wake) = notify.upgrade() else {
                            return;
                        };
                        wake.notify_one();
                        drop(wake);
                        // `Ok(None)`: the connection was lost (the next call reconnects).
                        match listener.try_recv().await {
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        if notify.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}
