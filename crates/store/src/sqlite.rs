//! The SQLite backend: one database file in WAL mode, migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::Store;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
}

type Tx<'a> = Transaction<'a, Sqlite>;

impl SqliteStore {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

fn unique_violation(e: sqlx::Error, kind: &'static str, key: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists {
            kind,
            key: key.to_string(),
        },
        _ => StoreError::Database(e),
    }
}

/// Append the audit event and the change-feed row of a change, inside its transaction.
async fn record(
    tx: &mut Tx<'_>,
    ctx: &Ctx,
    action: &str,
    entity: &str,
    key: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(ctx.now)
    .bind(&ctx.actor)
    .bind(action)
    .bind(format!("{entity}:{key}"))
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO changes (at, entity, key) VALUES (?, ?, ?)")
        .bind(ctx.now)
        .bind(entity)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad JSON list: {e}")))
}

fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn ca_from_row(row: &SqliteRow) -> Result<Ca> {
    Ok(Ca {
        name: row.try_get("name")?,
        key_type: row.try_get("key_type")?,
        subject: row.try_get("subject")?,
        cert_der: row.try_get("cert_der")?,
        key_sealed: row.try_get("key_sealed")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        created_at: row.try_get("created_at")?,
    })
}

fn trusted_from_row(row: &SqliteRow) -> Result<TrustedCa> {
    Ok(TrustedCa {
        name: row.try_get("name")?,
        subject: row.try_get("subject")?,
        cert_der: row.try_get("cert_der")?,
        crl_url: row.try_get("crl_url")?,
        delta_crl_url: row.try_get("delta_crl_url")?,
        created_at: row.try_get("created_at")?,
    })
}

fn template_from_row(row: &SqliteRow) -> Result<Template> {
    Ok(Template {
        name: row.try_get("name")?,
        ca: row.try_get("ca_name")?,
        subject: row.try_get("subject")?,
        sans: json_list(&row.try_get::<String, _>("sans")?)?,
        key_type: row.try_get("key_type")?,
        validity_days: row.try_get("validity_days")?,
        renew_before_days: row.try_get("renew_before_days")?,
        is_default: row.try_get("is_default")?,
        created_at: row.try_get("created_at")?,
    })
}

fn device_from_row(row: &SqliteRow) -> Result<Device> {
    Ok(Device {
        uid: row.try_get("uid")?,
        user: row.try_get("upn")?,
        platform: row.try_get("platform")?,
        template: row.try_get("template_name")?,
        state: row.try_get("state")?,
        device_serial: row.try_get("device_serial")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn cert_from_row(row: &SqliteRow, now: i64) -> Result<Certificate> {
    let stored: String = row.try_get("status")?;
    let not_after: i64 = row.try_get("not_after")?;
    let status = match stored.as_str() {
        "revoked" => CertStatus::Revoked,
        "valid" if not_after < now => CertStatus::Expired,
        "valid" => CertStatus::Valid,
        other => return Err(StoreError::Corrupt(format!("certificate status `{other}`"))),
    };
    Ok(Certificate {
        serial: row.try_get("serial")?,
        ca: row.try_get("ca_name")?,
        device: row.try_get("device_uid")?,
        template: row.try_get("template_name")?,
        subject: row.try_get("subject")?,
        sans: json_list(&row.try_get::<String, _>("sans")?)?,
        key_type: row.try_get("key_type")?,
        not_before: row.try_get("not_before")?,
        not_after,
        status,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        issued_at: row.try_get("issued_at")?,
        der: row.try_get("der")?,
    })
}

const TEMPLATE_SELECT: &str =
    "SELECT t.*, c.name AS ca_name FROM templates t JOIN cas c ON c.id = t.ca_id";
const DEVICE_SELECT: &str = "SELECT d.*, u.upn AS upn, t.name AS template_name FROM devices d \
     JOIN users u ON u.id = d.user_id LEFT JOIN templates t ON t.id = d.template_id";
const CERT_SELECT: &str =
    "SELECT k.*, c.name AS ca_name, d.uid AS device_uid, t.name AS template_name \
     FROM certificates k JOIN cas c ON c.id = k.ca_id \
     LEFT JOIN devices d ON d.id = k.device_id LEFT JOIN templates t ON t.id = k.template_id";

impl SqliteStore {
    async fn user_groups(&self, user_id: Option<i64>) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT ug.user_id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
             WHERE (?1 IS NULL OR ug.user_id = ?1) ORDER BY g.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("name")?)))
            .collect()
    }

    fn user_from_row(row: &SqliteRow, groups: &[(i64, String)]) -> Result<User> {
        let id: i64 = row.try_get("id")?;
        Ok(User {
            upn: row.try_get("upn")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            disabled: row.try_get("disabled")?,
            groups: groups
                .iter()
                .filter(|(uid, _)| *uid == id)
                .map(|(_, g)| g.clone())
                .collect(),
            created_at: row.try_get("created_at")?,
        })
    }

    /// Revoke every valid certificate matching `where_clause` (bound to `id`) in `tx`.
    async fn revoke_where(
        tx: &mut Tx<'_>,
        where_clause: &str,
        id: i64,
        revoke: &Revocation,
    ) -> Result<Vec<String>> {
        let serials: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT serial FROM certificates WHERE status = 'valid' AND {where_clause} ORDER BY serial"
        ))
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? \
             WHERE status = 'valid' AND {}",
            where_clause.replace('?', "?3")
        ))
        .bind(revoke.at)
        .bind(&revoke.reason)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(serials)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn revision(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM changes")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        let rows =
            sqlx::query("SELECT * FROM changes WHERE revision > ? ORDER BY revision LIMIT ?")
                .bind(after)
                .bind(limit)
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

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, ctx: &Ctx, key: &str, value: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, ctx, "setting.set", "setting", key, value).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_ca(&self, ctx: &Ctx, ca: NewCa) -> Result<Ca> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO cas (name, key_type, subject, cert_der, key_sealed, not_before, not_after, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&ca.name)
        .bind(&ca.key_type)
        .bind(&ca.subject)
        .bind(&ca.cert_der)
        .bind(&ca.key_sealed)
        .bind(ca.not_before)
        .bind(ca.not_after)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "CA", &ca.name))?;
        record(
            &mut tx,
            ctx,
            "ca.create",
            "ca",
            &ca.name,
            &format!("{} {}", ca.key_type, ca.subject),
        )
        .await?;
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
        })
    }

    async fn list_cas(&self) -> Result<Vec<Ca>> {
        let rows = sqlx::query("SELECT * FROM cas ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ca_from_row).collect()
    }

    async fn get_ca(&self, name: &str) -> Result<Option<Ca>> {
        let row = sqlx::query("SELECT * FROM cas WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ca_from_row).transpose()
    }

    async fn insert_trusted_ca(&self, ctx: &Ctx, ca: NewTrustedCa) -> Result<TrustedCa> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO trusted_cas (name, subject, cert_der, crl_url, delta_crl_url, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&ca.name)
        .bind(&ca.subject)
        .bind(&ca.cert_der)
        .bind(&ca.crl_url)
        .bind(&ca.delta_crl_url)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "trusted CA", &ca.name))?;
        record(
            &mut tx,
            ctx,
            "trust.add",
            "trusted_ca",
            &ca.name,
            &ca.subject,
        )
        .await?;
        tx.commit().await?;
        Ok(TrustedCa {
            name: ca.name,
            subject: ca.subject,
            cert_der: ca.cert_der,
            crl_url: ca.crl_url,
            delta_crl_url: ca.delta_crl_url,
            created_at: ctx.now,
        })
    }

    async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>> {
        let rows = sqlx::query("SELECT * FROM trusted_cas ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trusted_from_row).collect()
    }

    async fn remove_trusted_ca(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM trusted_cas WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("trusted CA", name));
        }
        record(&mut tx, ctx, "trust.remove", "trusted_ca", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_group(&self, ctx: &Ctx, name: &str) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO groups (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, "group", name))?;
        record(&mut tx, ctx, "group.add", "group", name, "").await?;
        tx.commit().await?;
        Ok(Group {
            name: name.to_string(),
            members: 0,
            created_at: ctx.now,
        })
    }

    async fn list_groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.name, g.created_at, (SELECT COUNT(*) FROM user_groups ug WHERE ug.group_id = g.id) AS members \
             FROM groups g ORDER BY g.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Group {
                    name: r.try_get("name")?,
                    members: r.try_get("members")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn insert_user(&self, ctx: &Ctx, user: NewUser) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let mut group_ids = Vec::new();
        for group in &user.groups {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM groups WHERE name = ?")
                .bind(group)
                .fetch_optional(&mut *tx)
                .await?;
            group_ids.push(id.ok_or_else(|| StoreError::not_found("group", group.clone()))?);
        }
        let user_id = sqlx::query(
            "INSERT INTO users (upn, email, display_name, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.upn)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "user", &user.upn))?
        .last_insert_rowid();
        for gid in group_ids {
            sqlx::query("INSERT OR IGNORE INTO user_groups (user_id, group_id) VALUES (?, ?)")
                .bind(user_id)
                .bind(gid)
                .execute(&mut *tx)
                .await?;
        }
        record(&mut tx, ctx, "user.add", "user", &user.upn, &user.email).await?;
        tx.commit().await?;
        self.get_user(&user.upn)
            .await?
            .ok_or_else(|| StoreError::not_found("user", user.upn))
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY upn")
            .fetch_all(&self.pool)
            .await?;
        let groups = self.user_groups(None).await?;
        rows.iter()
            .map(|r| Self::user_from_row(r, &groups))
            .collect()
    }

    async fn get_user(&self, upn: &str) -> Result<Option<User>> {
        let Some(row) = sqlx::query("SELECT * FROM users WHERE upn = ?")
            .bind(upn)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let groups = self.user_groups(Some(row.try_get("id")?)).await?;
        Self::user_from_row(&row, &groups).map(Some)
    }

    async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        upn: &str,
        disabled: bool,
        revoke: Option<Revocation>,
    ) -> Result<(User, Vec<String>)> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE upn = ?")
            .bind(upn)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("user", upn))?;
        sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
            .bind(disabled)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revoked = match &revoke {
            Some(r) => {
                Self::revoke_where(
                    &mut tx,
                    "device_id IN (SELECT id FROM devices WHERE user_id = ?)",
                    id,
                    r,
                )
                .await?
            }
            None => Vec::new(),
        };
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        record(
            &mut tx,
            ctx,
            action,
            "user",
            upn,
            &format!("revoked {} certificate(s)", revoked.len()),
        )
        .await?;
        for serial in &revoked {
            record(
                &mut tx,
                ctx,
                "cert.revoke",
                "certificate",
                serial,
                revoke.as_ref().map(|r| r.reason.as_str()).unwrap_or(""),
            )
            .await?;
        }
        tx.commit().await?;
        let user = self
            .get_user(upn)
            .await?
            .ok_or_else(|| StoreError::not_found("user", upn))?;
        Ok((user, revoked))
    }

    async fn insert_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        let mut tx = self.pool.begin().await?;
        let ca_id: i64 = sqlx::query_scalar("SELECT id FROM cas WHERE name = ?")
            .bind(&t.ca)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("CA", t.ca.clone()))?;
        if t.is_default {
            sqlx::query("UPDATE templates SET is_default = 0")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO templates (name, ca_id, subject, sans, key_type, validity_days, renew_before_days, is_default, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.name)
        .bind(ca_id)
        .bind(&t.subject)
        .bind(to_json(&t.sans))
        .bind(&t.key_type)
        .bind(t.validity_days)
        .bind(t.renew_before_days)
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
        tx.commit().await?;
        self.get_template(&t.name)
            .await?
            .ok_or_else(|| StoreError::not_found("template", t.name))
    }

    async fn list_templates(&self) -> Result<Vec<Template>> {
        let rows = sqlx::query(&format!("{TEMPLATE_SELECT} ORDER BY t.name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(template_from_row).collect()
    }

    async fn get_template(&self, name: &str) -> Result<Option<Template>> {
        let row = sqlx::query(&format!("{TEMPLATE_SELECT} WHERE t.name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn enroll_device(
        &self,
        ctx: &Ctx,
        device: NewDevice,
        challenge: NewChallenge,
    ) -> Result<Device> {
        let mut tx = self.pool.begin().await?;
        let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE upn = ?")
            .bind(&device.user)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("user", device.user.clone()))?;
        let template_id: Option<i64> = match &device.template {
            Some(name) => Some(
                sqlx::query_scalar("SELECT id FROM templates WHERE name = ?")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found("template", name.clone()))?,
            ),
            None => None,
        };
        let device_id = sqlx::query(
            "INSERT INTO devices (uid, user_id, platform, template_id, state, device_serial, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        )
        .bind(&device.uid)
        .bind(user_id)
        .bind(&device.platform)
        .bind(template_id)
        .bind(&device.device_serial)
        .bind(ctx.now)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "device", &device.uid))?
        .last_insert_rowid();
        sqlx::query("INSERT INTO scep_challenges (device_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(device_id)
            .bind(&challenge.hash_hex)
            .bind(ctx.now)
            .bind(challenge.expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO profile_tokens (device_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(device_id)
            .bind(&challenge.profile_token_hash_hex)
            .bind(ctx.now)
            .bind(challenge.expires_at)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            ctx,
            "device.enroll",
            "device",
            &device.uid,
            &format!("user {} platform {}", device.user, device.platform),
        )
        .await?;
        tx.commit().await?;
        self.get_device(&device.uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", device.uid))
    }

    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>> {
        let rows = sqlx::query(&format!(
            "{DEVICE_SELECT} WHERE (?1 IS NULL OR u.upn = ?1) ORDER BY d.created_at, d.uid"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn get_device(&self, uid: &str) -> Result<Option<Device>> {
        let row = sqlx::query(&format!("{DEVICE_SELECT} WHERE d.uid = ?"))
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn set_device_state(
        &self,
        ctx: &Ctx,
        uid: &str,
        state: &str,
        revoke: Revocation,
    ) -> Result<(Device, Vec<String>)> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM devices WHERE uid = ?")
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("device", uid))?;
        sqlx::query("UPDATE devices SET state = ?, updated_at = ? WHERE id = ?")
            .bind(state)
            .bind(ctx.now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Unused challenges and profile tokens of a retired device must never enroll it again.
        for table in ["scep_challenges", "profile_tokens"] {
            sqlx::query(&format!(
                "UPDATE {table} SET expires_at = ? WHERE device_id = ? AND used_at IS NULL AND expires_at > ?"
            ))
            .bind(ctx.now)
            .bind(id)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await?;
        }
        let revoked = Self::revoke_where(&mut tx, "device_id = ?", id, &revoke).await?;
        record(
            &mut tx,
            ctx,
            &format!("device.{state}"),
            "device",
            uid,
            &format!("revoked {} certificate(s)", revoked.len()),
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
        tx.commit().await?;
        let device = self
            .get_device(uid)
            .await?
            .ok_or_else(|| StoreError::not_found("device", uid))?;
        Ok((device, revoked))
    }

    async fn insert_certificate(&self, ctx: &Ctx, cert: NewCertificate) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let ca_id: i64 = sqlx::query_scalar("SELECT id FROM cas WHERE name = ?")
            .bind(&cert.ca)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("CA", cert.ca.clone()))?;
        let device_id: Option<i64> = match &cert.device {
            Some(uid) => Some(
                sqlx::query_scalar("SELECT id FROM devices WHERE uid = ?")
                    .bind(uid)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found("device", uid.clone()))?,
            ),
            None => None,
        };
        let template_id: Option<i64> = match &cert.template {
            Some(name) => {
                sqlx::query_scalar("SELECT id FROM templates WHERE name = ?")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        sqlx::query(
            "INSERT INTO certificates (serial, ca_id, device_id, template_id, subject, sans, key_type, not_before, not_after, der, status, issued_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?)",
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
        if let Some(id) = device_id {
            sqlx::query("UPDATE devices SET state = 'enrolled', updated_at = ? WHERE id = ? AND state = 'pending'")
                .bind(ctx.now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        record(
            &mut tx,
            ctx,
            "cert.issue",
            "certificate",
            &cert.serial,
            &cert.subject,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<Certificate>> {
        let status_clause = match filter.status {
            None => "1 = 1",
            Some(CertStatus::Valid) => "k.status = 'valid' AND k.not_after >= ?2",
            Some(CertStatus::Expired) => "k.status = 'valid' AND k.not_after < ?2",
            Some(CertStatus::Revoked) => "k.status = 'revoked'",
        };
        let rows = sqlx::query(&format!(
            "{CERT_SELECT} WHERE (?1 IS NULL OR d.uid = ?1) AND {status_clause} ORDER BY k.issued_at, k.serial"
        ))
        .bind(&filter.device)
        .bind(filter.now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| cert_from_row(r, filter.now)).collect()
    }

    async fn get_certificate(&self, serial: &str, now: i64) -> Result<Option<Certificate>> {
        let row = sqlx::query(&format!("{CERT_SELECT} WHERE k.serial = ?"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| cert_from_row(r, now)).transpose()
    }

    async fn revoke_certificate(
        &self,
        ctx: &Ctx,
        serial: &str,
        revoke: Revocation,
    ) -> Result<Certificate> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM certificates WHERE serial = ?")
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
        sqlx::query("UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ?")
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
        tx.commit().await?;
        self.get_certificate(serial, ctx.now)
            .await?
            .ok_or_else(|| StoreError::not_found("certificate", serial))
    }

    async fn list_audit(&self, since: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE at >= ? ORDER BY id")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
