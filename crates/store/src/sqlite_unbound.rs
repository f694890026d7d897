//! SQLite statements for one-time SCEP challenges bound to no device (schema v13): the ones an
//! MDM fetches from the NDES-compatible page. Kept apart from device challenges because what
//! makes them valid differs: a device challenge names its device, these name at most a CA, and
//! the certificate request names the device.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::model::{Ctx, NewUnboundChallenge};
use crate::sqlite::{id_of, record};

/// The id of CA `name`, `NotFound` if there is none.
fn ca_id(conn: &Connection, name: &str) -> Result<i64> {
    id_of(conn, "SELECT id FROM cas WHERE name = ?1", name, "CA")
}

/// Insert one unless `max_live` unused, unexpired ones exist; audited `scep.challenge.create`
/// on `challenge:unbound`. The new row's id, or `None` when the limit is reached.
pub(crate) fn insert(tx: &Connection, ctx: &Ctx, c: &NewUnboundChallenge) -> Result<Option<i64>> {
    let live: i64 = tx.query_row(
        "SELECT count(*) FROM unbound_challenges WHERE used_at IS NULL AND expires_at > ?1",
        [ctx.now],
        |r| r.get(0),
    )?;
    if live >= c.max_live {
        return Ok(None);
    }
    let ca_id = c.ca.as_deref().map(|name| ca_id(tx, name)).transpose()?;
    tx.execute(
        "INSERT INTO unbound_challenges (hash, ca_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![c.hash_hex, ca_id, ctx.now, c.expires_at],
    )?;
    let id = tx.last_insert_rowid();
    let scope = match &c.ca {
        Some(ca) => format!("CA {ca}"),
        None => "any CA".to_string(),
    };
    record(
        tx,
        ctx,
        "scep.challenge.create",
        "challenge",
        "unbound",
        &format!(
            "unbound challenge {id} for {scope}, one-time, until {}",
            c.expires_at
        ),
    )?;
    Ok(Some(id))
}

/// Whether an unused one with this hash, unexpired at `now`, may enroll at CA `ca`.
pub(crate) fn usable(conn: &Connection, hash_hex: &str, ca: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM unbound_challenges u \
             WHERE u.hash = ?1 AND u.used_at IS NULL AND u.expires_at > ?2 \
             AND (u.ca_id IS NULL OR u.ca_id = (SELECT id FROM cas WHERE name = ?3))",
        )?
        .query_row(params![hash_hex, now, ca], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Spend one for device `uid` enrolling at CA `ca`, inside the enrollment's transaction: its
/// id, audited `scep.challenge.use` on the device; `None` (nothing changed) when it is unknown,
/// used, expired or meant for another CA.
pub(crate) fn spend(
    tx: &Connection,
    ctx: &Ctx,
    hash_hex: &str,
    ca: &str,
    uid: &str,
) -> Result<Option<i64>> {
    let device_id = id_of(tx, "SELECT id FROM devices WHERE uid = ?1", uid, "device")?;
    let spent: Option<i64> = tx
        .query_row(
            "UPDATE unbound_challenges SET used_at = ?1, device_id = ?2 \
             WHERE hash = ?3 AND used_at IS NULL AND expires_at > ?1 \
             AND (ca_id IS NULL OR ca_id = (SELECT id FROM cas WHERE name = ?4)) \
             RETURNING id",
            params![ctx.now, device_id, hash_hex, ca],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = spent {
        record(
            tx,
            ctx,
            "scep.challenge.use",
            "device",
            uid,
            &format!("unbound challenge {id}"),
        )?;
    }
    Ok(spent)
}
