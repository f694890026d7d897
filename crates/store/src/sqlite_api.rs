//! SQLite statements behind the admin API: API tokens, and the paged lists (partnerships,
//! devices, certificates, audit events). Each page is one range scan of an index in key order
//! from the cursor (`WHERE key > ?`), never an OFFSET, so a deep page costs what the first does.
//!
//! The cursor's condition is in a page's SQL only when there is a cursor ([`after`]): SQLite
//! cannot search an index with `?1 IS NULL OR key > ?1` and plans it as a scan from the first
//! row, filtering, so page 900 of 100,000 partnerships read 89,900 rows to skip them.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::model::{
    ApiToken, AuditEvent, AuditFilter, CertPageFilter, CertStatus, Certificate, Ctx, Device,
    DeviceFilter, NewApiToken, PageQuery, Partnership, PartnershipFilter, PartnershipKey,
};
use crate::sqlite::{
    cert_from_row, device_from_row, record, unique_violation, CERT_SELECT, DEVICE_SELECT,
};
use crate::sqlite_gateway::{partnership_from_row, PARTNERSHIP_SELECT};

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        name: r.get("name")?,
        role: r.get("role")?,
        hash: r.get("hash")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub(crate) fn insert_api_token(tx: &Connection, ctx: &Ctx, t: &NewApiToken) -> Result<ApiToken> {
    tx.execute(
        "INSERT INTO api_tokens (name, role, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![t.name, t.role, t.hash, ctx.now, t.expires_at],
    )
    .map_err(|e| unique_violation(e, "token", &t.name))?;
    let expiry = t
        .expires_at
        .map_or_else(|| "no expiry".to_string(), |at| format!("expires {at}"));
    record(
        tx,
        ctx,
        "token.create",
        "token",
        &t.name,
        &format!("role {}, {expiry}", t.role),
    )?;
    Ok(ApiToken {
        name: t.name.clone(),
        role: t.role.clone(),
        hash: t.hash.clone(),
        created_at: ctx.now,
        expires_at: t.expires_at,
        revoked_at: None,
    })
}

pub(crate) fn list_api_tokens(c: &Connection) -> Result<Vec<ApiToken>> {
    let mut stmt = c.prepare_cached("SELECT * FROM api_tokens ORDER BY name, id")?;
    let rows = stmt.query_map([], token_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn api_token_by_hash(c: &Connection, hash: &str) -> Result<Option<ApiToken>> {
    Ok(
        c.prepare_cached("SELECT * FROM api_tokens WHERE hash = ?1")?
            .query_row([hash], token_from_row)
            .optional()?,
    )
}

pub(crate) fn revoke_api_token(tx: &Connection, ctx: &Ctx, name: &str) -> Result<()> {
    let revoked = tx.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, ctx.now],
    )?;
    if revoked == 0 {
        return Err(StoreError::not_found("token", name));
    }
    record(tx, ctx, "token.revoke", "token", name, "")
}

/// The condition that resumes a page after its cursor: `range` (which reads the cursor's
/// parameters) when there is one, else a condition that is always true and leaves the index
/// scan in key order from the first row.
fn after<K>(page: &PageQuery<K>, range: &'static str) -> &'static str {
    if page.after.is_some() {
        range
    } else {
        "?1 IS NULL"
    }
}

/// `%text%` for LIKE, with LIKE's own wildcards in `text` taken literally.
fn like_pattern(text: Option<&str>) -> Option<String> {
    text.map(|t| {
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    })
}

pub(crate) fn page_partnerships(
    c: &Connection,
    filter: &PartnershipFilter,
    page: &PageQuery<PartnershipKey>,
) -> Result<Vec<Partnership>> {
    let (after_user, after_id, after_suspect) = match &page.after {
        Some((u, d, s)) => (Some(u.as_str()), Some(d.as_str()), *s),
        None => (None, None, false),
    };
    let after = after(page, "(user, eas_device_id, suspect) > (?1, ?2, ?3)");
    let mut stmt = c.prepare_cached(&format!(
        "{PARTNERSHIP_SELECT} \
         WHERE {after} \
           AND (?4 IS NULL OR user = ?4) AND (?5 IS NULL OR access_state = ?5) \
           AND (?6 IS NULL OR device_state = ?6) \
           AND (?7 IS NULL OR eas_device_id LIKE ?7 ESCAPE '\\' OR user LIKE ?7 ESCAPE '\\' \
                OR model LIKE ?7 ESCAPE '\\' OR friendly_name LIKE ?7 ESCAPE '\\' \
                OR user_agent LIKE ?7 ESCAPE '\\') \
           AND (?9 IS NULL OR platform = ?9) AND (?10 IS NULL OR client = ?10) \
         ORDER BY user, eas_device_id, suspect LIMIT ?8"
    ))?;
    let rows = stmt.query_map(
        params![
            after_user,
            after_id,
            after_suspect,
            filter.user,
            filter.state,
            filter.status,
            like_pattern(filter.text.as_deref()),
            page.limit,
            filter.platform,
            filter.client
        ],
        partnership_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn page_devices(
    c: &Connection,
    filter: &DeviceFilter,
    page: &PageQuery<String>,
) -> Result<Vec<Device>> {
    let after = after(page, "d.uid > ?1");
    let mut stmt = c.prepare_cached(&format!(
        "{DEVICE_SELECT} WHERE {after} AND (?2 IS NULL OR u.upn = ?2 COLLATE NOCASE) \
         AND (?3 IS NULL OR d.state = ?3) AND (?4 IS NULL OR d.platform = ?4) \
         AND (?5 IS NULL OR d.uid LIKE ?5 ESCAPE '\\' OR u.upn LIKE ?5 ESCAPE '\\' \
              OR d.device_serial LIKE ?5 ESCAPE '\\') \
         ORDER BY d.uid LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            page.after,
            filter.user,
            filter.state,
            filter.platform,
            like_pattern(filter.text.as_deref()),
            page.limit
        ],
        device_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn page_certificates(
    c: &Connection,
    filter: &CertPageFilter,
    page: &PageQuery<String>,
) -> Result<Vec<Certificate>> {
    let status_clause = match filter.status {
        None => "1 = 1",
        Some(CertStatus::Valid) => "k.status = 'valid' AND k.not_after >= ?7",
        Some(CertStatus::Expired) => "k.status = 'valid' AND k.not_after < ?7",
        Some(CertStatus::Revoked) => "k.status = 'revoked'",
    };
    let after = after(page, "k.serial > ?1");
    let mut stmt = c.prepare_cached(&format!(
        "{CERT_SELECT} WHERE {after} AND (?2 IS NULL OR d.uid = ?2) \
         AND (?3 IS NULL OR c.name = ?3) \
         AND (?4 IS NULL OR k.subject LIKE ?4 ESCAPE '\\' OR k.serial LIKE ?4 ESCAPE '\\') \
         AND (?5 IS NULL OR d.user_id = (SELECT id FROM users WHERE upn = ?5 COLLATE NOCASE)) \
         AND {status_clause} AND ?7 = ?7 ORDER BY k.serial LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            page.after,
            filter.device,
            filter.ca,
            like_pattern(filter.text.as_deref()),
            filter.user,
            page.limit,
            filter.now
        ],
        |r| cert_from_row(r, filter.now),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn page_audit(
    c: &Connection,
    filter: &AuditFilter,
    page: &PageQuery<i64>,
) -> Result<Vec<AuditEvent>> {
    let (after, order) = if filter.newest_first {
        (after(page, "id < ?1"), "DESC")
    } else {
        (after(page, "id > ?1"), "ASC")
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT * FROM audit_events WHERE {after} AND (?2 IS NULL OR at >= ?2) \
         AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4 OR action LIKE ?4 || '.%') \
         AND (?5 IS NULL OR target = ?5 COLLATE NOCASE \
              OR substr(target, instr(target, ':') + 1) = ?5 COLLATE NOCASE) \
         AND (?6 IS NULL OR target LIKE ?6 ESCAPE '\\' OR detail LIKE ?6 ESCAPE '\\') \
         ORDER BY id {order} LIMIT ?7"
    ))?;
    let rows = stmt.query_map(
        params![
            page.after,
            filter.since,
            filter.actor,
            filter.action,
            filter.subject,
            like_pattern(filter.text.as_deref()),
            page.limit
        ],
        |r| {
            Ok(AuditEvent {
                id: r.get("id")?,
                at: r.get("at")?,
                actor: r.get("actor")?,
                action: r.get("action")?,
                target: r.get("target")?,
                detail: r.get("detail")?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
