//! SQLite statements for device profiles, profile-download tokens, easgate's own service keys
//! and certificate renewals. Kept apart from `sqlite.rs`, which holds the PKI and directory
//! records.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::model::{
    Ctx, ExpiringCertificate, NewChallenge, NewProfile, NewRenewal, Profile, ProfileToken, Renewal,
    ServiceKey, TokenState,
};
use crate::sqlite::{cert_from_row, id_of, json_list, record, to_json, unique_violation};

const PROFILE_SELECT: &str = "SELECT p.*, t.name AS template_name FROM profiles p \
     JOIN templates t ON t.id = p.template_id";

fn profile_from_row(row: &Row<'_>) -> rusqlite::Result<Profile> {
    Ok(Profile {
        name: row.get("name")?,
        platform: row.get("platform")?,
        template: row.get("template_name")?,
        eas_host: row.get("eas_host")?,
        account_name: row.get("account_name")?,
        email: row.get("email")?,
        username: row.get("username")?,
        domain: row.get("domain")?,
        delivery: row.get("delivery")?,
        groups: json_list(&row.get::<_, String>("groups")?)?,
        created_at: row.get("created_at")?,
    })
}

pub(crate) fn get_profile(conn: &Connection, name: &str) -> Result<Option<Profile>> {
    Ok(conn
        .prepare_cached(&format!("{PROFILE_SELECT} WHERE p.name = ?1"))?
        .query_row([name], profile_from_row)
        .optional()?)
}

pub(crate) fn list_profiles(conn: &Connection) -> Result<Vec<Profile>> {
    let mut stmt = conn.prepare_cached(&format!("{PROFILE_SELECT} ORDER BY p.name"))?;
    let rows = stmt.query_map([], profile_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn insert_profile(tx: &Connection, ctx: &Ctx, p: &NewProfile) -> Result<Profile> {
    let template_id = id_of(
        tx,
        "SELECT id FROM templates WHERE name = ?1",
        &p.template,
        "template",
    )?;
    for group in &p.groups {
        id_of(tx, "SELECT id FROM groups WHERE name = ?1", group, "group")?;
    }
    tx.execute(
        "INSERT INTO profiles (name, platform, template_id, eas_host, account_name, email, username, domain, delivery, groups, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            p.name, p.platform, template_id, p.eas_host, p.account_name, p.email, p.username,
            p.domain, p.delivery, to_json(&p.groups), ctx.now
        ],
    )
    .map_err(|e| unique_violation(e, "profile", &p.name))?;
    record(
        tx,
        ctx,
        "profile.create",
        "profile",
        &p.name,
        &format!("{} via {} for {}", p.platform, p.delivery, p.eas_host),
    )?;
    get_profile(tx, &p.name)?.ok_or_else(|| StoreError::not_found("profile", p.name.clone()))
}

pub(crate) fn remove_profile(tx: &Connection, ctx: &Ctx, name: &str) -> Result<()> {
    if tx.execute("DELETE FROM profiles WHERE name = ?1", [name])? == 0 {
        return Err(StoreError::not_found("profile", name));
    }
    record(tx, ctx, "profile.remove", "profile", name, "")
}

pub(crate) fn get_service_key(
    conn: &Connection,
    ca: &str,
    role: &str,
) -> Result<Option<ServiceKey>> {
    Ok(conn
        .prepare_cached(
            "SELECT k.cert_der, k.key_sealed FROM service_keys k JOIN cas c ON c.id = k.ca_id \
             WHERE c.name = ?1 AND k.role = ?2",
        )?
        .query_row([ca, role], |r| {
            Ok(ServiceKey {
                ca: ca.to_string(),
                role: role.to_string(),
                cert_der: r.get(0)?,
                key_sealed: r.get(1)?,
            })
        })
        .optional()?)
}

pub(crate) fn insert_service_key(tx: &Connection, ctx: &Ctx, key: &ServiceKey) -> Result<()> {
    let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", &key.ca, "CA")?;
    tx.execute(
        "INSERT INTO service_keys (ca_id, role, cert_der, key_sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![ca_id, key.role, key.cert_der, key.key_sealed, ctx.now],
    )
    .map_err(|e| unique_violation(e, "service key of CA", &format!("{} {}", key.ca, key.role)))?;
    record(tx, ctx, "service-key.create", "ca", &key.ca, &key.role)
}

/// A device's one-time SCEP challenge (hash) until `expires_at`.
pub(crate) fn insert_challenge(
    tx: &Connection,
    ctx: &Ctx,
    device_id: i64,
    hash_hex: &str,
    expires_at: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO scep_challenges (device_id, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![device_id, hash_hex, ctx.now, expires_at])?;
    Ok(())
}

/// A device's challenge and profile-download token together (enrollment, renewal).
pub(crate) fn insert_secrets(
    tx: &Connection,
    ctx: &Ctx,
    device_id: i64,
    secrets: &NewChallenge,
) -> Result<()> {
    insert_challenge(tx, ctx, device_id, &secrets.hash_hex, secrets.expires_at)?;
    tx.prepare_cached(
        "INSERT INTO profile_tokens (device_id, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![device_id, secrets.profile_token_hash_hex, ctx.now, secrets.expires_at])?;
    Ok(())
}

pub(crate) fn add_challenge(
    tx: &Connection,
    ctx: &Ctx,
    uid: &str,
    hash_hex: &str,
    expires_at: i64,
) -> Result<()> {
    let device_id = id_of(tx, "SELECT id FROM devices WHERE uid = ?1", uid, "device")?;
    insert_challenge(tx, ctx, device_id, hash_hex, expires_at)?;
    record(tx, ctx, "scep.challenge.create", "device", uid, "")
}

pub(crate) fn profile_token(
    conn: &Connection,
    hash_hex: &str,
    now: i64,
) -> Result<Option<ProfileToken>> {
    Ok(conn
        .prepare_cached(
            "SELECT d.uid, p.used_at, p.expires_at FROM profile_tokens p \
             JOIN devices d ON d.id = p.device_id WHERE p.hash = ?1",
        )?
        .query_row([hash_hex], |r| {
            let used_at: Option<i64> = r.get(1)?;
            let expires_at: i64 = r.get(2)?;
            let state = match used_at {
                Some(at) => TokenState::Used(at),
                None if expires_at <= now => TokenState::Expired(expires_at),
                None => TokenState::Usable,
            };
            Ok(ProfileToken {
                device: r.get(0)?,
                state,
            })
        })
        .optional()?)
}

pub(crate) fn consume_profile_token(
    tx: &Connection,
    ctx: &Ctx,
    hash_hex: &str,
) -> Result<Option<String>> {
    let used: Option<String> = tx
        .query_row(
            "UPDATE profile_tokens SET used_at = ?1 \
             WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING (SELECT uid FROM devices WHERE devices.id = profile_tokens.device_id)",
            params![ctx.now, hash_hex],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(uid) = &used {
        record(
            tx,
            ctx,
            "profile.download",
            "device",
            uid,
            "one-time profile token used",
        )?;
    }
    Ok(used)
}

/// Start a renewal unless one exists for the serial; `false` when it did.
pub(crate) fn start_renewal(tx: &Connection, ctx: &Ctx, renewal: &NewRenewal) -> Result<bool> {
    let device_id = id_of(
        tx,
        "SELECT id FROM devices WHERE uid = ?1",
        &renewal.device,
        "device",
    )?;
    let inserted = tx.execute(
        "INSERT INTO renewals (device_id, serial, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (serial) DO NOTHING",
        params![device_id, renewal.serial, ctx.now],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    insert_secrets(tx, ctx, device_id, &renewal.secrets)?;
    record(
        tx,
        ctx,
        "renewal.start",
        "device",
        &renewal.device,
        &format!(
            "certificate {} is inside its renewal window",
            renewal.serial
        ),
    )?;
    Ok(true)
}

pub(crate) fn list_renewals(conn: &Connection) -> Result<Vec<Renewal>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.uid, r.serial, r.created_at, r.cleared_at FROM renewals r \
         JOIN devices d ON d.id = r.device_id ORDER BY r.created_at, r.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Renewal {
            device: r.get(0)?,
            serial: r.get(1)?,
            created_at: r.get(2)?,
            cleared_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A device got a new certificate: its pending renewals are done.
pub(crate) fn clear_renewals(
    tx: &Connection,
    ctx: &Ctx,
    device_id: i64,
    uid: &str,
    serial: &str,
) -> Result<()> {
    let cleared = tx
        .prepare_cached(
            "UPDATE renewals SET cleared_at = ?1 WHERE device_id = ?2 AND cleared_at IS NULL",
        )?
        .execute(params![ctx.now, device_id])?;
    if cleared > 0 {
        record(
            tx,
            ctx,
            "renewal.clear",
            "device",
            uid,
            &format!("renewed with certificate {serial}"),
        )?;
    }
    Ok(())
}

/// Valid device certificates inside their template's renewal window at `now`, without a newer
/// valid certificate for their device.
pub(crate) fn expiring_certificates(c: &Connection, now: i64) -> Result<Vec<ExpiringCertificate>> {
    let mut stmt = c.prepare_cached(
        "SELECT k.*, c.name AS ca_name, d.uid AS device_uid, t.name AS template_name, \
             k.not_after - t.renew_before_days * 86400 AS renew_from, \
             EXISTS (SELECT 1 FROM renewals r WHERE r.serial = k.serial) AS renewal_started \
             FROM certificates k JOIN cas c ON c.id = k.ca_id \
             JOIN devices d ON d.id = k.device_id JOIN templates t ON t.id = k.template_id \
             WHERE k.status = 'valid' AND k.not_after >= ?1 \
             AND k.not_after - t.renew_before_days * 86400 <= ?1 \
             AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.device_id = k.device_id \
                 AND n.status = 'valid' AND n.not_after >= ?1 AND n.not_before > k.not_before) \
             ORDER BY k.not_after, k.serial",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(ExpiringCertificate {
            certificate: cert_from_row(r, now)?,
            renew_from: r.get("renew_from")?,
            renewal_started: r.get("renewal_started")?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
