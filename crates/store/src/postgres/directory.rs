//! CAs (listing, removal, SCEP switches), trusted CAs, groups and users: the directory the
//! admin edits, with SQLite's NOCASE comparisons for UPNs and group names done through
//! lower() (see the migration's header).

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::{Result, StoreError};
use crate::model::*;

use super::write::{id_of, names_where, record, revoke_where, unique_violation, NOCASE_1};
use super::PgStore;

fn ca_from_row(row: &PgRow) -> Result<Ca> {
    Ok(Ca {
        name: row.try_get("name")?,
        key_type: row.try_get("key_type")?,
        subject: row.try_get("subject")?,
        cert_der: row.try_get("cert_der")?,
        key_sealed: row.try_get("key_sealed")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        created_at: row.try_get("created_at")?,
        scep_no_des: row.try_get("scep_no_des")?,
        scep_ra_only: row.try_get("scep_ra_only")?,
    })
}

fn trusted_from_row(row: &PgRow) -> Result<TrustedCa> {
    Ok(TrustedCa {
        name: row.try_get("name")?,
        subject: row.try_get("subject")?,
        cert_der: row.try_get("cert_der")?,
        crl_url: row.try_get("crl_url")?,
        delta_crl_url: row.try_get("delta_crl_url")?,
        created_at: row.try_get("created_at")?,
    })
}

/// (user id, group name) of one user's or every user's memberships, by group name.
async fn user_groups(conn: &mut PgConnection, user_id: Option<i64>) -> Result<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT ug.user_id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
         WHERE ($1::bigint IS NULL OR ug.user_id = $1) ORDER BY lower(g.name)",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

fn user_from_row(row: &PgRow, groups: &[(i64, String)]) -> Result<User> {
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

pub(crate) async fn get_user(conn: &mut PgConnection, upn: &str) -> Result<Option<User>> {
    let row = sqlx::query(&format!(
        "SELECT * FROM users WHERE lower(upn) = {NOCASE_1}"
    ))
    .bind(upn)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    let groups = user_groups(conn, Some(id)).await?;
    Ok(Some(user_from_row(&row, &groups)?))
}

pub(crate) async fn user_id(conn: &mut PgConnection, upn: &str) -> Result<i64> {
    id_of(
        conn,
        &format!("SELECT id FROM users WHERE lower(upn) = {NOCASE_1}"),
        upn,
        "user",
    )
    .await
}

pub(crate) async fn group_id(conn: &mut PgConnection, name: &str) -> Result<i64> {
    id_of(
        conn,
        &format!("SELECT id FROM groups WHERE lower(name) = {NOCASE_1}"),
        name,
        "group",
    )
    .await
}

impl PgStore {
    pub async fn list_cas(&self) -> Result<Vec<Ca>> {
        let rows = sqlx::query("SELECT * FROM cas WHERE removed_at IS NULL ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ca_from_row).collect()
    }

    pub async fn get_ca(&self, name: &str) -> Result<Option<Ca>> {
        let row = sqlx::query("SELECT * FROM cas WHERE name = $1 AND removed_at IS NULL")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ca_from_row).transpose()
    }

    pub async fn remove_ca(
        &self,
        ctx: &Ctx,
        name: &str,
        revoke: Option<Revocation>,
    ) -> Result<Vec<String>> {
        let mut tx = self.write_tx().await?;
        let id = id_of(
            &mut tx,
            "SELECT id FROM cas WHERE name = $1 AND removed_at IS NULL",
            name,
            "CA",
        )
        .await?;
        let valid: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM certificates WHERE ca_id = $1 AND device_id IS NOT NULL \
             AND status = 'valid' AND not_after > $2",
        )
        .bind(id)
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await?;
        let revoked = match &revoke {
            Some(r) => revoke_where(&mut tx, "device_id IS NOT NULL AND ca_id = $1", id, r).await?,
            None if valid > 0 => {
                return Err(StoreError::Conflict(format!(
                    "CA `{name}` has {valid} valid device certificate(s): revoke them first, or pass --revoke-all"
                )))
            }
            None => Vec::new(),
        };
        let reason = revoke.as_ref().map_or("", |r| r.reason.as_str());
        for serial in &revoked {
            record(&mut tx, ctx, "cert.revoke", "certificate", serial, reason).await?;
        }
        let kept = format!("{name}.removed-{}", ctx.now);
        sqlx::query("UPDATE cas SET name = $1, removed_at = $2 WHERE id = $3")
            .bind(&kept)
            .bind(ctx.now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = format!("revoked {} certificate(s); kept as `{kept}`", revoked.len());
        record(&mut tx, ctx, "ca.remove", "ca", name, &detail).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    pub async fn set_ca_scep_no_des(&self, ctx: &Ctx, name: &str, refuse: bool) -> Result<()> {
        let detail = if refuse {
            "refuse single DES"
        } else {
            "accept single DES"
        };
        self.set_ca_flag(ctx, name, "scep_no_des", refuse, "ca.scep_des", detail)
            .await
    }

    pub async fn set_ca_scep_ra_only(&self, ctx: &Ctx, name: &str, ra_only: bool) -> Result<()> {
        let detail = if ra_only {
            "GetCACert: the RA alone"
        } else {
            "GetCACert: the CA and its RA"
        };
        self.set_ca_flag(ctx, name, "scep_ra_only", ra_only, "ca.scep_cacert", detail)
            .await
    }

    /// Set one of a live (not removed) CA's SCEP switches, audited as `action`.
    async fn set_ca_flag(
        &self,
        ctx: &Ctx,
        name: &str,
        column: &'static str,
        value: bool,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(&format!(
            "UPDATE cas SET {column} = $1 WHERE name = $2 AND removed_at IS NULL"
        ))
        .bind(value)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::not_found("CA", name));
        }
        record(&mut tx, ctx, action, "ca", name, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_trusted_ca(&self, ctx: &Ctx, ca: NewTrustedCa) -> Result<TrustedCa> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO trusted_cas (name, subject, cert_der, crl_url, delta_crl_url, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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

    pub async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>> {
        let rows = sqlx::query("SELECT * FROM trusted_cas ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trusted_from_row).collect()
    }

    pub async fn remove_trusted_ca(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM trusted_cas WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::not_found("trusted CA", name));
        }
        record(&mut tx, ctx, "trust.remove", "trusted_ca", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_group(&self, ctx: &Ctx, name: &str) -> Result<Group> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO groups (name, created_at) VALUES ($1, $2)")
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

    pub async fn remove_group(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id = group_id(&mut tx, name).await?;
        let users = names_where(
            &mut tx,
            &format!(
                "SELECT name FROM access_rules WHERE EXISTS (SELECT 1 FROM \
                 json_array_elements_text(access_rules.groups::json) v \
                 WHERE lower(v COLLATE \"C\") = {NOCASE_1}) \
                 UNION ALL SELECT 'profile ' || name FROM profiles WHERE EXISTS (SELECT 1 FROM \
                 json_array_elements_text(profiles.groups::json) v \
                 WHERE lower(v COLLATE \"C\") = {NOCASE_1})"
            ),
            name,
        )
        .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "group `{name}` is named by {}: change or remove them first",
                users.join(", ")
            )));
        }
        let members = sqlx::query("DELETE FROM user_groups WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = format!("{members} member(s)");
        record(&mut tx, ctx, "group.remove", "group", name, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.name, g.created_at, (SELECT COUNT(*) FROM user_groups ug \
             WHERE ug.group_id = g.id) AS members FROM groups g ORDER BY lower(g.name)",
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

    pub async fn insert_user(&self, ctx: &Ctx, user: NewUser) -> Result<User> {
        let mut tx = self.write_tx().await?;
        let mut group_ids = Vec::new();
        for group in &user.groups {
            group_ids.push(group_id(&mut tx, group).await?);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (upn, email, display_name, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(&user.upn)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "user", &user.upn))?;
        for gid in group_ids {
            sqlx::query(
                "INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(gid)
            .execute(&mut *tx)
            .await?;
        }
        record(&mut tx, ctx, "user.add", "user", &user.upn, &user.email).await?;
        let stored = get_user(&mut tx, &user.upn)
            .await?
            .ok_or_else(|| StoreError::not_found("user", user.upn.clone()))?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let mut conn = self.pool.acquire().await?;
        let groups = user_groups(&mut conn, None).await?;
        let rows = sqlx::query("SELECT * FROM users ORDER BY lower(upn)")
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(|r| user_from_row(r, &groups)).collect()
    }

    pub async fn get_user(&self, upn: &str) -> Result<Option<User>> {
        let mut conn = self.pool.acquire().await?;
        get_user(&mut conn, upn).await
    }

    pub async fn remove_user(&self, ctx: &Ctx, upn: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id = user_id(&mut tx, upn).await?;
        let devices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if devices > 0 {
            return Err(StoreError::Conflict(format!(
                "user `{upn}` has {devices} device(s), whose certificates must stay attributable: `easgate user disable {upn}` cuts them off and keeps the record"
            )));
        }
        let rules = names_where(
            &mut tx,
            &format!(
                "SELECT name FROM access_rules WHERE EXISTS (SELECT 1 FROM \
                 json_array_elements_text(access_rules.users::json) v \
                 WHERE lower(v COLLATE \"C\") = {NOCASE_1})"
            ),
            upn,
        )
        .await?;
        if !rules.is_empty() {
            return Err(StoreError::Conflict(format!(
                "user `{upn}` is named by access rule(s) {}: remove them first",
                rules.join(", ")
            )));
        }
        for sql in [
            "DELETE FROM user_groups WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        record(&mut tx, ctx, "user.remove", "user", upn, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_user(&self, ctx: &Ctx, upn: &str, change: UserChange) -> Result<User> {
        let mut tx = self.write_tx().await?;
        let uid = user_id(&mut tx, upn).await?;
        let mut what = Vec::new();
        if let Some(email) = &change.email {
            sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                .bind(email)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            what.push(format!("email {email}"));
        }
        if let Some(name) = &change.display_name {
            sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
                .bind(name)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            what.push(format!("name {name}"));
        }
        for group in &change.add_groups {
            let gid = group_id(&mut tx, group).await?;
            sqlx::query(
                "INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(uid)
            .bind(gid)
            .execute(&mut *tx)
            .await?;
            what.push(format!("+group {group}"));
        }
        for group in &change.remove_groups {
            let gid = group_id(&mut tx, group).await?;
            sqlx::query("DELETE FROM user_groups WHERE user_id = $1 AND group_id = $2")
                .bind(uid)
                .bind(gid)
                .execute(&mut *tx)
                .await?;
            what.push(format!("-group {group}"));
        }
        let user = get_user(&mut tx, upn)
            .await?
            .ok_or_else(|| StoreError::not_found("user", upn))?;
        record(
            &mut tx,
            ctx,
            "user.set",
            "user",
            &user.upn,
            &what.join(", "),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        upn: &str,
        disabled: bool,
        revoke: Option<Revocation>,
    ) -> Result<(User, Vec<String>)> {
        let mut tx = self.write_tx().await?;
        let id = user_id(&mut tx, upn).await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revoked = match &revoke {
            Some(r) => {
                revoke_where(
                    &mut tx,
                    "device_id IN (SELECT id FROM devices WHERE user_id = $1)",
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
        let detail = format!("revoked {} certificate(s)", revoked.len());
        record(&mut tx, ctx, action, "user", upn, &detail).await?;
        let reason = revoke.as_ref().map_or("", |r| r.reason.as_str());
        for serial in &revoked {
            record(&mut tx, ctx, "cert.revoke", "certificate", serial, reason).await?;
        }
        let user = get_user(&mut tx, upn)
            .await?
            .ok_or_else(|| StoreError::not_found("user", upn))?;
        tx.commit().await?;
        Ok((user, revoked))
    }
}
