//! Rows to records: the SELECTs several modules share and their mapping, so each record is
//! read the same way everywhere (as the SQLite backend's `*_from_row`).

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::model::*;

pub(crate) const TEMPLATE_SELECT: &str =
    "SELECT t.*, c.name AS ca_name FROM templates t JOIN cas c ON c.id = t.ca_id";
pub(crate) const DEVICE_SELECT: &str =
    "SELECT d.*, u.upn AS upn, t.name AS template_name FROM devices d \
     JOIN users u ON u.id = d.user_id LEFT JOIN templates t ON t.id = d.template_id";
pub(crate) const CERT_SELECT: &str =
    "SELECT k.*, c.name AS ca_name, d.uid AS device_uid, t.name AS template_name \
     FROM certificates k JOIN cas c ON c.id = k.ca_id \
     LEFT JOIN devices d ON d.id = k.device_id LEFT JOIN templates t ON t.id = k.template_id";
pub(crate) const PROFILE_SELECT: &str =
    "SELECT p.*, t.name AS template_name FROM profiles p JOIN templates t ON t.id = p.template_id";

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub(crate) fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("a JSON list: {e}")))
}

fn days(row: &PgRow, column: &str) -> Result<u32> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} = {value}")))
}

pub(crate) fn template_from_row(row: &PgRow) -> Result<Template> {
    Ok(Template {
        name: row.try_get("name")?,
        ca: row.try_get("ca_name")?,
        subject: row.try_get("subject")?,
        sans: json_list(row.try_get("sans")?)?,
        key_type: row.try_get("key_type")?,
        validity_days: days(row, "validity_days")?,
        renew_before_days: days(row, "renew_before_days")?,
        is_default: row.try_get("is_default")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) fn device_from_row(row: &PgRow) -> Result<Device> {
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

fn cert_status(stored: &str, not_after: i64, now: i64) -> Result<CertStatus> {
    Ok(match stored {
        "revoked" => CertStatus::Revoked,
        "valid" if not_after < now => CertStatus::Expired,
        "valid" => CertStatus::Valid,
        other => return Err(StoreError::Corrupt(format!("certificate status `{other}`"))),
    })
}

pub(crate) fn cert_from_row(row: &PgRow, now: i64) -> Result<Certificate> {
    let not_after: i64 = row.try_get("not_after")?;
    Ok(Certificate {
        serial: row.try_get("serial")?,
        ca: row.try_get("ca_name")?,
        device: row.try_get("device_uid")?,
        template: row.try_get("template_name")?,
        subject: row.try_get("subject")?,
        sans: json_list(row.try_get("sans")?)?,
        key_type: row.try_get("key_type")?,
        not_before: row.try_get("not_before")?,
        not_after,
        status: cert_status(row.try_get("status")?, not_after, now)?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        issued_at: row.try_get("issued_at")?,
        der: row.try_get("der")?,
    })
}

pub(crate) fn profile_from_row(row: &PgRow) -> Result<Profile> {
    Ok(Profile {
        name: row.try_get("name")?,
        platform: row.try_get("platform")?,
        template: row.try_get("template_name")?,
        eas_host: row.try_get("eas_host")?,
        account_name: row.try_get("account_name")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        domain: row.try_get("domain")?,
        delivery: row.try_get("delivery")?,
        groups: json_list(row.try_get("groups")?)?,
        created_at: row.try_get("created_at")?,
    })
}
