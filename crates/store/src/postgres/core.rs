//! The change feed, settings, CAs, certificate issuance and CRL numbers: the calls whose
//! guarantees across processes matter most (serials never reused, CRL numbers strictly
//! increasing), each with the SQLite backend's audit events and errors.

use sqlx::{PgConnection, Row};

use crate::error::Result;
use crate::model::*;

use super::rows::to_json;
use super::write::{id_of, record, unique_violation};
use super::PgStore;

impl PgStore {
    /// The latest change-feed revision (0 on an empty store).
    pub async fn revision(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM changes")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Changes with a revision above `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT revision, at, entity, key FROM changes WHERE revision > $1 \
             ORDER BY revision LIMIT $2",
        )
        .bind(after)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    revision: r.try_get("revision")?,
                    at: r.try_get("at")?,
                    entity: r.try_get("entity")?,
                    key: r.try_get("key")?,
                })
            })
            .collect()
    }

    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_setting(&self, ctx: &Ctx, key: &str, value: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        record(&mut tx, ctx, "setting.set", "setting", key, value).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_ca(&self, ctx: &Ctx, ca: NewCa) -> Result<Ca> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO cas (name, key_type, subject, cert_der, key_sealed, not_before, \
             not_after, created_at, scep_no_des) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&ca.name)
        .bind(&ca.key_type)
        .bind(&ca.subject)
        .bind(&ca.cert_der)
        .bind(&ca.key_sealed)
        .bind(ca.not_before)
        .bind(ca.not_after)
        .bind(ctx.now)
        .bind(ca.scep_no_des)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "CA", &ca.name))?;
        let detail = format!("{} {}", ca.key_type, ca.subject);
        record(&mut tx, ctx, "ca.create", "ca", &ca.name, &detail).await?;
        tx.commit().await?;
        Ok(Ca {
            name: ca.name,
            key_type: ca.key_type,
            subject: ca.subject,
            cert_der: ca.cert_der,
            key_sealed: ca.key_sealed,
            not_before: ca.not_before,
            not_after: ca.not_after,
            created_at: ctx.now,
            scep_no_des: ca.scep_no_des,
            scep_ra_only: false,
        })
    }

    /// Record an issued certificate (and mark its device enrolled, clearing its pending
    /// renewals). A serial already used is `AlreadyExists`: the primary key enforces it, in
    /// every process. Concurrent calls share one transaction (group commit, see `batch`).
    pub async fn insert_certificate(&self, ctx: &Ctx, cert: NewCertificate) -> Result<()> {
        let cert = match &self.certificates {
            Some(writer) => match writer.insert(ctx, cert).await {
                Ok(result) => return result,
                Err(cert) => cert,
            },
            None => cert,
        };
        super::batch::record_alone(&self.pool, ctx, &cert).await
    }

    /// Take the next CRL number of a CA (one sequence for its full and delta CRLs; starts at
    /// 1). The counter row's `UPDATE … RETURNING` (as an upsert) is atomic in the database, so
    /// numbers are strictly increasing across processes.
    pub async fn next_crl_number(&self, ctx: &Ctx, ca: &str) -> Result<i64> {
        let _ = ctx;
        let mut tx = self.write_tx().await?;
        let ca_id = id_of(&mut tx, "SELECT id FROM cas WHERE name = $1", ca, "CA").await?;
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO crl_numbers (ca_id, last) VALUES ($1, 1) \
             ON CONFLICT (ca_id) DO UPDATE SET last = crl_numbers.last + 1 RETURNING last",
        )
        .bind(ca_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(number)
    }
}

/// [`PgStore::insert_certificate`] inside a caller's transaction.
pub(crate) async fn insert_certificate(
    tx: &mut PgConnection,
    ctx: &Ctx,
    cert: &NewCertificate,
) -> Result<()> {
    let ca_id = id_of(
        &mut *tx,
        "SELECT id FROM cas WHERE name = $1",
        &cert.ca,
        "CA",
    )
    .await?;
    let device_id = match cert.device.as_deref() {
        Some(uid) => Some(id_of(tx, "SELECT id FROM devices WHERE uid = $1", uid, "device").await?),
        None => None,
    };
    let template_id = match cert.template.as_deref() {
        Some(name) => Some(
            id_of(
                tx,
                "SELECT id FROM templates WHERE name = $1",
                name,
                "template",
            )
            .await?,
        ),
        None => None,
    };
    sqlx::query(
        "INSERT INTO certificates (serial, ca_id, device_id, template_id, subject, sans, \
         key_type, not_before, not_after, der, status, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'valid', $11)",
    )
    .bind(&cert.serial)
    .bind(ca_id)
    .bind(device_id)
    .bind(template_id)
    .bind(&cert.subject)
    .bind(to_json(&cert.sans))
    .bind(&cert.key_type)
    .bind(cert.not_before)
    .bind(cert.not_after)
    .bind(&cert.der)
    .bind(ctx.now)
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, "certificate serial", &cert.serial))?;
    if let (Some(id), Some(uid)) = (device_id, cert.device.as_deref()) {
        sqlx::query(
            "UPDATE devices SET state = 'enrolled', updated_at = $1 \
             WHERE id = $2 AND state = 'pending'",
        )
        .bind(ctx.now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let cleared = sqlx::query(
            "UPDATE renewals SET cleared_at = $1 WHERE device_id = $2 AND cleared_at IS NULL",
        )
        .bind(ctx.now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cleared > 0 {
            let detail = format!("renewed with certificate {}", cert.serial);
            record(tx, ctx, "renewal.clear", "device", uid, &detail).await?;
        }
    }
    record(
        &mut *tx,
        ctx,
        "cert.issue",
        "certificate",
        &cert.serial,
        &cert.subject,
    )
    .await
}
