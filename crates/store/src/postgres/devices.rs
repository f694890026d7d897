//! Templates, devices (enrollment, re-enrollment, retirement) and certificates (listing,
//! revocation): the PKI records around issuance, with SQLite's ordering and errors.

use sqlx::{PgConnection, Row};

use crate::error::{Result, StoreError};
use crate::model::*;

use super::directory::user_id;
use super::rows::{
    cert_from_row, device_from_row, template_from_row, to_json, CERT_SELECT, DEVICE_SELECT,
    TEMPLATE_SELECT,
};
use super::write::{id_of, record, revoke_where, unique_violation, NOCASE_1};
use super::PgStore;

pub(crate) async fn get_template(conn: &mut PgConnection, name: &str) -> Result<Option<Template>> {
    let row = sqlx::query(&format!("{TEMPLATE_SELECT} WHERE t.name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(template_from_row).transpose()
}

pub(crate) async fn get_device(conn: &mut PgConnection, uid: &str) -> Result<Option<Device>> {
    let row = sqlx::query(&format!("{DEVICE_SELECT} WHERE d.uid = $1"))
        .bind(uid)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(device_from_row).transpose()
}

pub(crate) async fn get_certificate(
    conn: &mut PgConnection,
    serial: &str,
    now: i64,
) -> Result<Option<Certificate>> {
    let row = sqlx::query(&format!("{CERT_SELECT} WHERE k.serial = $1"))
        .bind(serial)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(|r| cert_from_row(r, now)).transpose()
}

pub(crate) async fn device_id(conn: &mut PgConnection, uid: &str) -> Result<i64> {
    id_of(conn, "SELECT id FROM devices WHERE uid = $1", uid, "device").await
}

pub(crate) async fn template_id(conn: &mut PgConnection, name: &str) -> Result<i64> {
    id_of(
        conn,
        "SELECT id FROM templates WHERE name = $1",
        name,
        "template",
    )
    .await
}

/// A device's one-time SCEP challenge (hash) until `expires_at`.
pub(crate) async fn insert_challenge(
    tx: &mut PgConnection,
    ctx: &Ctx,
    device_id: i64,
    hash_hex: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO scep_challenges (device_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(device_id)
    .bind(hash_hex)
    .bind(ctx.now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A device's challenge and profile-download token together (enrollment, renewal).
pub(crate) async fn insert_secrets(
    tx: &mut PgConnection,
    ctx: &Ctx,
    device_id: i64,
    secrets: &NewChallenge,
) -> Result<()> {
    insert_challenge(tx, ctx, device_id, &secrets.hash_hex, secrets.expires_at).await?;
    sqlx::query(
        "INSERT INTO profile_tokens (device_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(device_id)
    .bind(&secrets.profile_token_hash_hex)
    .bind(ctx.now)
    .bind(secrets.expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Expire a device's unused challenges and profile tokens now.
async fn expire_secrets(tx: &mut PgConnection, ctx: &Ctx, id: i64) -> Result<()> {
    for table in ["scep_challenges", "profile_tokens"] {
        sqlx::query(&format!(
            "UPDATE {table} SET expires_at = $1 WHERE device_id = $2 AND used_at IS NULL \
             AND expires_at > $1"
        ))
        .bind(ctx.now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl PgStore {
    pub async fn insert_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        let mut tx = self.write_tx().await?;
        let ca_id = id_of(&mut tx, "SELECT id FROM cas WHERE name = $1", &t.ca, "CA").await?;
        if t.is_default {
            sqlx::query("UPDATE templates SET is_default = FALSE")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO templates (name, ca_id, subject, sans, key_type, validity_days, \
             renew_before_days, is_default, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.name)
        .bind(ca_id)
        .bind(&t.subject)
        .bind(to_json(&t.sans))
        .bind(&t.key_type)
        .bind(i64::from(t.validity_days))
        .bind(i64::from(t.renew_before_days))
        .bind(t.is_default)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "template", &t.name))?;
        record(
            &mut tx,
            ctx,
            "template.create",
            "template",
            &t.name,
            &t.subject,
        )
        .await?;
        let stored = get_template(&mut tx, &t.name)
            .await?
            .ok_or_else(|| StoreError::not_found("template", t.name.clone()))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn list_templates(&self) -> Result<Vec<Template>> {
        let rows = sqlx::query(&format!("{TEMPLATE_SELECT} ORDER BY t.name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(template_from_row).collect()
    }

    pub async fn get_template(&self, name: &str) -> Result<Option<Template>> {
        let mut conn = self.pool.acquire().await?;
        get_template(&mut conn, name).await
    }

    pub async fn update_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE templates SET subject = $1, sans = $2, key_type = $3, validity_days = $4, \
             renew_before_days = $5 WHERE name = $6",
        )
        .bind(&t.subject)
        .bind(to_json(&t.sans))
        .bind(&t.key_type)
        .bind(i64::from(t.validity_days))
        .bind(i64::from(t.renew_before_days))
        .bind(&t.name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::not_found("template", t.name.clone()));
        }
        let detail = format!(
            "{} [{}] {} {} days, renew {} days before",
            t.subject,
            t.sans.join(", "),
            t.key_type,
            t.validity_days,
            t.renew_before_days
        );
        record(&mut tx, ctx, "template.set", "template", &t.name, &detail).await?;
        let stored = get_template(&mut tx, &t.name)
            .await?
            .ok_or_else(|| StoreError::not_found("template", t.name.clone()))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn set_default_template(&self, ctx: &Ctx, name: &str) -> Result<Template> {
        let mut tx = self.write_tx().await?;
        template_id(&mut tx, name).await?;
        sqlx::query("UPDATE templates SET is_default = (name = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, ctx, "template.default", "template", name, "").await?;
        let stored = get_template(&mut tx, name)
            .await?
            .ok_or_else(|| StoreError::not_found("template", name))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn remove_template(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id = template_id(&mut tx, name).await?;
        let mut counts = [0i64; 3];
        for (count, table) in counts
            .iter_mut()
            .zip(["devices", "certificates", "profiles"])
        {
            *count = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE template_id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        }
        let [devices, certificates, profiles] = counts;
        if devices + certificates + profiles > 0 {
            return Err(StoreError::Conflict(format!(
                "template `{name}` is in use ({devices} device(s), {certificates} certificate(s), {profiles} profile(s)): issued certificates stay attributable to it; change it with `easgate template set` instead"
            )));
        }
        sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, ctx, "template.remove", "template", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn enroll_device(
        &self,
        ctx: &Ctx,
        device: NewDevice,
        challenge: NewChallenge,
    ) -> Result<Device> {
        let mut tx = self.write_tx().await?;
        let owner = user_id(&mut tx, &device.user).await?;
        let template = match device.template.as_deref() {
            Some(name) => Some(template_id(&mut tx, name).await?),
            None => None,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (uid, user_id, platform, template_id, state, device_serial, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) RETURNING id",
        )
        .bind(&device.uid)
        .bind(owner)
        .bind(&device.platform)
        .bind(template)
        .bind(&device.device_serial)
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "device", &device.uid))?;
        insert_secrets(&mut tx, ctx, id, &challenge).await?;
        let detail = format!("user {} platform {}", device.user, device.platform);
        record(
            &mut tx,
            ctx,
            "device.enroll",
            "device",
            &device.uid,
            &detail,
        )
        .await?;
        let stored = get_device(&mut tx, &device.uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", device.uid.clone()))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn reenroll_device(
        &self,
        ctx: &Ctx,
        uid: &str,
        secrets: NewChallenge,
    ) -> Result<Device> {
        let mut tx = self.write_tx().await?;
        let device = get_device(&mut tx, uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", uid))?;
        if matches!(device.state.as_str(), "retired" | "wiped") {
            return Err(StoreError::Conflict(format!(
                "device `{uid}` is {}: enroll a new device instead",
                device.state
            )));
        }
        let id = device_id(&mut tx, uid).await?;
        expire_secrets(&mut tx, ctx, id).await?;
        insert_secrets(&mut tx, ctx, id, &secrets).await?;
        sqlx::query("UPDATE devices SET updated_at = $1 WHERE id = $2")
            .bind(ctx.now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            ctx,
            "device.reenroll",
            "device",
            uid,
            "new challenge and profile link; earlier unused ones expired",
        )
        .await?;
        let stored = get_device(&mut tx, uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", uid))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>> {
        let rows = sqlx::query(&format!(
            "{DEVICE_SELECT} WHERE ($1::text IS NULL OR lower(u.upn) = {NOCASE_1}) \
             ORDER BY d.created_at, d.uid"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    pub async fn get_device(&self, uid: &str) -> Result<Option<Device>> {
        let mut conn = self.pool.acquire().await?;
        get_device(&mut conn, uid).await
    }

    pub async fn get_device_with_owner(&self, uid: &str) -> Result<Option<(Device, User)>> {
        let row = sqlx::query(
            "SELECT d.*, u.upn AS upn, t.name AS template_name, u.email AS u_email, \
             u.display_name AS u_display_name, u.disabled AS u_disabled, \
             u.created_at AS u_created_at, \
             ARRAY(SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
                   WHERE ug.user_id = u.id) AS u_groups \
             FROM devices d JOIN users u ON u.id = d.user_id \
             LEFT JOIN templates t ON t.id = d.template_id WHERE d.uid = $1",
        )
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let mut groups: Vec<String> = r.try_get("u_groups")?;
        // As the SQLite backend: byte order here (not the NOCASE order `get_user` gives).
        groups.sort();
        let user = User {
            upn: r.try_get("upn")?,
            email: r.try_get("u_email")?,
            display_name: r.try_get("u_display_name")?,
            disabled: r.try_get("u_disabled")?,
            groups,
            created_at: r.try_get("u_created_at")?,
        };
        Ok(Some((device_from_row(&r)?, user)))
    }

    pub async fn set_device_state(
        &self,
        ctx: &Ctx,
        uid: &str,
        state: &str,
        revoke: Revocation,
    ) -> Result<(Device, Vec<String>)> {
        let mut tx = self.write_tx().await?;
        let id = device_id(&mut tx, uid).await?;
        sqlx::query("UPDATE devices SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(ctx.now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Unused challenges and profile tokens of a retired device must never enroll it again.
        expire_secrets(&mut tx, ctx, id).await?;
        let revoked = revoke_where(&mut tx, "device_id = $1", id, &revoke).await?;
        let detail = format!("revoked {} certificate(s)", revoked.len());
        record(
            &mut tx,
            ctx,
            &format!("device.{state}"),
            "device",
            uid,
            &detail,
        )
        .await?;
        for serial in &revoked {
            record(
                &mut tx,
                ctx,
                "cert.revoke",
                "certificate",
                serial,
                &revoke.reason,
            )
            .await?;
        }
        let device = get_device(&mut tx, uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", uid))?;
        tx.commit().await?;
        Ok((device, revoked))
    }

    pub async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<Certificate>> {
        let status_clause = match filter.status {
            None => "TRUE",
            Some(CertStatus::Valid) => "k.status = 'valid' AND k.not_after >= $2",
            Some(CertStatus::Expired) => "k.status = 'valid' AND k.not_after < $2",
            Some(CertStatus::Revoked) => "k.status = 'revoked'",
        };
        let rows = sqlx::query(&format!(
            "{CERT_SELECT} WHERE ($1::text IS NULL OR d.uid = $1) AND {status_clause} \
             AND $2::bigint = $2 ORDER BY k.issued_at, k.serial"
        ))
        .bind(filter.device.as_deref())
        .bind(filter.now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| cert_from_row(r, filter.now)).collect()
    }

    pub async fn get_certificate(&self, serial: &str, now: i64) -> Result<Option<Certificate>> {
        let mut conn = self.pool.acquire().await?;
        get_certificate(&mut conn, serial, now).await
    }

    pub async fn revoke_certificate(
        &self,
        ctx: &Ctx,
        serial: &str,
        revoke: Revocation,
    ) -> Result<Certificate> {
        let mut tx = self.write_tx().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await?;
        match status.as_deref() {
            None => return Err(StoreError::not_found("certificate", serial)),
            Some("revoked") => {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial} is already revoked"
                )))
            }
            Some(_) => {}
        }
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2 \
             WHERE serial = $3",
        )
        .bind(revoke.at)
        .bind(&revoke.reason)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            ctx,
            "cert.revoke",
            "certificate",
            serial,
            &revoke.reason,
        )
        .await?;
        let cert = get_certificate(&mut tx, serial, ctx.now)
            .await?
            .ok_or_else(|| StoreError::not_found("certificate", serial))?;
        tx.commit().await?;
        Ok(cert)
    }
}
