//! What the EAS gateway decides with (access rules, overrides) and what it has seen
//! (partnerships, certificate bindings). EAS DeviceIds and partnership users compare
//! case-insensitively, as SQLite's NOCASE columns do: through lower() and the unique
//! expression indexes the upserts name as their conflict targets.

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::model::*;

use super::rows::{json_list, to_json};
use super::write::{record, unique_violation, NOCASE_1};
use super::PgStore;

/// A partnership's columns in the order [`partnership_from_row`] reads them.
pub(crate) const PARTNERSHIP_SELECT: &str =
    "SELECT \"user\", eas_device_id, suspect, device_type, model, os, friendly_name, user_agent, \
     client, platform, protocol, first_seen, last_seen, last_sync, last_command, cert_serial, \
     device_state, access_state, access_reason, last_refusal_at, last_refusal, policy_applied, \
     policy_key, policy_status, policy_updated_at \
     FROM eas_partnerships";

/// The partnerships' key order (SQLite: `user, eas_device_id, suspect` under NOCASE).
pub(crate) const PARTNERSHIP_ORDER: &str = "lower(\"user\"), lower(eas_device_id), suspect";

pub(crate) fn partnership_from_row(r: &PgRow) -> Result<Partnership> {
    Ok(Partnership {
        user: r.try_get(0)?,
        eas_device_id: r.try_get(1)?,
        suspect: r.try_get(2)?,
        device_type: r.try_get(3)?,
        model: r.try_get(4)?,
        os: r.try_get(5)?,
        friendly_name: r.try_get(6)?,
        user_agent: r.try_get(7)?,
        client: r.try_get(8)?,
        platform: r.try_get(9)?,
        protocol: r.try_get(10)?,
        first_seen: r.try_get(11)?,
        last_seen: r.try_get(12)?,
        last_sync: r.try_get(13)?,
        last_command: r.try_get(14)?,
        cert_serial: r.try_get(15)?,
        device_state: r.try_get(16)?,
        access_state: r.try_get(17)?,
        access_reason: r.try_get(18)?,
        last_refusal_at: r.try_get(19)?,
        last_refusal: r.try_get(20)?,
        policy_applied: r.try_get(21)?,
        policy_key: r.try_get(22)?,
        policy_status: r.try_get(23)?,
        policy_updated_at: r.try_get(24)?,
    })
}

fn rule_from_row(row: &PgRow) -> Result<AccessRule> {
    let priority: i64 = row.try_get("priority")?;
    Ok(AccessRule {
        name: row.try_get("name")?,
        priority: i32::try_from(priority)
            .map_err(|_| StoreError::Corrupt(format!("rule priority {priority}")))?,
        users: json_list(row.try_get("users")?)?,
        groups: json_list(row.try_get("groups")?)?,
        platforms: json_list(row.try_get("platforms")?)?,
        clients: json_list(row.try_get("clients")?)?,
        device_states: json_list(row.try_get("device_states")?)?,
        networks: json_list(row.try_get("networks")?)?,
        action: row.try_get("action")?,
    })
}

impl PgStore {
    pub async fn insert_rule(&self, ctx: &Ctx, rule: AccessRule) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO access_rules (name, priority, users, groups, platforms, clients, \
             device_states, networks, action, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&rule.name)
        .bind(i64::from(rule.priority))
        .bind(to_json(&rule.users))
        .bind(to_json(&rule.groups))
        .bind(to_json(&rule.platforms))
        .bind(to_json(&rule.clients))
        .bind(to_json(&rule.device_states))
        .bind(to_json(&rule.networks))
        .bind(&rule.action)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "access rule", &rule.name))?;
        let detail = format!("priority {} action {}", rule.priority, rule.action);
        record(&mut tx, ctx, "policy.add", "rule", &rule.name, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_rules(&self) -> Result<Vec<AccessRule>> {
        let rows = sqlx::query("SELECT * FROM access_rules ORDER BY priority, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    pub async fn remove_rule(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM access_rules WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::not_found("access rule", name));
        }
        record(&mut tx, ctx, "policy.remove", "rule", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_override(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
        unmanaged: bool,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO eas_overrides (eas_device_id, action, reason, unmanaged, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (lower(eas_device_id)) DO UPDATE SET \
             action = excluded.action, reason = excluded.reason, unmanaged = excluded.unmanaged, \
             created_at = excluded.created_at",
        )
        .bind(eas_device_id)
        .bind(action)
        .bind(reason)
        .bind(unmanaged)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        let detail = match (unmanaged, reason) {
            (true, Some(r)) => format!("without a certificate (--unmanaged); {r}"),
            (true, None) => "without a certificate (--unmanaged)".to_string(),
            (false, r) => r.unwrap_or("").to_string(),
        };
        let action = format!("eas.{action}");
        record(&mut tx, ctx, &action, "override", eas_device_id, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_overrides(&self) -> Result<Vec<EasOverride>> {
        let rows = sqlx::query("SELECT * FROM eas_overrides ORDER BY lower(eas_device_id)")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EasOverride {
                    eas_device_id: r.try_get("eas_device_id")?,
                    action: r.try_get("action")?,
                    reason: r.try_get("reason")?,
                    unmanaged: r.try_get("unmanaged")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Insert or update each partnership, the latest sighting winning; no audit event or change
    /// row (the gateway's running record), and no writers' lock: rows are upserted by key.
    /// Each partnership is its own statement (no transaction across rows): several gateways
    /// flush at once, and single-row upserts can never wait on each other in a cycle.
    pub async fn save_partnerships(&self, partnerships: &[Partnership]) -> Result<()> {
        for p in partnerships {
            sqlx::query(
                "INSERT INTO eas_partnerships (\"user\", eas_device_id, device_type, model, os, \
                 friendly_name, user_agent, client, platform, protocol, first_seen, last_seen, \
                 last_sync, last_command, cert_serial, device_state, access_state, access_reason, \
                 suspect, last_refusal_at, last_refusal, policy_applied, policy_key, \
                 policy_status, policy_updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21, $22, $23, $24, $25) \
                 ON CONFLICT (lower(\"user\"), lower(eas_device_id), suspect) DO UPDATE SET \
                 device_type = excluded.device_type, model = excluded.model, os = excluded.os, \
                 friendly_name = excluded.friendly_name, user_agent = excluded.user_agent, \
                 client = excluded.client, platform = excluded.platform, \
                 protocol = excluded.protocol, \
                 first_seen = LEAST(eas_partnerships.first_seen, excluded.first_seen), \
                 last_seen = excluded.last_seen, last_sync = excluded.last_sync, \
                 last_command = excluded.last_command, cert_serial = excluded.cert_serial, \
                 device_state = excluded.device_state, access_state = excluded.access_state, \
                 access_reason = excluded.access_reason, \
                 last_refusal_at = excluded.last_refusal_at, last_refusal = excluded.last_refusal, \
                 policy_applied = excluded.policy_applied, policy_key = excluded.policy_key, \
                 policy_status = excluded.policy_status, \
                 policy_updated_at = excluded.policy_updated_at \
                 WHERE excluded.last_seen >= eas_partnerships.last_seen",
            )
            .bind(&p.user)
            .bind(&p.eas_device_id)
            .bind(&p.device_type)
            .bind(&p.model)
            .bind(&p.os)
            .bind(&p.friendly_name)
            .bind(&p.user_agent)
            .bind(&p.client)
            .bind(&p.platform)
            .bind(&p.protocol)
            .bind(p.first_seen)
            .bind(p.last_seen)
            .bind(p.last_sync)
            .bind(&p.last_command)
            .bind(&p.cert_serial)
            .bind(&p.device_state)
            .bind(&p.access_state)
            .bind(&p.access_reason)
            .bind(p.suspect)
            .bind(p.last_refusal_at)
            .bind(&p.last_refusal)
            .bind(&p.policy_applied)
            .bind(p.policy_key)
            .bind(&p.policy_status)
            .bind(p.policy_updated_at)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn list_partnerships(&self, user: Option<&str>) -> Result<Vec<Partnership>> {
        let rows = sqlx::query(&format!(
            "{PARTNERSHIP_SELECT} WHERE $1::text IS NULL OR lower(\"user\") = {NOCASE_1} \
             ORDER BY {PARTNERSHIP_ORDER}"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partnership_from_row).collect()
    }

    pub async fn get_partnerships(&self, eas_device_id: &str) -> Result<Vec<Partnership>> {
        let rows = sqlx::query(&format!(
            "{PARTNERSHIP_SELECT} WHERE lower(eas_device_id) = {NOCASE_1} ORDER BY last_seen DESC"
        ))
        .bind(eas_device_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partnership_from_row).collect()
    }

    /// Forget one DeviceId: its partnerships, override and wipe record. One with nothing but a
    /// wipe on record counts as found, since clearing is how an admin forgets a finished wipe.
    pub async fn clear_partnerships(&self, ctx: &Ctx, eas_device_id: &str) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        let mut removed = [0u64; 3];
        for (count, table) in
            removed
                .iter_mut()
                .zip(["eas_partnerships", "eas_overrides", "eas_wipes"])
        {
            *count = sqlx::query(&format!(
                "DELETE FROM {table} WHERE lower(eas_device_id) = {NOCASE_1}"
            ))
            .bind(eas_device_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let [partnerships, overrides, wipes] = removed;
        if partnerships == 0 && overrides == 0 && wipes == 0 {
            return Err(StoreError::not_found("EAS device", eas_device_id));
        }
        let detail = format!("{partnerships} partnership(s)");
        record(
            &mut tx,
            ctx,
            "eas.clear",
            "override",
            eas_device_id,
            &detail,
        )
        .await?;
        tx.commit().await?;
        usize::try_from(partnerships)
            .map_err(|_| StoreError::Corrupt(format!("{partnerships} partnerships removed")))
    }

    /// Record bindings not yet recorded (an existing binding is kept), each new one with a
    /// `binding` change-feed row (no audit event), so under the writers' lock; the binding in
    /// effect for each serial given.
    pub async fn save_bindings(
        &self,
        bindings: &[CertificateBinding],
    ) -> Result<Vec<CertificateBinding>> {
        let mut tx = self.write_tx().await?;
        let mut in_effect = Vec::with_capacity(bindings.len());
        for b in bindings {
            let inserted = sqlx::query(
                "INSERT INTO certificate_bindings (serial, eas_device_id, \"user\", bound_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO NOTHING",
            )
            .bind(&b.serial)
            .bind(&b.eas_device_id)
            .bind(&b.user)
            .bind(b.bound_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                sqlx::query("INSERT INTO changes (at, entity, key) VALUES ($1, 'binding', $2)")
                    .bind(b.bound_at)
                    .bind(&b.serial)
                    .execute(&mut *tx)
                    .await?;
                in_effect.push(b.clone());
            } else if let Some(stored) = binding_where(&mut tx, &b.serial).await? {
                in_effect.push(stored);
            }
        }
        tx.commit().await?;
        Ok(in_effect)
    }

    pub async fn get_binding(&self, serial: &str) -> Result<Option<CertificateBinding>> {
        let mut conn = self.pool.acquire().await?;
        binding_where(&mut conn, serial).await
    }

    pub async fn device_bindings(&self, eas_device_id: &str) -> Result<Vec<CertificateBinding>> {
        let rows = sqlx::query(
            "SELECT * FROM certificate_bindings WHERE lower(eas_device_id) = lower($1) \
             ORDER BY serial",
        )
        .bind(eas_device_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(binding_from_row).collect()
    }

    pub async fn list_bindings(&self) -> Result<Vec<CertificateBinding>> {
        let rows = sqlx::query("SELECT * FROM certificate_bindings ORDER BY serial")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(binding_from_row).collect()
    }
}

async fn binding_where(
    conn: &mut sqlx::PgConnection,
    serial: &str,
) -> Result<Option<CertificateBinding>> {
    let row = sqlx::query("SELECT * FROM certificate_bindings WHERE serial = $1")
        .bind(serial)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(binding_from_row).transpose()
}

fn binding_from_row(r: &PgRow) -> Result<CertificateBinding> {
    Ok(CertificateBinding {
        serial: r.try_get("serial")?,
        eas_device_id: r.try_get("eas_device_id")?,
        user: r.try_get("user")?,
        bound_at: r.try_get("bound_at")?,
    })
}
