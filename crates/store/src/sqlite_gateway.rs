//! SQLite statements for what the gateway decides with (access rules, overrides) and what it
//! has seen (partnerships, certificate bindings). Kept apart from `sqlite.rs`, which holds the
//! PKI and directory records.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::model::{AccessRule, CertificateBinding, Ctx, EasOverride, Partnership};
use crate::sqlite::{json_list, record, to_json, unique_violation};

pub(crate) fn insert_rule(tx: &Connection, ctx: &Ctx, rule: &AccessRule) -> Result<()> {
    tx.execute(
        "INSERT INTO access_rules (name, priority, users, groups, platforms, clients, device_states, networks, action, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            rule.name,
            rule.priority,
            to_json(&rule.users),
            to_json(&rule.groups),
            to_json(&rule.platforms),
            to_json(&rule.clients),
            to_json(&rule.device_states),
            to_json(&rule.networks),
            rule.action,
            ctx.now
        ],
    )
    .map_err(|e| unique_violation(e, "access rule", &rule.name))?;
    record(
        tx,
        ctx,
        "policy.add",
        "rule",
        &rule.name,
        &format!("priority {} action {}", rule.priority, rule.action),
    )
}

fn rule_from_row(row: &Row<'_>) -> rusqlite::Result<AccessRule> {
    Ok(AccessRule {
        name: row.get("name")?,
        priority: row.get("priority")?,
        users: json_list(&row.get::<_, String>("users")?)?,
        groups: json_list(&row.get::<_, String>("groups")?)?,
        platforms: json_list(&row.get::<_, String>("platforms")?)?,
        clients: json_list(&row.get::<_, String>("clients")?)?,
        device_states: json_list(&row.get::<_, String>("device_states")?)?,
        networks: json_list(&row.get::<_, String>("networks")?)?,
        action: row.get("action")?,
    })
}

pub(crate) fn list_rules(c: &Connection) -> Result<Vec<AccessRule>> {
    let mut stmt = c.prepare_cached("SELECT * FROM access_rules ORDER BY priority, name")?;
    let rows = stmt.query_map([], rule_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn remove_rule(tx: &Connection, ctx: &Ctx, name: &str) -> Result<()> {
    if tx.execute("DELETE FROM access_rules WHERE name = ?1", [name])? == 0 {
        return Err(StoreError::not_found("access rule", name));
    }
    record(tx, ctx, "policy.remove", "rule", name, "")
}

pub(crate) fn set_override(
    tx: &Connection,
    ctx: &Ctx,
    eas_device_id: &str,
    action: &str,
    reason: Option<&str>,
    unmanaged: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO eas_overrides (eas_device_id, action, reason, unmanaged, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (eas_device_id) DO UPDATE SET action = excluded.action, reason = excluded.reason, \
         unmanaged = excluded.unmanaged, created_at = excluded.created_at",
        params![eas_device_id, action, reason, unmanaged, ctx.now],
    )?;
    let detail = match (unmanaged, reason) {
        (true, Some(r)) => format!("without a certificate (--unmanaged); {r}"),
        (true, None) => "without a certificate (--unmanaged)".to_string(),
        (false, r) => r.unwrap_or("").to_string(),
    };
    record(
        tx,
        ctx,
        &format!("eas.{action}"),
        "override",
        eas_device_id,
        &detail,
    )
}

pub(crate) fn list_overrides(c: &Connection) -> Result<Vec<EasOverride>> {
    let mut stmt = c.prepare_cached("SELECT * FROM eas_overrides ORDER BY eas_device_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(EasOverride {
            eas_device_id: r.get("eas_device_id")?,
            action: r.get("action")?,
            reason: r.get("reason")?,
            unmanaged: r.get("unmanaged")?,
            created_at: r.get("created_at")?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn save_partnerships(tx: &Connection, partnerships: &[Partnership]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO eas_partnerships (user, eas_device_id, device_type, model, os, friendly_name, user_agent, client, platform, protocol, \
         first_seen, last_seen, last_sync, last_command, cert_serial, device_state, access_state, access_reason, \
         suspect, last_refusal_at, last_refusal, policy_applied, policy_key, policy_status, policy_updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
         ?22, ?23, ?24, ?25) \
         ON CONFLICT (user, eas_device_id, suspect) DO UPDATE SET device_type = excluded.device_type, model = excluded.model, \
         os = excluded.os, friendly_name = excluded.friendly_name, user_agent = excluded.user_agent, client = excluded.client, \
         platform = excluded.platform, protocol = excluded.protocol, first_seen = MIN(first_seen, excluded.first_seen), \
         last_seen = excluded.last_seen, last_sync = excluded.last_sync, last_command = excluded.last_command, \
         cert_serial = excluded.cert_serial, device_state = excluded.device_state, access_state = excluded.access_state, \
         access_reason = excluded.access_reason, last_refusal_at = excluded.last_refusal_at, \
         last_refusal = excluded.last_refusal, policy_applied = excluded.policy_applied, \
         policy_key = excluded.policy_key, policy_status = excluded.policy_status, \
         policy_updated_at = excluded.policy_updated_at \
         WHERE excluded.last_seen >= eas_partnerships.last_seen",
    )?;
    for p in partnerships {
        stmt.execute(params![
            p.user,
            p.eas_device_id,
            p.device_type,
            p.model,
            p.os,
            p.friendly_name,
            p.user_agent,
            p.client,
            p.platform,
            p.protocol,
            p.first_seen,
            p.last_seen,
            p.last_sync,
            p.last_command,
            p.cert_serial,
            p.device_state,
            p.access_state,
            p.access_reason,
            p.suspect,
            p.last_refusal_at,
            p.last_refusal,
            p.policy_applied,
            p.policy_key,
            p.policy_status,
            p.policy_updated_at
        ])?;
    }
    Ok(())
}

/// A partnership's columns in the order [`partnership_from_row`] reads them by position (a
/// lookup by name compares the name with every column's: a third of a 100-row page's time).
pub(crate) const PARTNERSHIP_SELECT: &str =
    "SELECT user, eas_device_id, suspect, device_type, model, os, friendly_name, user_agent, \
     client, platform, protocol, first_seen, last_seen, last_sync, last_command, cert_serial, \
     device_state, access_state, access_reason, last_refusal_at, last_refusal, policy_applied, \
     policy_key, policy_status, policy_updated_at \
     FROM eas_partnerships";

/// A row of [`PARTNERSHIP_SELECT`].
pub(crate) fn partnership_from_row(r: &Row<'_>) -> rusqlite::Result<Partnership> {
    Ok(Partnership {
        user: r.get(0)?,
        eas_device_id: r.get(1)?,
        suspect: r.get(2)?,
        device_type: r.get(3)?,
        model: r.get(4)?,
        os: r.get(5)?,
        friendly_name: r.get(6)?,
        user_agent: r.get(7)?,
        client: r.get(8)?,
        platform: r.get(9)?,
        protocol: r.get(10)?,
        first_seen: r.get(11)?,
        last_seen: r.get(12)?,
        last_sync: r.get(13)?,
        last_command: r.get(14)?,
        cert_serial: r.get(15)?,
        device_state: r.get(16)?,
        access_state: r.get(17)?,
        access_reason: r.get(18)?,
        last_refusal_at: r.get(19)?,
        last_refusal: r.get(20)?,
        policy_applied: r.get(21)?,
        policy_key: r.get(22)?,
        policy_status: r.get(23)?,
        policy_updated_at: r.get(24)?,
    })
}

pub(crate) fn list_partnerships(c: &Connection, user: Option<&str>) -> Result<Vec<Partnership>> {
    let mut stmt = c.prepare_cached(&format!(
        "{PARTNERSHIP_SELECT} WHERE ?1 IS NULL OR user = ?1 ORDER BY user, eas_device_id, suspect"
    ))?;
    let rows = stmt.query_map([user], partnership_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn get_partnerships(c: &Connection, eas_device_id: &str) -> Result<Vec<Partnership>> {
    let mut stmt = c.prepare_cached(&format!(
        "{PARTNERSHIP_SELECT} WHERE eas_device_id = ?1 ORDER BY last_seen DESC"
    ))?;
    let rows = stmt.query_map([eas_device_id], partnership_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forget one DeviceId: its partnerships, override and wipe record. One with nothing but a wipe
/// on record counts as found, since clearing is how an admin forgets a finished wipe.
pub(crate) fn clear_partnerships(tx: &Connection, ctx: &Ctx, eas_device_id: &str) -> Result<usize> {
    let removed = tx.execute(
        "DELETE FROM eas_partnerships WHERE eas_device_id = ?1",
        [eas_device_id],
    )?;
    let override_removed = tx.execute(
        "DELETE FROM eas_overrides WHERE eas_device_id = ?1",
        [eas_device_id],
    )?;
    let wipe_removed = crate::sqlite_provision::forget_wipe(tx, eas_device_id)?;
    if removed == 0 && override_removed == 0 && !wipe_removed {
        return Err(StoreError::not_found("EAS device", eas_device_id));
    }
    record(
        tx,
        ctx,
        "eas.clear",
        "override",
        eas_device_id,
        &format!("{removed} partnership(s)"),
    )?;
    Ok(removed)
}

pub(crate) fn save_bindings(
    tx: &Connection,
    bindings: &[CertificateBinding],
) -> Result<Vec<CertificateBinding>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO certificate_bindings (serial, eas_device_id, user, bound_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (serial) DO NOTHING",
    )?;
    let mut in_effect = Vec::with_capacity(bindings.len());
    for b in bindings {
        if insert.execute(params![b.serial, b.eas_device_id, b.user, b.bound_at])? == 1 {
            tx.prepare_cached("INSERT INTO changes (at, entity, key) VALUES (?1, 'binding', ?2)")?
                .execute(params![b.bound_at, b.serial])?;
            in_effect.push(b.clone());
        } else if let Some(stored) = get_binding(tx, &b.serial)? {
            in_effect.push(stored);
        }
    }
    Ok(in_effect)
}

pub(crate) fn get_binding(c: &Connection, serial: &str) -> Result<Option<CertificateBinding>> {
    Ok(
        c.prepare_cached("SELECT * FROM certificate_bindings WHERE serial = ?1")?
            .query_row([serial], binding_from_row)
            .optional()?,
    )
}

fn binding_from_row(r: &Row<'_>) -> rusqlite::Result<CertificateBinding> {
    Ok(CertificateBinding {
        serial: r.get("serial")?,
        eas_device_id: r.get("eas_device_id")?,
        user: r.get("user")?,
        bound_at: r.get("bound_at")?,
    })
}

pub(crate) fn device_bindings(
    c: &Connection,
    eas_device_id: &str,
) -> Result<Vec<CertificateBinding>> {
    let mut stmt = c.prepare_cached(
        "SELECT * FROM certificate_bindings WHERE eas_device_id = ?1 COLLATE NOCASE ORDER BY serial",
    )?;
    let rows = stmt.query_map([eas_device_id], binding_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn list_bindings(c: &Connection) -> Result<Vec<CertificateBinding>> {
    let mut stmt = c.prepare_cached("SELECT * FROM certificate_bindings ORDER BY serial")?;
    let rows = stmt.query_map([], binding_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
