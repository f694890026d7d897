//! Group commit of certificate inserts: concurrent `insert_certificate` calls are recorded
//! together, in one write transaction with one commit.
//!
//! Why: writers are serialized by the advisory lock (`write`), so one transaction per
//! certificate costs, one after another, a `BEGIN`, the lock, eight statement round trips and a
//! commit that waits for the WAL flush; issuance through the store then tops out far below
//! what signing allows, however many callers there are. Here every call is queued to one writer
//! task that takes whatever has queued up (up to [`MAX_BATCH`]) and records it with a fixed
//! number of statements over arrays (`UNNEST`), whatever the batch size: the lock once, one
//! look-up of every CA, device, template and serial, one multi-row insert per table, one
//! commit. The SQLite backend does the same with its writer thread (`sqlite.rs`).
//!
//! What stays as it was:
//! - Every call gets its own result, and only after the commit (or the failure) of its batch.
//! - The rows of each certificate are those of `core::insert_certificate`: the certificate,
//!   its device marked enrolled (the first certificate of a pending device sets `updated_at`),
//!   its device's pending renewals cleared with a `renewal.clear` audit event and change row,
//!   and its `cert.issue` audit event and change row. Audit events and change rows are appended
//!   in call order (`WITH ORDINALITY … ORDER BY`), so revisions increase along the batch as
//!   they did along the one-by-one transactions.
//!
//! How one call fails alone: by checking before writing, under the writers' lock. A CA,
//! device or template that does not exist is `NotFound` for that call; a serial already in the
//! table, or taken by an earlier call of the same batch, is `AlreadyExists`. Those calls are
//! left out of the inserts, so nothing is written for them. Checking is sound because every
//! writer of `certificates` holds the same lock (no serial can appear between the check and
//! the insert). SAVEPOINTs were the alternative: they cost two more round trips per
//! certificate, which is what this module removes. Should a batch fail anyway before its
//! commit (a writer that bypassed the lock, a lost connection), it is rolled back and each of
//! its calls is retried in a transaction of its own, so again only the call at fault fails. A
//! failed commit is reported to every call of the batch (whether it took effect is unknown).

use std::collections::HashSet;

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StoreError};
use crate::model::{Ctx, NewCertificate};

use super::rows::to_json;
use super::write::begin_write;

/// Calls recorded by one transaction at most.
const MAX_BATCH: usize = 1024;

/// The queue to the writer task.
pub(crate) struct CertificateWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

/// A queued call, with the way back to its caller.
struct Pending {
    ctx: Ctx,
    cert: NewCertificate,
    done: oneshot::Sender<Result<()>>,
}

impl CertificateWriter {
    /// Start the writer task on the current tokio runtime; `None` outside of one (the store
    /// then records each certificate in a transaction of its own). The task ends when the
    /// writer is dropped.
    pub(crate) fn start(pool: PgPool) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, calls) = mpsc::unbounded_channel();
        runtime.spawn(writer_loop(pool, calls));
        Some(CertificateWriter { queue })
    }

    /// Record `cert` with the next batch. `Err(cert)` when the writer task is gone (its
    /// runtime shut down): nothing was done, record it another way.
    pub(crate) async fn insert(
        &self,
        ctx: &Ctx,
        cert: NewCertificate,
    ) -> std::result::Result<Result<()>, NewCertificate> {
        let (done, result) = oneshot::channel();
        let pending = Pending {
            ctx: ctx.clone(),
            cert,
            done,
        };
        if let Err(mpsc::error::SendError(pending)) = self.queue.send(pending) {
            return Err(pending.cert);
        }
        Ok(result.await.unwrap_or_else(|_| {
            Err(StoreError::GroupCommit(
                "the certificate writer stopped before answering".into(),
            ))
        }))
    }
}

async fn writer_loop(pool: PgPool, mut calls: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while calls.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = record_batch(&pool, &batch).await;
        for (call, result) in batch.drain(..).zip(results) {
            let _ = call.done.send(result);
        }
    }
}

/// One result per call of `batch`, in order.
async fn record_batch(pool: &PgPool, batch: &[Pending]) -> Vec<Result<()>> {
    match try_batch(pool, batch).await {
        Ok(results) => results,
        Err(BatchFailure::Commit(e)) => {
            let why = e.to_string();
            batch
                .iter()
                .map(|_| {
                    Err(StoreError::GroupCommit(format!(
                        "committing the certificate's batch failed (it may or may not be \
                         recorded): {why}"
                    )))
                })
                .collect()
        }
        Err(BatchFailure::BeforeCommit) => {
            let mut results = Vec::with_capacity(batch.len());
            for call in batch {
                results.push(record_alone(pool, &call.ctx, &call.cert).await);
            }
            results
        }
    }
}

/// One certificate in a write transaction of its own (the path without batching).
pub(crate) async fn record_alone(pool: &PgPool, ctx: &Ctx, cert: &NewCertificate) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    super::core::insert_certificate(&mut tx, ctx, cert).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a batch was not recorded as a whole.
enum BatchFailure {
    /// Rolled back: nothing of it was written. The cause is not kept: each call is retried on
    /// its own and gets the error of its own attempt.
    BeforeCommit,
    /// The commit itself failed.
    Commit(sqlx::Error),
}

impl From<StoreError> for BatchFailure {
    fn from(_: StoreError) -> Self {
        BatchFailure::BeforeCommit
    }
}

impl From<sqlx::Error> for BatchFailure {
    fn from(_: sqlx::Error) -> Self {
        BatchFailure::BeforeCommit
    }
}

/// What the look-up found for one call.
struct Found {
    ca_id: Option<i64>,
    device_id: Option<i64>,
    template_id: Option<i64>,
    serial_taken: bool,
    open_renewals: bool,
}

/// A call that passed the checks, with its ids.
struct Accepted<'a> {
    ctx: &'a Ctx,
    cert: &'a NewCertificate,
    ca_id: i64,
    device_id: Option<i64>,
    template_id: Option<i64>,
    /// The first of the batch for its device, which has pending renewals to clear.
    clears_renewals: bool,
}

async fn try_batch(
    pool: &PgPool,
    batch: &[Pending],
) -> std::result::Result<Vec<Result<()>>, BatchFailure> {
    let mut tx = begin_write(pool).await?;
    let found = look_up(&mut tx, batch).await?;

    let mut results = Vec::with_capacity(batch.len());
    let mut accepted = Vec::with_capacity(batch.len());
    let mut serials = HashSet::with_capacity(batch.len());
    let mut devices = HashSet::new();
    for (call, found) in batch.iter().zip(found) {
        match check(&call.cert, &found, &mut serials) {
            Err(e) => results.push(Err(e)),
            Ok(ca_id) => {
                results.push(Ok(()));
                let first_of_device = found.device_id.is_some_and(|id| devices.insert(id));
                accepted.push(Accepted {
                    ctx: &call.ctx,
                    cert: &call.cert,
                    ca_id,
                    device_id: found.device_id,
                    template_id: found.template_id,
                    clears_renewals: first_of_device && found.open_renewals,
                });
            }
        }
    }
    if !accepted.is_empty() {
        insert_certificates(&mut tx, &accepted).await?;
        mark_devices_enrolled(&mut tx, &accepted).await?;
        let cleared = clear_renewals(&mut tx, &accepted).await?;
        record_all(&mut tx, &accepted, &cleared).await?;
    }
    tx.commit().await.map_err(BatchFailure::Commit)?;
    Ok(results)
}

/// The ids and states each call needs, in call order, with one statement.
async fn look_up(tx: &mut PgConnection, batch: &[Pending]) -> Result<Vec<Found>> {
    let cas: Vec<&str> = batch.iter().map(|c| c.cert.ca.as_str()).collect();
    let devices: Vec<Option<&str>> = batch.iter().map(|c| c.cert.device.as_deref()).collect();
    let templates: Vec<Option<&str>> = batch.iter().map(|c| c.cert.template.as_deref()).collect();
    let serials: Vec<&str> = batch.iter().map(|c| c.cert.serial.as_str()).collect();
    let rows = sqlx::query(
        "SELECT c.id AS ca_id, d.id AS device_id, tp.id AS template_id, \
         EXISTS (SELECT 1 FROM certificates k WHERE k.serial = t.serial) AS serial_taken, \
         (d.id IS NOT NULL AND EXISTS (SELECT 1 FROM renewals r \
           WHERE r.device_id = d.id AND r.cleared_at IS NULL)) AS open_renewals \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY \
           AS t(ca, device, template, serial, ord) \
         LEFT JOIN cas c ON c.name = t.ca \
         LEFT JOIN devices d ON d.uid = t.device \
         LEFT JOIN templates tp ON tp.name = t.template \
         ORDER BY t.ord",
    )
    .bind(&cas)
    .bind(&devices)
    .bind(&templates)
    .bind(&serials)
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() != batch.len() {
        return Err(StoreError::Corrupt(format!(
            "certificate look-up returned {} rows for {} certificates",
            rows.len(),
            batch.len()
        )));
    }
    rows.iter()
        .map(|r| {
            Ok(Found {
                ca_id: r.try_get("ca_id")?,
                device_id: r.try_get("device_id")?,
                template_id: r.try_get("template_id")?,
                serial_taken: r.try_get("serial_taken")?,
                open_renewals: r.try_get("open_renewals")?,
            })
        })
        .collect()
}

/// The errors `core::insert_certificate` gives, in its order; the CA's id when there is none.
/// `serials` holds the serials accepted so far in the batch.
fn check<'a>(
    cert: &'a NewCertificate,
    found: &Found,
    serials: &mut HashSet<&'a str>,
) -> Result<i64> {
    let ca_id = found
        .ca_id
        .ok_or_else(|| StoreError::not_found("CA", &cert.ca))?;
    if let (Some(uid), None) = (&cert.device, found.device_id) {
        return Err(StoreError::not_found("device", uid));
    }
    if let (Some(name), None) = (&cert.template, found.template_id) {
        return Err(StoreError::not_found("template", name));
    }
    if found.serial_taken || !serials.insert(&cert.serial) {
        return Err(StoreError::AlreadyExists {
            kind: "certificate serial",
            key: cert.serial.clone(),
        });
    }
    Ok(ca_id)
}

async fn insert_certificates(tx: &mut PgConnection, accepted: &[Accepted<'_>]) -> Result<()> {
    let col = |f: fn(&Accepted<'_>) -> i64| accepted.iter().map(f).collect::<Vec<i64>>();
    let sans: Vec<String> = accepted.iter().map(|a| to_json(&a.cert.sans)).collect();
    sqlx::query(
        "INSERT INTO certificates (serial, ca_id, device_id, template_id, subject, sans, \
         key_type, not_before, not_after, der, status, issued_at) \
         SELECT serial, ca_id, device_id, template_id, subject, sans, key_type, not_before, \
           not_after, der, 'valid', issued_at \
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::text[], \
           $7::text[], $8::int8[], $9::int8[], $10::bytea[], $11::int8[]) \
           AS t(serial, ca_id, device_id, template_id, subject, sans, key_type, not_before, \
             not_after, der, issued_at)",
    )
    .bind(
        accepted
            .iter()
            .map(|a| a.cert.serial.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(col(|a| a.ca_id))
    .bind(accepted.iter().map(|a| a.device_id).collect::<Vec<_>>())
    .bind(accepted.iter().map(|a| a.template_id).collect::<Vec<_>>())
    .bind(
        accepted
            .iter()
            .map(|a| a.cert.subject.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&sans)
    .bind(
        accepted
            .iter()
            .map(|a| a.cert.key_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(col(|a| a.cert.not_before))
    .bind(col(|a| a.cert.not_after))
    .bind(
        accepted
            .iter()
            .map(|a| a.cert.der.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(col(|a| a.ctx.now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Pending devices become enrolled, `updated_at` from the first certificate of each.
async fn mark_devices_enrolled(tx: &mut PgConnection, accepted: &[Accepted<'_>]) -> Result<()> {
    let mut seen = HashSet::new();
    let (ids, times): (Vec<i64>, Vec<i64>) = accepted
        .iter()
        .filter_map(|a| {
            a.device_id
                .filter(|id| seen.insert(*id))
                .map(|id| (id, a.ctx.now))
        })
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE devices SET state = 'enrolled', updated_at = t.now \
         FROM UNNEST($1::int8[], $2::int8[]) AS t(id, now) \
         WHERE devices.id = t.id AND devices.state = 'pending'",
    )
    .bind(&ids)
    .bind(&times)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Clear the pending renewals of the devices that have some (rare: one statement each); for
/// each accepted call, whether it cleared any.
async fn clear_renewals(tx: &mut PgConnection, accepted: &[Accepted<'_>]) -> Result<Vec<bool>> {
    let mut cleared = Vec::with_capacity(accepted.len());
    for a in accepted {
        let rows = match (a.clears_renewals, a.device_id) {
            (true, Some(id)) => sqlx::query(
                "UPDATE renewals SET cleared_at = $1 \
                 WHERE device_id = $2 AND cleared_at IS NULL",
            )
            .bind(a.ctx.now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            _ => 0,
        };
        cleared.push(rows > 0);
    }
    Ok(cleared)
}

/// The audit events and change rows of every accepted call, in call order: what
/// `write::record` appends for each, `renewal.clear` before `cert.issue` as one by one.
async fn record_all(
    tx: &mut PgConnection,
    accepted: &[Accepted<'_>],
    cleared: &[bool],
) -> Result<()> {
    let mut events = Events::with_capacity(accepted.len());
    for (a, &cleared) in accepted.iter().zip(cleared) {
        if let (true, Some(uid)) = (cleared, a.cert.device.as_deref()) {
            let detail = format!("renewed with certificate {}", a.cert.serial);
            events.push(a.ctx, "renewal.clear", "device", uid, detail);
        }
        events.push(
            a.ctx,
            "cert.issue",
            "certificate",
            &a.cert.serial,
            a.cert.subject.clone(),
        );
    }
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, target, detail) \
         SELECT at, actor, action, target, detail \
         FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[]) \
           WITH ORDINALITY AS t(at, actor, action, target, detail, ord) \
         ORDER BY ord",
    )
    .bind(&events.at)
    .bind(&events.actor)
    .bind(&events.action)
    .bind(&events.target)
    .bind(&events.detail)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO changes (at, entity, key) \
         SELECT at, entity, key \
         FROM UNNEST($1::int8[], $2::text[], $3::text[]) WITH ORDINALITY \
           AS t(at, entity, key, ord) \
         ORDER BY ord",
    )
    .bind(&events.at)
    .bind(&events.entity)
    .bind(&events.key)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Audit events and change rows as columns, one entry per change.
struct Events<'a> {
    at: Vec<i64>,
    actor: Vec<&'a str>,
    action: Vec<&'static str>,
    target: Vec<String>,
    detail: Vec<String>,
    entity: Vec<&'static str>,
    key: Vec<&'a str>,
}

impl<'a> Events<'a> {
    fn with_capacity(n: usize) -> Self {
        Events {
            at: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            detail: Vec::with_capacity(n),
            entity: Vec::with_capacity(n),
            key: Vec::with_capacity(n),
        }
    }

    fn push(
        &mut self,
        ctx: &'a Ctx,
        action: &'static str,
        entity: &'static str,
        key: &'a str,
        detail: String,
    ) {
        self.at.push(ctx.now);
        self.actor.push(&ctx.actor);
        self.action.push(action);
        self.target.push(format!("{entity}:{key}"));
        self.detail.push(detail);
        self.entity.push(entity);
        self.key.push(key);
    }
}
