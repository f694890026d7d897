//! EAS provisioning at the gateway: the device policies it hands out and the remote wipes it
//! orders (the words both backends use are in `crate::provision`). Wipes are keyed by EAS
//! DeviceId case-insensitively, as SQLite's NOCASE column: through lower() and the unique
//! expression index `eas_wipes_device`.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::provision::{
    ack_state, check_cancellable, policy_detail, settings_from_json, settings_to_json,
    wipe_on_record, wipe_request_detail, POLICY_KIND, WIPE_KIND,
};

use super::rows::{json_list, to_json};
use super::write::{record, unique_violation, NOCASE_1};
use super::PgStore;

impl PgStore {
    /// Add a policy; its times are the call's (`ctx.now`), not the record's.
    pub async fn insert_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        let sql = "INSERT INTO eas_policies (name, settings, groups, is_default, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, $5, $5)";
        self.write_policy(ctx, policy, sql, "eas-policy.create")
            .await
    }

    /// Replace a policy's settings, groups and default mark; `created_at` stays.
    pub async fn update_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        let sql = "UPDATE eas_policies SET settings = $2, groups = $3, is_default = $4, \
                   updated_at = $5 WHERE name = $1";
        self.write_policy(ctx, policy, sql, "eas-policy.update")
            .await
    }

    /// Insert or update (`sql`, taking name, settings, groups, default mark and now as
    /// $1–$5) one policy, taking the default from the others first if it is the default;
    /// audited as `action`.
    async fn write_policy(
        &self,
        ctx: &Ctx,
        policy: &EasPolicy,
        sql: &str,
        action: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if policy.is_default {
            take_default(&mut tx, &policy.name).await?;
        }
        let changed = sqlx::query(sql)
            .bind(&policy.name)
            .bind(settings_to_json(&policy.settings))
            .bind(to_json(&policy.groups))
            .bind(policy.is_default)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, POLICY_KIND, &policy.name))?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::not_found(POLICY_KIND, &policy.name));
        }
        let detail = policy_detail(policy);
        record(&mut tx, ctx, action, "eas_policy", &policy.name, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_eas_policies(&self) -> Result<Vec<EasPolicy>> {
        let rows = sqlx::query("SELECT * FROM eas_policies ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    pub async fn remove_eas_policy(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM eas_policies WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::not_found(POLICY_KIND, name));
        }
        record(&mut tx, ctx, "eas-policy.remove", "eas_policy", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Order a wipe (`pending`), refused while the DeviceId has one on record in any state (the
    /// writers' lock makes the check and the insert one step).
    pub async fn request_wipe(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        account_only: bool,
        device_uid: Option<&str>,
    ) -> Result<EasWipe> {
        let mut tx = self.write_tx().await?;
        if let Some(existing) = wipe_of(&mut tx, eas_device_id).await? {
            return Err(wipe_on_record(eas_device_id, &existing.state));
        }
        let wipe = EasWipe {
            eas_device_id: eas_device_id.to_string(),
            account_only,
            state: "pending".into(),
            requested_by: ctx.actor.clone(),
            requested_at: ctx.now,
            sent_at: None,
            ack_at: None,
            device_uid: device_uid.map(str::to_string),
        };
        sqlx::query(
            "INSERT INTO eas_wipes (eas_device_id, account_only, state, requested_by, \
             requested_at, device_uid) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&wipe.eas_device_id)
        .bind(wipe.account_only)
        .bind(&wipe.state)
        .bind(&wipe.requested_by)
        .bind(wipe.requested_at)
        .bind(&wipe.device_uid)
        .execute(&mut *tx)
        .await?;
        let detail = wipe_request_detail(account_only, device_uid);
        record(
            &mut tx,
            ctx,
            "eas.wipe.request",
            "wipe",
            eas_device_id,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(wipe)
    }

    /// Withdraw a wipe not yet sent; one sent or acknowledged is a conflict.
    pub async fn cancel_wipe(&self, ctx: &Ctx, eas_device_id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let wipe = wipe_of(&mut tx, eas_device_id)
            .await?
            .ok_or_else(|| StoreError::not_found(WIPE_KIND, eas_device_id))?;
        check_cancellable(eas_device_id, &wipe)?;
        forget_wipe(&mut tx, eas_device_id).await?;
        record(&mut tx, ctx, "eas.wipe.cancel", "wipe", eas_device_id, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_wipes(&self) -> Result<Vec<EasWipe>> {
        let rows = sqlx::query("SELECT * FROM eas_wipes ORDER BY lower(eas_device_id)")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(wipe_from_row).collect()
    }

    /// `pending` → `sent`; recorded only when it happened, so a gateway telling of every
    /// hand-over (several gateways may) leaves one event per wipe.
    pub async fn mark_wipe_sent(&self, ctx: &Ctx, eas_device_id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(&format!(
            "UPDATE eas_wipes SET state = 'sent', sent_at = $2 \
             WHERE lower(eas_device_id) = {NOCASE_1} AND state = 'pending'"
        ))
        .bind(eas_device_id)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        record(&mut tx, ctx, "eas.wipe.sent", "wipe", eas_device_id, "").await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `pending`/`sent` → `succeeded`/`failed`; a wipe acknowledged before the gateway said it
    /// sent it was sent then too. The wipe as it now is, or `None` when none was pending or
    /// sent.
    pub async fn mark_wipe_acknowledged(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        succeeded: bool,
    ) -> Result<Option<EasWipe>> {
        let state = ack_state(succeeded);
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE eas_wipes SET state = $2, ack_at = $3, sent_at = COALESCE(sent_at, $3) \
             WHERE lower(eas_device_id) = {NOCASE_1} AND state IN ('pending', 'sent') \
             RETURNING *"
        ))
        .bind(eas_device_id)
        .bind(state)
        .bind(ctx.now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let wipe = wipe_from_row(&row)?;
        record(&mut tx, ctx, "eas.wipe.ack", "wipe", eas_device_id, state).await?;
        tx.commit().await?;
        Ok(Some(wipe))
    }
}

/// Clear the default mark of every policy but `name`, before `name` takes it: at most one
/// policy is the default (a partial unique index holds it to that).
async fn take_default(tx: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query("UPDATE eas_policies SET is_default = FALSE WHERE is_default AND name <> $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Delete the wipe record of a DeviceId (clearing the DeviceId does so too, in `gateway.rs`).
async fn forget_wipe(tx: &mut PgConnection, eas_device_id: &str) -> Result<()> {
    sqlx::query(&format!(
        "DELETE FROM eas_wipes WHERE lower(eas_device_id) = {NOCASE_1}"
    ))
    .bind(eas_device_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn wipe_of(tx: &mut PgConnection, eas_device_id: &str) -> Result<Option<EasWipe>> {
    let row = sqlx::query(&format!(
        "SELECT * FROM eas_wipes WHERE lower(eas_device_id) = {NOCASE_1}"
    ))
    .bind(eas_device_id)
    .fetch_optional(&mut *tx)
    .await?;
    row.as_ref().map(wipe_from_row).transpose()
}

fn policy_from_row(row: &PgRow) -> Result<EasPolicy> {
    Ok(EasPolicy {
        name: row.try_get("name")?,
        settings: settings_from_json(row.try_get("settings")?)
            .map_err(|e| StoreError::Corrupt(format!("an EAS policy's settings: {e}")))?,
        groups: json_list(row.try_get("groups")?)?,
        is_default: row.try_get("is_default")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn wipe_from_row(row: &PgRow) -> Result<EasWipe> {
    Ok(EasWipe {
        eas_device_id: row.try_get("eas_device_id")?,
        account_only: row.try_get("account_only")?,
        state: row.try_get("state")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: row.try_get("requested_at")?,
        sent_at: row.try_get("sent_at")?,
        ack_at: row.try_get("ack_at")?,
        device_uid: row.try_get("device_uid")?,
    })
}
