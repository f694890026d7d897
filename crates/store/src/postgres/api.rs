//! What the admin API reads and writes beyond the CLI's records: API tokens and the paged
//! lists (partnerships, devices, certificates, audit events). Each page resumes after its
//! cursor in key order (`WHERE key > $1`), never with OFFSET.
//!
//! SQLite's LIKE is case-insensitive for ASCII; here the same filters use ILIKE on "C"
//! collation text (ASCII-only folding too), with LIKE's own wildcards in the search text
//! escaped, as the SQLite backend does.

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::model::*;

use super::gateway::{partnership_from_row, PARTNERSHIP_ORDER, PARTNERSHIP_SELECT};
use super::pki::audit_from_row;
use super::rows::{cert_from_row, device_from_row, CERT_SELECT, DEVICE_SELECT};
use super::write::{record, unique_violation, NOCASE_1};
use super::PgStore;

fn token_from_row(r: &PgRow) -> Result<ApiToken> {
    Ok(ApiToken {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        hash: r.try_get("hash")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// `%text%` for ILIKE, with LIKE's own wildcards in `text` taken literally.
fn like_pattern(text: Option<&str>) -> Option<String> {
    text.map(|t| {
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    })
}

/// A text column matched case-insensitively (ASCII) against an escaped pattern parameter.
fn ilike(column: &str, param: &str) -> String {
    format!("({column} COLLATE \"C\") ILIKE {param} ESCAPE '\\'")
}

impl PgStore {
    pub async fn insert_api_token(&self, ctx: &Ctx, t: NewApiToken) -> Result<ApiToken> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_tokens (name, role, hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.name)
        .bind(&t.role)
        .bind(&t.hash)
        .bind(ctx.now)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "token", &t.name))?;
        let expiry = t
            .expires_at
            .map_or_else(|| "no expiry".to_string(), |at| format!("expires {at}"));
        let detail = format!("role {}, {expiry}", t.role);
        record(&mut tx, ctx, "token.create", "token", &t.name, &detail).await?;
        tx.commit().await?;
        Ok(ApiToken {
            name: t.name,
            role: t.role,
            hash: t.hash,
            created_at: ctx.now,
            expires_at: t.expires_at,
            revoked_at: None,
        })
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY lower(name), id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn api_token_by_hash(&self, hash_hex: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE hash = $1")
            .bind(hash_hex)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn revoke_api_token(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let revoked = sqlx::query(&format!(
            "UPDATE api_tokens SET revoked_at = $2 WHERE lower(name) = {NOCASE_1} \
             AND revoked_at IS NULL"
        ))
        .bind(name)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if revoked == 0 {
            return Err(StoreError::not_found("token", name));
        }
        record(&mut tx, ctx, "token.revoke", "token", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn page_partnerships(
        &self,
        filter: &PartnershipFilter,
        page: &PageQuery<PartnershipKey>,
    ) -> Result<Vec<Partnership>> {
        let (after_user, after_id, after_suspect) = match &page.after {
            Some((u, d, s)) => (Some(u.as_str()), Some(d.as_str()), *s),
            None => (None, None, false),
        };
        let after = if page.after.is_some() {
            "(lower(\"user\"), lower(eas_device_id), suspect) > \
             (lower($1::text COLLATE \"C\"), lower($2::text COLLATE \"C\"), $3)"
        } else {
            "($1::text IS NULL AND $2::text IS NULL AND $3::boolean IS NOT NULL)"
        };
        let text_match = [
            "eas_device_id",
            "\"user\"",
            "model",
            "friendly_name",
            "user_agent",
        ]
        .map(|c| ilike(c, "$7"))
        .join(" OR ");
        let rows = sqlx::query(&format!(
            "{PARTNERSHIP_SELECT} WHERE {after} \
               AND ($4::text IS NULL OR lower(\"user\") = lower($4::text COLLATE \"C\")) \
               AND ($5::text IS NULL OR access_state = $5) \
               AND ($6::text IS NULL OR device_state = $6) \
               AND ($7::text IS NULL OR {text_match}) \
               AND ($9::text IS NULL OR platform = $9) AND ($10::text IS NULL OR client = $10) \
             ORDER BY {PARTNERSHIP_ORDER} LIMIT $8"
        ))
        .bind(after_user)
        .bind(after_id)
        .bind(after_suspect)
        .bind(filter.user.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.status.as_deref())
        .bind(like_pattern(filter.text.as_deref()))
        .bind(i64::from(page.limit))
        .bind(filter.platform.as_deref())
        .bind(filter.client.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partnership_from_row).collect()
    }

    pub async fn page_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Device>> {
        let after = if page.after.is_some() {
            "d.uid > $1"
        } else {
            "$1::text IS NULL"
        };
        let text_match = ["d.uid", "u.upn", "d.device_serial"]
            .map(|c| ilike(c, "$5"))
            .join(" OR ");
        let rows = sqlx::query(&format!(
            "{DEVICE_SELECT} WHERE {after} \
             AND ($2::text IS NULL OR lower(u.upn) = lower($2::text COLLATE \"C\")) \
             AND ($3::text IS NULL OR d.state = $3) AND ($4::text IS NULL OR d.platform = $4) \
             AND ($5::text IS NULL OR {text_match}) ORDER BY d.uid LIMIT $6"
        ))
        .bind(page.after.as_deref())
        .bind(filter.user.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.platform.as_deref())
        .bind(like_pattern(filter.text.as_deref()))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    pub async fn page_certificates(
        &self,
        filter: &CertPageFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Certificate>> {
        let status_clause = match filter.status {
            None => "TRUE",
            Some(CertStatus::Valid) => "k.status = 'valid' AND k.not_after >= $7",
            Some(CertStatus::Expired) => "k.status = 'valid' AND k.not_after < $7",
            Some(CertStatus::Revoked) => "k.status = 'revoked'",
        };
        let after = if page.after.is_some() {
            "k.serial > $1"
        } else {
            "$1::text IS NULL"
        };
        let text_match = ["k.subject", "k.serial"]
            .map(|c| ilike(c, "$4"))
            .join(" OR ");
        let rows = sqlx::query(&format!(
            "{CERT_SELECT} WHERE {after} AND ($2::text IS NULL OR d.uid = $2) \
             AND ($3::text IS NULL OR c.name = $3) \
             AND ($4::text IS NULL OR {text_match}) \
             AND ($5::text IS NULL OR d.user_id = (SELECT id FROM users \
                  WHERE lower(upn) = lower($5::text COLLATE \"C\"))) \
             AND {status_clause} AND $7::bigint = $7 ORDER BY k.serial LIMIT $6"
        ))
        .bind(page.after.as_deref())
        .bind(filter.device.as_deref())
        .bind(filter.ca.as_deref())
        .bind(like_pattern(filter.text.as_deref()))
        .bind(filter.user.as_deref())
        .bind(i64::from(page.limit))
        .bind(filter.now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| cert_from_row(r, filter.now)).collect()
    }

    pub async fn page_audit(
        &self,
        filter: &AuditFilter,
        page: &PageQuery<i64>,
    ) -> Result<Vec<AuditEvent>> {
        let (after, order) = match (page.after.is_some(), filter.newest_first) {
            (true, true) => ("id < $1", "DESC"),
            (true, false) => ("id > $1", "ASC"),
            (false, true) => ("$1::bigint IS NULL", "DESC"),
            (false, false) => ("$1::bigint IS NULL", "ASC"),
        };
        // As SQLite: the action filter matches the action or its sub-actions (`cert` matches
        // `cert.issue`), case-insensitively, with no escaping of its own wildcards.
        let text_match = ["target", "detail"].map(|c| ilike(c, "$6")).join(" OR ");
        let rows = sqlx::query(&format!(
            "SELECT * FROM audit_events WHERE {after} AND ($2::bigint IS NULL OR at >= $2) \
             AND ($3::text IS NULL OR actor = $3) \
             AND ($4::text IS NULL OR action = $4 \
                  OR (action COLLATE \"C\") ILIKE ($4 || '.%') ESCAPE '') \
             AND ($5::text IS NULL OR lower(target COLLATE \"C\") = lower($5::text COLLATE \"C\") \
                  OR lower(substr(target, strpos(target, ':') + 1) COLLATE \"C\") \
                     = lower($5::text COLLATE \"C\")) \
             AND ($6::text IS NULL OR {text_match}) \
             ORDER BY id {order} LIMIT $7"
        ))
        .bind(page.after)
        .bind(filter.since)
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.subject.as_deref())
        .bind(like_pattern(filter.text.as_deref()))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
