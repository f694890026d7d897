//! CRLs, revocation data for the CRL and OCSP builders, SCEP challenges (device-bound and
//! unbound), SCEP enrollments as one transaction, and the audit trail's plain reads/writes.

use sqlx::{PgConnection, Row};

use crate::error::{Result, StoreError};
use crate::model::*;

use super::core::insert_certificate;
use super::devices::device_id;
use super::write::{id_of, record, unique_violation};
use super::PgStore;

async fn ca_id(conn: &mut PgConnection, name: &str) -> Result<i64> {
    id_of(conn, "SELECT id FROM cas WHERE name = $1", name, "CA").await
}

/// Spend an unused, unexpired one-time SCEP challenge (its hash): (challenge id, device uid),
/// audited as `scep.challenge.use`; `None` when there is no such challenge.
async fn spend_challenge(
    tx: &mut PgConnection,
    ctx: &Ctx,
    hash_hex: &str,
) -> Result<Option<(i64, String)>> {
    let spent = sqlx::query(
        "UPDATE scep_challenges SET used_at = $1 \
         WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 \
         RETURNING id, (SELECT uid FROM devices WHERE devices.id = scep_challenges.device_id)",
    )
    .bind(ctx.now)
    .bind(hash_hex)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = spent else { return Ok(None) };
    let (id, uid): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    let detail = format!("challenge {id}");
    record(tx, ctx, "scep.challenge.use", "device", &uid, &detail).await?;
    Ok(Some((id, uid)))
}

/// Spend an unbound challenge for CA `ca`, naming the device it enrolled.
async fn spend_unbound(
    tx: &mut PgConnection,
    ctx: &Ctx,
    hash_hex: &str,
    ca: &str,
    uid: &str,
) -> Result<Option<i64>> {
    let device = device_id(tx, uid).await?;
    let spent: Option<i64> = sqlx::query_scalar(
        "UPDATE unbound_challenges SET used_at = $1, device_id = $2 \
         WHERE hash = $3 AND used_at IS NULL AND expires_at > $1 \
         AND (ca_id IS NULL OR ca_id = (SELECT id FROM cas WHERE name = $4)) RETURNING id",
    )
    .bind(ctx.now)
    .bind(device)
    .bind(hash_hex)
    .bind(ca)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = spent {
        let detail = format!("unbound challenge {id}");
        record(tx, ctx, "scep.challenge.use", "device", uid, &detail).await?;
    }
    Ok(spent)
}

pub(crate) fn audit_from_row(r: &sqlx::postgres::PgRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
    })
}

impl PgStore {
    pub async fn insert_crl(&self, ctx: &Ctx, crl: NewCrl) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id = ca_id(&mut tx, &crl.ca).await?;
        sqlx::query(
            "INSERT INTO crls (ca_id, number, scope, base_number, this_update, next_update, \
             entries, der) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(crl.number)
        .bind(crl.scope.as_str())
        .bind(crl.base_number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(crl.entries)
        .bind(&crl.der)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "CRL number", &crl.number.to_string()))?;
        // Older CRLs are never served again; keep the last few of each scope for the record.
        sqlx::query(
            "DELETE FROM crls WHERE ca_id = $1 AND scope = $2 AND number < \
             (SELECT MIN(number) FROM (SELECT number FROM crls WHERE ca_id = $1 AND scope = $2 \
              ORDER BY number DESC LIMIT 5) AS kept)",
        )
        .bind(id)
        .bind(crl.scope.as_str())
        .execute(&mut *tx)
        .await?;
        let detail = format!("number {} with {} entries", crl.number, crl.entries);
        let action = format!("crl.{}", crl.scope.as_str());
        record(&mut tx, ctx, &action, "crl", &crl.ca, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn latest_crl(&self, ca: &str, scope: CrlScope) -> Result<Option<Crl>> {
        let row = sqlx::query(
            "SELECT k.*, c.name AS ca_name FROM crls k JOIN cas c ON c.id = k.ca_id \
             WHERE c.name = $1 AND k.scope = $2 ORDER BY k.number DESC LIMIT 1",
        )
        .bind(ca)
        .bind(scope.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Crl {
            ca: r.try_get("ca_name")?,
            number: r.try_get("number")?,
            scope,
            base_number: r.try_get("base_number")?,
            this_update: r.try_get("this_update")?,
            next_update: r.try_get("next_update")?,
            entries: r.try_get("entries")?,
            der: r.try_get("der")?,
        }))
    }

    pub async fn latest_crl_meta(&self, ca: &str, scope: CrlScope) -> Result<Option<CrlMeta>> {
        let row = sqlx::query(
            "SELECT k.number, k.base_number, k.this_update, k.next_update, k.entries FROM crls k \
             JOIN cas c ON c.id = k.ca_id WHERE c.name = $1 AND k.scope = $2 \
             ORDER BY k.number DESC LIMIT 1",
        )
        .bind(ca)
        .bind(scope.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(CrlMeta {
            number: r.try_get(0)?,
            base_number: r.try_get(1)?,
            this_update: r.try_get(2)?,
            next_update: r.try_get(3)?,
            entries: r.try_get(4)?,
        }))
    }

    pub async fn revoked_certificates(
        &self,
        ca: &str,
        since: Option<i64>,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>> {
        let mut conn = self.pool.acquire().await?;
        let id = ca_id(&mut conn, ca).await?;
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE ca_id = $1 AND status = 'revoked' AND revoked_at >= $2 AND not_after >= $3",
        )
        .bind(id)
        .bind(since.unwrap_or(i64::MIN))
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedCertificate {
                    serial: r.try_get(0)?,
                    revoked_at: r.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
                    reason: r
                        .try_get::<Option<String>, _>(2)?
                        .unwrap_or_else(|| "unspecified".into()),
                })
            })
            .collect()
    }

    pub async fn certificate_states(&self, ca: &str) -> Result<Vec<CertState>> {
        let mut conn = self.pool.acquire().await?;
        let id = ca_id(&mut conn, ca).await?;
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates \
             WHERE ca_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CertState {
                    serial: r.try_get(0)?,
                    revoked_at: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    not_after: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub async fn consume_scep_challenge(
        &self,
        ctx: &Ctx,
        hash_hex: &str,
    ) -> Result<Option<String>> {
        let mut tx = self.write_tx().await?;
        let spent = spend_challenge(&mut tx, ctx, hash_hex).await?;
        tx.commit().await?;
        Ok(spent.map(|(_, uid)| uid))
    }

    pub async fn peek_scep_challenge(&self, hash_hex: &str, now: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT d.uid FROM scep_challenges s JOIN devices d ON d.id = s.device_id \
             WHERE s.hash = $1 AND s.used_at IS NULL AND s.expires_at > $2",
        )
        .bind(hash_hex)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn record_scep_enrollment(&self, ctx: &Ctx, e: ScepEnrollment) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        match &e.challenge {
            Some(SpentChallenge::Device(hash)) => {
                let Some((id, uid)) = spend_challenge(&mut tx, ctx, hash).await? else {
                    return Ok(false);
                };
                if Some(uid.as_str()) != e.certificate.device.as_deref() {
                    return Err(StoreError::Conflict(format!(
                        "challenge {id} belongs to device `{uid}`, not to the certificate's"
                    )));
                }
            }
            Some(SpentChallenge::Unbound(hash)) => {
                let Some(uid) = e.certificate.device.as_deref() else {
                    return Err(StoreError::Conflict(
                        "a certificate enrolled with a challenge must belong to a device".into(),
                    ));
                };
                if spend_unbound(&mut tx, ctx, hash, &e.ca, uid)
                    .await?
                    .is_none()
                {
                    return Ok(false);
                }
            }
            None => {}
        }
        insert_certificate(&mut tx, ctx, &e.certificate).await?;
        if let Some(serial) = &e.supersedes {
            let revoked = sqlx::query(
                "UPDATE certificates SET status = 'revoked', revoked_at = $1, \
                 revocation_reason = 'superseded' WHERE serial = $2 AND status = 'valid'",
            )
            .bind(ctx.now)
            .bind(serial)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked > 0 {
                record(
                    &mut tx,
                    ctx,
                    "cert.revoke",
                    "certificate",
                    serial,
                    "superseded",
                )
                .await?;
            }
        }
        let id = ca_id(&mut tx, &e.ca).await?;
        sqlx::query(
            "INSERT INTO scep_transactions (ca_id, transaction_id, key_sha256, serial, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ca_id, transaction_id) DO UPDATE SET \
             key_sha256 = excluded.key_sha256, serial = excluded.serial, \
             created_at = excluded.created_at",
        )
        .bind(id)
        .bind(&e.transaction_id)
        .bind(&e.key_sha256)
        .bind(&e.certificate.serial)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            ctx,
            "scep.enroll",
            "certificate",
            &e.certificate.serial,
            &e.detail,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn insert_unbound_challenge(
        &self,
        ctx: &Ctx,
        c: NewUnboundChallenge,
    ) -> Result<Option<i64>> {
        let mut tx = self.write_tx().await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unbound_challenges WHERE used_at IS NULL AND expires_at > $1",
        )
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await?;
        if live >= c.max_live {
            return Ok(None);
        }
        let ca = match c.ca.as_deref() {
            Some(name) => Some(ca_id(&mut tx, name).await?),
            None => None,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO unbound_challenges (hash, ca_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&c.hash_hex)
        .bind(ca)
        .bind(ctx.now)
        .bind(c.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        let scope = match &c.ca {
            Some(ca) => format!("CA {ca}"),
            None => "any CA".to_string(),
        };
        let detail = format!(
            "unbound challenge {id} for {scope}, one-time, until {}",
            c.expires_at
        );
        record(
            &mut tx,
            ctx,
            "scep.challenge.create",
            "challenge",
            "unbound",
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn peek_unbound_challenge(&self, hash_hex: &str, ca: &str, now: i64) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM unbound_challenges u \
             WHERE u.hash = $1 AND u.used_at IS NULL AND u.expires_at > $2 \
             AND (u.ca_id IS NULL OR u.ca_id = (SELECT id FROM cas WHERE name = $3))",
        )
        .bind(hash_hex)
        .bind(now)
        .bind(ca)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn get_scep_transaction(
        &self,
        ca: &str,
        transaction_id: &str,
    ) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT t.key_sha256, t.serial FROM scep_transactions t JOIN cas c ON c.id = t.ca_id \
             WHERE c.name = $1 AND t.transaction_id = $2",
        )
        .bind(ca)
        .bind(transaction_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    pub async fn record_event(
        &self,
        ctx: &Ctx,
        action: &str,
        entity: &str,
        key: &str,
        detail: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        record(&mut tx, ctx, action, entity, key, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_audit(&self, since: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE at >= $1 ORDER BY id")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
