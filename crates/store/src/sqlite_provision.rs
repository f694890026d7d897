//! SQLite statements for EAS provisioning at the gateway: the device policies it hands out and
//! the remote wipes it orders. Kept apart from `sqlite_gateway.rs` (what the gateway decides
//! access with and what it has seen); the words both backends use are in `provision.rs`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::model::{Ctx, EasPolicy, EasWipe};
use crate::provision::{
    ack_state, check_cancellable, policy_detail, settings_from_json, settings_to_json,
    wipe_on_record, wipe_request_detail, POLICY_KIND, WIPE_KIND,
};
use crate::sqlite::{json_list, record, to_json, unique_violation};

/// Add a policy; its times are the call's (`ctx.now`), not the record's.
pub(crate) fn insert_eas_policy(tx: &Connection, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
    let sql =
        "INSERT INTO eas_policies (name, settings, groups, is_default, created_at, updated_at) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
    write_policy(tx, ctx, policy, sql, "eas-policy.create")
}

/// Replace a policy's settings, groups and default mark; `created_at` stays.
pub(crate) fn update_eas_policy(tx: &Connection, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
    let sql =
        "UPDATE eas_policies SET settings = ?2, groups = ?3, is_default = ?4, updated_at = ?5 \
               WHERE name = ?1";
    write_policy(tx, ctx, policy, sql, "eas-policy.update")
}

/// Insert or update (`sql`, taking name, settings, groups, default mark and now as ?1–?5) one
/// policy, taking the default from the others first if it is the default; audited as `action`.
fn write_policy(
    tx: &Connection,
    ctx: &Ctx,
    policy: &EasPolicy,
    sql: &str,
    action: &str,
) -> Result<()> {
    if policy.is_default {
        take_default(tx, &policy.name)?;
    }
    let changed = tx
        .execute(
            sql,
            params![
                policy.name,
                settings_to_json(&policy.settings),
                to_json(&policy.groups),
                policy.is_default,
                ctx.now
            ],
        )
        .map_err(|e| unique_violation(e, POLICY_KIND, &policy.name))?;
    if changed == 0 {
        return Err(StoreError::not_found(POLICY_KIND, &policy.name));
    }
    record(
        tx,
        ctx,
        action,
        "eas_policy",
        &policy.name,
        &policy_detail(policy),
    )
}

/// Clear the default mark of every policy but `name`, before `name` takes it: at most one
/// policy is the default (a unique index holds it to that).
fn take_default(tx: &Connection, name: &str) -> Result<()> {
    tx.execute(
        "UPDATE eas_policies SET is_default = 0 WHERE is_default = 1 AND name <> ?1",
        [name],
    )?;
    Ok(())
}

fn policy_from_row(r: &Row<'_>) -> rusqlite::Result<EasPolicy> {
    let settings: String = r.get("settings")?;
    Ok(EasPolicy {
        name: r.get("name")?,
        settings: settings_from_json(&settings).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        groups: json_list(&r.get::<_, String>("groups")?)?,
        is_default: r.get("is_default")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

pub(crate) fn list_eas_policies(c: &Connection) -> Result<Vec<EasPolicy>> {
    let mut stmt = c.prepare_cached("SELECT * FROM eas_policies ORDER BY name")?;
    let rows = stmt.query_map([], policy_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn remove_eas_policy(tx: &Connection, ctx: &Ctx, name: &str) -> Result<()> {
    if tx.execute("DELETE FROM eas_policies WHERE name = ?1", [name])? == 0 {
        return Err(StoreError::not_found(POLICY_KIND, name));
    }
    record(tx, ctx, "eas-policy.remove", "eas_policy", name, "")
}

/// Order a wipe (`pending`), refused while the DeviceId has one on record in any state.
pub(crate) fn request_wipe(
    tx: &Connection,
    ctx: &Ctx,
    eas_device_id: &str,
    account_only: bool,
    device_uid: Option<&str>,
) -> Result<EasWipe> {
    if let Some(existing) = wipe_of(tx, eas_device_id)? {
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
    tx.execute(
        "INSERT INTO eas_wipes (eas_device_id, account_only, state, requested_by, requested_at, device_uid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            wipe.eas_device_id,
            wipe.account_only,
            wipe.state,
            wipe.requested_by,
            wipe.requested_at,
            wipe.device_uid
        ],
    )?;
    record(
        tx,
        ctx,
        "eas.wipe.request",
        "wipe",
        eas_device_id,
        &wipe_request_detail(account_only, device_uid),
    )?;
    Ok(wipe)
}

/// Withdraw a wipe not yet sent; one sent or acknowledged is a conflict.
pub(crate) fn cancel_wipe(tx: &Connection, ctx: &Ctx, eas_device_id: &str) -> Result<()> {
    let wipe = wipe_of(tx, eas_device_id)?
        .ok_or_else(|| StoreError::not_found(WIPE_KIND, eas_device_id))?;
    check_cancellable(eas_device_id, &wipe)?;
    forget_wipe(tx, eas_device_id)?;
    record(tx, ctx, "eas.wipe.cancel", "wipe", eas_device_id, "")
}

pub(crate) fn list_wipes(c: &Connection) -> Result<Vec<EasWipe>> {
    let mut stmt = c.prepare_cached("SELECT * FROM eas_wipes ORDER BY eas_device_id")?;
    let rows = stmt.query_map([], wipe_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `pending` → `sent`; recorded only when it happened, so a gateway telling of every hand-over
/// (several gateways may) leaves one event per wipe.
pub(crate) fn mark_wipe_sent(tx: &Connection, ctx: &Ctx, eas_device_id: &str) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE eas_wipes SET state = 'sent', sent_at = ?2 \
         WHERE eas_device_id = ?1 AND state = 'pending'",
        params![eas_device_id, ctx.now],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    record(tx, ctx, "eas.wipe.sent", "wipe", eas_device_id, "")?;
    Ok(true)
}

/// `pending`/`sent` → `succeeded`/`failed`; a wipe acknowledged before the gateway said it sent
/// it was sent then too. The wipe as it now is, or `None` when none was pending or sent.
pub(crate) fn mark_wipe_acknowledged(
    tx: &Connection,
    ctx: &Ctx,
    eas_device_id: &str,
    succeeded: bool,
) -> Result<Option<EasWipe>> {
    let state = ack_state(succeeded);
    let acknowledged = tx
        .prepare_cached(
            "UPDATE eas_wipes SET state = ?2, ack_at = ?3, sent_at = COALESCE(sent_at, ?3) \
             WHERE eas_device_id = ?1 AND state IN ('pending', 'sent') RETURNING *",
        )?
        .query_row(params![eas_device_id, state, ctx.now], wipe_from_row)
        .optional()?;
    if acknowledged.is_some() {
        record(tx, ctx, "eas.wipe.ack", "wipe", eas_device_id, state)?;
    }
    Ok(acknowledged)
}

/// Delete the wipe record of a DeviceId (cancelling it, or clearing the DeviceId); whether
/// there was one.
pub(crate) fn forget_wipe(tx: &Connection, eas_device_id: &str) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM eas_wipes WHERE eas_device_id = ?1",
        [eas_device_id],
    )? > 0)
}

fn wipe_of(c: &Connection, eas_device_id: &str) -> Result<Option<EasWipe>> {
    Ok(
        c.prepare_cached("SELECT * FROM eas_wipes WHERE eas_device_id = ?1")?
            .query_row([eas_device_id], wipe_from_row)
            .optional()?,
    )
}

fn wipe_from_row(r: &Row<'_>) -> rusqlite::Result<EasWipe> {
    Ok(EasWipe {
        eas_device_id: r.get("eas_device_id")?,
        account_only: r.get("account_only")?,
        state: r.get("state")?,
        requested_by: r.get("requested_by")?,
        requested_at: r.get("requested_at")?,
        sent_at: r.get("sent_at")?,
        ack_at: r.get("ack_at")?,
        device_uid: r.get("device_uid")?,
    })
}
