//! Device profiles, easgate's own service keys, extra SCEP challenges, profile-download tokens
//! and certificate renewals (the SQLite backend's `sqlite_profiles.rs`).

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::model::*;

use super::devices::{device_id, insert_challenge, insert_secrets, template_id};
use super::directory::group_id;
use super::rows::{cert_from_row, profile_from_row, to_json, PROFILE_SELECT};
use super::write::{id_of, record, unique_violation};
use super::PgStore;

impl PgStore {
    pub async fn insert_profile(&self, ctx: &Ctx, p: NewProfile) -> Result<Profile> {
        let mut tx = self.write_tx().await?;
        let template = template_id(&mut tx, &p.template).await?;
        for group in &p.groups {
            group_id(&mut tx, group).await?;
        }
        sqlx::query(
            "INSERT INTO profiles (name, platform, template_id, eas_host, account_name, email, \
             username, domain, delivery, groups, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&p.name)
        .bind(&p.platform)
        .bind(template)
        .bind(&p.eas_host)
        .bind(&p.account_name)
        .bind(&p.email)
        .bind(&p.username)
        .bind(&p.domain)
        .bind(&p.delivery)
        .bind(to_json(&p.groups))
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "profile", &p.name))?;
        let detail = format!("{} via {} for {}", p.platform, p.delivery, p.eas_host);
        record(&mut tx, ctx, "profile.create", "profile", &p.name, &detail).await?;
        let row = sqlx::query(&format!("{PROFILE_SELECT} WHERE p.name = $1"))
            .bind(&p.name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("profile", p.name.clone()))?;
        let stored = profile_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn list_profiles(&self) -> Result<Vec<Profile>> {
        let rows = sqlx::query(&format!("{PROFILE_SELECT} ORDER BY p.name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(profile_from_row).collect()
    }

    pub async fn get_profile(&self, name: &str) -> Result<Option<Profile>> {
        let row = sqlx::query(&format!("{PROFILE_SELECT} WHERE p.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    pub async fn remove_profile(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM profiles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::not_found("profile", name));
        }
        record(&mut tx, ctx, "profile.remove", "profile", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_service_key(&self, ca: &str, role: &str) -> Result<Option<ServiceKey>> {
        let row = sqlx::query(
            "SELECT k.cert_der, k.key_sealed FROM service_keys k JOIN cas c ON c.id = k.ca_id \
             WHERE c.name = $1 AND k.role = $2",
        )
        .bind(ca)
        .bind(role)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ServiceKey {
            ca: ca.to_string(),
            role: role.to_string(),
            cert_der: r.try_get(0)?,
            key_sealed: r.try_get(1)?,
        }))
    }

    pub async fn insert_service_key(&self, ctx: &Ctx, key: ServiceKey) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let ca = id_of(&mut tx, "SELECT id FROM cas WHERE name = $1", &key.ca, "CA").await?;
        sqlx::query(
            "INSERT INTO service_keys (ca_id, role, cert_der, key_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ca)
        .bind(&key.role)
        .bind(&key.cert_der)
        .bind(&key.key_sealed)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_violation(e, "service key of CA", &format!("{} {}", key.ca, key.role))
        })?;
        record(&mut tx, ctx, "service-key.create", "ca", &key.ca, &key.role).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_challenge(
        &self,
        ctx: &Ctx,
        uid: &str,
        hash_hex: &str,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id = device_id(&mut tx, uid).await?;
        insert_challenge(&mut tx, ctx, id, hash_hex, expires_at).await?;
        record(&mut tx, ctx, "scep.challenge.create", "device", uid, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn profile_token(&self, hash_hex: &str, now: i64) -> Result<Option<ProfileToken>> {
        let row = sqlx::query(
            "SELECT d.uid, p.used_at, p.expires_at FROM profile_tokens p \
             JOIN devices d ON d.id = p.device_id WHERE p.hash = $1",
        )
        .bind(hash_hex)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let used_at: Option<i64> = r.try_get(1)?;
        let expires_at: i64 = r.try_get(2)?;
        let state = match used_at {
            Some(at) => TokenState::Used(at),
            None if expires_at <= now => TokenState::Expired(expires_at),
            None => TokenState::Usable,
        };
        Ok(Some(ProfileToken {
            device: r.try_get(0)?,
            state,
        }))
    }

    pub async fn consume_profile_token(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>> {
        let mut tx = self.write_tx().await?;
        let used: Option<String> = sqlx::query_scalar(
            "UPDATE profile_tokens SET used_at = $1 \
             WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING (SELECT uid FROM devices WHERE devices.id = profile_tokens.device_id)",
        )
        .bind(ctx.now)
        .bind(hash_hex)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(uid) = &used {
            record(
                &mut tx,
                ctx,
                "profile.download",
                "device",
                uid,
                "one-time profile token used",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(used)
    }

    pub async fn start_renewal(&self, ctx: &Ctx, renewal: NewRenewal) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let id = device_id(&mut tx, &renewal.device).await?;
        let inserted = sqlx::query(
            "INSERT INTO renewals (device_id, serial, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (serial) DO NOTHING",
        )
        .bind(id)
        .bind(&renewal.serial)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        insert_secrets(&mut tx, ctx, id, &renewal.secrets).await?;
        let detail = format!(
            "certificate {} is inside its renewal window",
            renewal.serial
        );
        record(
            &mut tx,
            ctx,
            "renewal.start",
            "device",
            &renewal.device,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn expiring_certificates(&self, now: i64) -> Result<Vec<ExpiringCertificate>> {
        let rows = sqlx::query(
            "SELECT k.*, c.name AS ca_name, d.uid AS device_uid, t.name AS template_name, \
                 k.not_after - t.renew_before_days * 86400 AS renew_from, \
                 EXISTS (SELECT 1 FROM renewals r WHERE r.serial = k.serial) AS renewal_started \
             FROM certificates k JOIN cas c ON c.id = k.ca_id \
             JOIN devices d ON d.id = k.device_id JOIN templates t ON t.id = k.template_id \
             WHERE k.status = 'valid' AND k.not_after >= $1 \
             AND k.not_after - t.renew_before_days * 86400 <= $1 \
             AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.device_id = k.device_id \
                 AND n.status = 'valid' AND n.not_after >= $1 AND n.not_before > k.not_before) \
             ORDER BY k.not_after, k.serial",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExpiringCertificate {
                    certificate: cert_from_row(r, now)?,
                    renew_from: r.try_get("renew_from")?,
                    renewal_started: r.try_get("renewal_started")?,
                })
            })
            .collect()
    }

    pub async fn list_renewals(&self) -> Result<Vec<Renewal>> {
        let rows = sqlx::query(
            "SELECT d.uid, r.serial, r.created_at, r.cleared_at FROM renewals r \
             JOIN devices d ON d.id = r.device_id ORDER BY r.created_at, r.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Renewal {
                    device: r.try_get(0)?,
                    serial: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    cleared_at: r.try_get(3)?,
                })
            })
            .collect()
    }
}
