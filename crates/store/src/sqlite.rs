//! The SQLite backend: one database file in WAL mode, migrations embedded in the binary.
//!
//! Built on `rusqlite` rather than an async driver: a SQLite statement takes microseconds, and
//! handing each one to a driver thread and back cost ~80 µs in measurements here — more than
//! signing the certificate it records. Calls therefore run inline under a mutex; the gateway's
//! hot path never reaches the store (it reads in-memory snapshots), so a briefly blocked runtime
//! thread on an admin or enrollment call is the cheaper trade.

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::sqlite_api as api;
use crate::sqlite_gateway as gw;
use crate::sqlite_provision as prov;
use crate::Store;

/// Reader connections kept open (one per core of the machines easgate targets).
const READERS: usize = 2;

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_crls.sql"),
    include_str!("../migrations/sqlite/0003_scep.sql"),
    include_str!("../migrations/sqlite/0004_scep_transactions.sql"),
    include_str!("../migrations/sqlite/0005_gateway.sql"),
    include_str!("../migrations/sqlite/0006_profiles.sql"),
    include_str!("../migrations/sqlite/0007_scep_ra_service_key.sql"),
    include_str!("../migrations/sqlite/0008_decision_order.sql"),
    include_str!("../migrations/sqlite/0009_scep_no_des.sql"),
    include_str!("../migrations/sqlite/0010_ca_removal.sql"),
    include_str!("../migrations/sqlite/0011_scep_ra_only.sql"),
    include_str!("../migrations/sqlite/0012_api_tokens.sql"),
    include_str!("../migrations/sqlite/0013_unbound_challenges.sql"),
    include_str!("../migrations/sqlite/0014_eas_provision.sql"),
];

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// The one connection that writes (SQLite has one writer at a time anyway).
    conn: Arc<Mutex<Connection>>,
    /// Connections for reads: in WAL mode they read while the writer commits.
    readers: Vec<Mutex<Connection>>,
    /// Certificate inserts go to a writer thread that commits whatever has queued up in one
    /// transaction (group commit): each commit appends every dirty page to the WAL, so one
    /// commit per certificate would spend most of issuance writing the same pages again.
    issued: mpsc::Sender<PendingCertificate>,
    /// Dropping this stops the checkpointer thread.
    _checkpointer: mpsc::Sender<()>,
}

/// A certificate waiting for the group-commit writer, with the way back to its caller.
struct PendingCertificate {
    ctx: Ctx,
    cert: NewCertificate,
    done: oneshot::Sender<Result<()>>,
}

/// The file path of a `sqlite://PATH` or `sqlite:PATH` URL.
pub(crate) fn path_of(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_string(),
            why: "no file path after sqlite://".into(),
        });
    }
    Ok(PathBuf::from(path))
}

/// The database holds sealed CA keys, token hashes and the audit trail: readable by its owner
/// only, like the key files. A new file is made with mode 0600 before SQLite opens it (SQLite
/// gives its `-wal` and `-shm` files the database file's mode); an existing one, and its WAL
/// files, are set to 0600 (installs made before this).
fn owner_only(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file_error = |action, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| StoreError::File {
            action,
            path,
            source,
        }
    };
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(file_error("create", path))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(file_error("restrict the mode of", &file))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error("read the mode of", &file)(e)),
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> Result<Self> {
        let path = path_of(url)?;
        owner_only(&path)?;
        let connect = || -> Result<Connection> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            // After a burst, give the WAL file's disk space back down to 64 MiB.
            conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok(conn)
        };
        let mut conn = connect()?;
        Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect()).to_latest(&mut conn)?;
        // Checkpoints (copying the WAL back into the database, with fsyncs) run on their own
        // thread so a commit never waits for one.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoint_conn = connect()?;
        let (checkpointer, stop) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("easgate-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &stop))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        let readers = (0..READERS)
            .map(|_| connect().map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let conn = Arc::new(Mutex::new(conn));
        let (issued, queue) = mpsc::channel();
        let writer_conn = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("easgate-sqlite-writer".into())
            .spawn(move || group_commit_writer(&writer_conn, &queue))
            .map_err(|e| {
                StoreError::Corrupt(format!("cannot start the database writer thread: {e}"))
            })?;
        Ok(SqliteStore {
            conn,
            readers,
            issued,
            _checkpointer: checkpointer,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Run `f` in one write transaction that takes the write lock up front (`BEGIN IMMEDIATE`),
    /// then commit; any error rolls everything back.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Run `f` on a free reader connection (or wait for the first one).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn);
            }
        }
        f(&lock(&self.readers[0]))
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave a half-done change: an open transaction
    // rolls back when dropped. So a poisoned lock is safe to keep using.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer thread: take every queued certificate, insert them in one transaction, commit
/// once, answer every caller. Ends when the store is dropped.
///
/// A certificate that cannot be recorded for a reason of its own (unknown CA or device, a
/// serial already used) fails before its first write or in that single atomic statement, so it
/// fails alone; any other error rolls the whole batch back and is reported to every caller.
fn group_commit_writer(conn: &Mutex<Connection>, queue: &mpsc::Receiver<PendingCertificate>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(1023));
        let mut guard = lock(conn);
        let outcome = (|| -> Result<Vec<Result<()>>> {
            let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batch.len());
            for item in &batch {
                match insert_certificate(&tx, &item.ctx, &item.cert) {
                    Err(e @ (StoreError::NotFound { .. } | StoreError::AlreadyExists { .. })) => {
                        results.push(Err(e))
                    }
                    Err(other) => return Err(other),
                    Ok(()) => results.push(Ok(())),
                }
            }
            tx.commit()?;
            Ok(results)
        })();
        drop(guard);
        match outcome {
            Ok(results) => {
                for (item, result) in batch.into_iter().zip(results) {
                    let _ = item.done.send(result);
                }
            }
            Err(e) => {
                let why = e.to_string();
                for item in batch {
                    let _ = item.done.send(Err(StoreError::Corrupt(format!(
                        "recording the certificate failed: {why}"
                    ))));
                }
            }
        }
    }
}

/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL length (in pages) past which a checkpoint waits for the writer so the WAL can start
/// over: under sustained writes a PASSIVE checkpoint never catches up, and the WAL would grow.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Checkpoint the WAL every [`CHECKPOINT_EVERY`] (PASSIVE: never blocks readers or the writer;
/// RESTART once the WAL is long) until the store is dropped, then once more.
fn checkpoint_loop(conn: &Connection, stop: &mpsc::Receiver<()>) {
    loop {
        let stopping = !matches!(
            stop.recv_timeout(CHECKPOINT_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        // A failed checkpoint is retried on the next round; the data is safe in the WAL.
        let wal_frames = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
            .unwrap_or(0);
        if wal_frames > WAL_RESTART_FRAMES {
            let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
        }
        if stopping {
            return;
        }
    }
}

fn insert_certificate(tx: &Connection, ctx: &Ctx, cert: &NewCertificate) -> Result<()> {
    let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", &cert.ca, "CA")?;
    let device_id = cert
        .device
        .as_deref()
        .map(|uid| id_of(tx, "SELECT id FROM devices WHERE uid = ?1", uid, "device"))
        .transpose()?;
    let template_id = cert
        .template
        .as_deref()
        .map(|name| {
            id_of(
                tx,
                "SELECT id FROM templates WHERE name = ?1",
                name,
                "template",
            )
        })
        .transpose()?;
    tx.prepare_cached(
        "INSERT INTO certificates (serial, ca_id, device_id, template_id, subject, sans, key_type, not_before, not_after, der, status, issued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'valid', ?11)",
    )?
    .execute(params![
        cert.serial, ca_id, device_id, template_id, cert.subject, to_json(&cert.sans),
        cert.key_type, cert.not_before, cert.not_after, cert.der, ctx.now
    ])
    .map_err(|e| unique_violation(e, "certificate serial", &cert.serial))?;
    if let (Some(id), Some(uid)) = (device_id, cert.device.as_deref()) {
        tx.prepare_cached("UPDATE devices SET state = 'enrolled', updated_at = ?1 WHERE id = ?2 AND state = 'pending'")?
            .execute(params![ctx.now, id])?;
        crate::sqlite_profiles::clear_renewals(tx, ctx, id, uid, &cert.serial)?;
    }
    record(
        tx,
        ctx,
        "cert.issue",
        "certificate",
        &cert.serial,
        &cert.subject,
    )
}

pub(crate) fn unique_violation(e: rusqlite::Error, kind: &'static str, key: &str) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(err, _)
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::AlreadyExists {
                kind,
                key: key.to_string(),
            }
        }
        _ => StoreError::Sqlite(e),
    }
}

/// Append the audit event and the change-feed row of a change, inside its transaction.
pub(crate) fn record(
    tx: &Connection,
    ctx: &Ctx,
    action: &str,
    entity: &str,
    key: &str,
    detail: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ctx.now,
        ctx.actor,
        action,
        format!("{entity}:{key}"),
        detail
    ])?;
    tx.prepare_cached("INSERT INTO changes (at, entity, key) VALUES (?1, ?2, ?3)")?
        .execute(params![ctx.now, entity, key])?;
    Ok(())
}

/// Spend an unused, unexpired one-time SCEP challenge (its hash): (challenge id, device uid),
/// audited as `scep.challenge.use`; `None` when there is no such challenge.
fn spend_challenge(tx: &Connection, ctx: &Ctx, hash_hex: &str) -> Result<Option<(i64, String)>> {
    let spent: Option<(i64, String)> = tx
        .query_row(
            "UPDATE scep_challenges SET used_at = ?1 \
             WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING id, (SELECT uid FROM devices WHERE devices.id = scep_challenges.device_id)",
            params![ctx.now, hash_hex],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, uid)) = &spent {
        record(
            tx,
            ctx,
            "scep.challenge.use",
            "device",
            uid,
            &format!("challenge {id}"),
        )?;
    }
    Ok(spent)
}

/// The first column of every row of `sql`, given one text parameter.
fn names_where(tx: &Connection, sql: &str, param: &str) -> Result<Vec<String>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([param], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn id_of(conn: &Connection, sql: &str, key: &str, kind: &'static str) -> Result<i64> {
    conn.prepare_cached(sql)?
        .query_row([key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found(kind, key))
}

pub(crate) fn json_list(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn ca_from_row(row: &Row<'_>) -> rusqlite::Result<Ca> {
    Ok(Ca {
        name: row.get("name")?,
        key_type: row.get("key_type")?,
        subject: row.get("subject")?,
        cert_der: row.get("cert_der")?,
        key_sealed: row.get("key_sealed")?,
        not_before: row.get("not_before")?,
        not_after: row.get("not_after")?,
        created_at: row.get("created_at")?,
        scep_no_des: row.get("scep_no_des")?,
        scep_ra_only: row.get("scep_ra_only")?,
    })
}

fn trusted_from_row(row: &Row<'_>) -> rusqlite::Result<TrustedCa> {
    Ok(TrustedCa {
        name: row.get("name")?,
        subject: row.get("subject")?,
        cert_der: row.get("cert_der")?,
        crl_url: row.get("crl_url")?,
        delta_crl_url: row.get("delta_crl_url")?,
        created_at: row.get("created_at")?,
    })
}

fn template_from_row(row: &Row<'_>) -> rusqlite::Result<Template> {
    Ok(Template {
        name: row.get("name")?,
        ca: row.get("ca_name")?,
        subject: row.get("subject")?,
        sans: json_list(&row.get::<_, String>("sans")?)?,
        key_type: row.get("key_type")?,
        validity_days: row.get("validity_days")?,
        renew_before_days: row.get("renew_before_days")?,
        is_default: row.get("is_default")?,
        created_at: row.get("created_at")?,
    })
}

pub(crate) fn device_from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        uid: row.get("uid")?,
        user: row.get("upn")?,
        platform: row.get("platform")?,
        template: row.get("template_name")?,
        state: row.get("state")?,
        device_serial: row.get("device_serial")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn cert_status(stored: &str, not_after: i64, now: i64) -> rusqlite::Result<CertStatus> {
    Ok(match stored {
        "revoked" => CertStatus::Revoked,
        "valid" if not_after < now => CertStatus::Expired,
        "valid" => CertStatus::Valid,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("certificate status `{other}`").into(),
            ))
        }
    })
}

pub(crate) fn cert_from_row(row: &Row<'_>, now: i64) -> rusqlite::Result<Certificate> {
    let not_after: i64 = row.get("not_after")?;
    Ok(Certificate {
        serial: row.get("serial")?,
        ca: row.get("ca_name")?,
        device: row.get("device_uid")?,
        template: row.get("template_name")?,
        subject: row.get("subject")?,
        sans: json_list(&row.get::<_, String>("sans")?)?,
        key_type: row.get("key_type")?,
        not_before: row.get("not_before")?,
        not_after,
        status: cert_status(&row.get::<_, String>("status")?, not_after, now)?,
        revoked_at: row.get("revoked_at")?,
        revocation_reason: row.get("revocation_reason")?,
        issued_at: row.get("issued_at")?,
        der: row.get("der")?,
    })
}

const TEMPLATE_SELECT: &str =
    "SELECT t.*, c.name AS ca_name FROM templates t JOIN cas c ON c.id = t.ca_id";
pub(crate) const DEVICE_SELECT: &str =
    "SELECT d.*, u.upn AS upn, t.name AS template_name FROM devices d \
     JOIN users u ON u.id = d.user_id LEFT JOIN templates t ON t.id = d.template_id";
pub(crate) const CERT_SELECT: &str =
    "SELECT k.*, c.name AS ca_name, d.uid AS device_uid, t.name AS template_name \
     FROM certificates k JOIN cas c ON c.id = k.ca_id \
     LEFT JOIN devices d ON d.id = k.device_id LEFT JOIN templates t ON t.id = k.template_id";

fn user_groups(conn: &Connection, user_id: Option<i64>) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ug.user_id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
         WHERE (?1 IS NULL OR ug.user_id = ?1) ORDER BY g.name",
    )?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn user_from_row(row: &Row<'_>, groups: &[(i64, String)]) -> rusqlite::Result<User> {
    let id: i64 = row.get("id")?;
    Ok(User {
        upn: row.get("upn")?,
        email: row.get("email")?,
        display_name: row.get("display_name")?,
        disabled: row.get("disabled")?,
        groups: groups
            .iter()
            .filter(|(uid, _)| *uid == id)
            .map(|(_, g)| g.clone())
            .collect(),
        created_at: row.get("created_at")?,
    })
}

fn get_user(conn: &Connection, upn: &str) -> Result<Option<User>> {
    let row = conn
        .prepare_cached("SELECT * FROM users WHERE upn = ?1")?
        .query_row([upn], |r| {
            Ok((r.get::<_, i64>("id")?, user_from_row(r, &[])?))
        })
        .optional()?;
    let Some((id, mut user)) = row else {
        return Ok(None);
    };
    user.groups = user_groups(conn, Some(id))?
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    Ok(Some(user))
}

fn get_template(conn: &Connection, name: &str) -> Result<Option<Template>> {
    Ok(conn
        .prepare_cached(&format!("{TEMPLATE_SELECT} WHERE t.name = ?1"))?
        .query_row([name], template_from_row)
        .optional()?)
}

fn get_device(conn: &Connection, uid: &str) -> Result<Option<Device>> {
    Ok(conn
        .prepare_cached(&format!("{DEVICE_SELECT} WHERE d.uid = ?1"))?
        .query_row([uid], device_from_row)
        .optional()?)
}

fn get_certificate(conn: &Connection, serial: &str, now: i64) -> Result<Option<Certificate>> {
    Ok(conn
        .prepare_cached(&format!("{CERT_SELECT} WHERE k.serial = ?1"))?
        .query_row([serial], |r| cert_from_row(r, now))
        .optional()?)
}

/// Revoke every valid certificate matching `where_clause` (with `?1` bound to `id`).
fn revoke_where(
    tx: &Transaction<'_>,
    where_clause: &str,
    id: i64,
    revoke: &Revocation,
) -> Result<Vec<String>> {
    let serials = tx
        .prepare_cached(&format!(
            "SELECT serial FROM certificates WHERE status = 'valid' AND {where_clause} ORDER BY serial"
        ))?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    tx.prepare_cached(&format!(
        "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 \
         WHERE status = 'valid' AND {where_clause}"
    ))?
    .execute(params![id, revoke.at, revoke.reason])?;
    Ok(serials)
}

#[async_trait]
impl Store for SqliteStore {
    async fn revision(&self) -> Result<i64> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(revision), 0) FROM changes", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM changes WHERE revision > ?1 ORDER BY revision LIMIT ?2",
            )?;
            let rows = stmt.query_map([after, limit], |r| {
                Ok(Change {
                    revision: r.get("revision")?,
                    at: r.get("at")?,
                    entity: r.get("entity")?,
                    key: r.get("key")?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    async fn set_setting(&self, ctx: &Ctx, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            record(tx, ctx, "setting.set", "setting", key, value)
        })
    }

    async fn insert_ca(&self, ctx: &Ctx, ca: NewCa) -> Result<Ca> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO cas (name, key_type, subject, cert_der, key_sealed, not_before, not_after, created_at, scep_no_des) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![ca.name, ca.key_type, ca.subject, ca.cert_der, ca.key_sealed, ca.not_before, ca.not_after, ctx.now, ca.scep_no_des],
            )
            .map_err(|e| unique_violation(e, "CA", &ca.name))?;
            record(tx, ctx, "ca.create", "ca", &ca.name, &format!("{} {}", ca.key_type, ca.subject))
        })?;
        Ok(Ca {
            name: ca.name,
            key_type: ca.key_type,
            subject: ca.subject,
            cert_der: ca.cert_der,
            key_sealed: ca.key_sealed,
            not_before: ca.not_before,
            not_after: ca.not_after,
            created_at: ctx.now,
            scep_no_des: ca.scep_no_des,
            scep_ra_only: false,
        })
    }

    async fn set_ca_scep_ra_only(&self, ctx: &Ctx, name: &str, ra_only: bool) -> Result<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE cas SET scep_ra_only = ?1 WHERE name = ?2 AND removed_at IS NULL",
                params![ra_only, name],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("CA", name.to_string()));
            }
            let detail = if ra_only {
                "GetCACert: the RA alone"
            } else {
                "GetCACert: the CA and its RA"
            };
            record(tx, ctx, "ca.scep_cacert", "ca", name, detail)
        })
    }

    async fn set_ca_scep_no_des(&self, ctx: &Ctx, name: &str, refuse: bool) -> Result<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE cas SET scep_no_des = ?1 WHERE name = ?2 AND removed_at IS NULL",
                params![refuse, name],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("CA", name.to_string()));
            }
            let detail = if refuse {
                "refuse single DES"
            } else {
                "accept single DES"
            };
            record(tx, ctx, "ca.scep_des", "ca", name, detail)
        })
    }

    async fn list_cas(&self) -> Result<Vec<Ca>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT * FROM cas WHERE removed_at IS NULL ORDER BY name")?;
            let rows = stmt.query_map([], ca_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_ca(&self, name: &str) -> Result<Option<Ca>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT * FROM cas WHERE name = ?1 AND removed_at IS NULL")?
                    .query_row([name], ca_from_row)
                    .optional()?,
            )
        })
    }

    async fn remove_ca(
        &self,
        ctx: &Ctx,
        name: &str,
        revoke: Option<Revocation>,
    ) -> Result<Vec<String>> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM cas WHERE name = ?1 AND removed_at IS NULL", name, "CA")?;
            let valid: i64 = tx.query_row(
                "SELECT COUNT(*) FROM certificates WHERE ca_id = ?1 AND device_id IS NOT NULL AND status = 'valid' AND not_after > ?2",
                params![id, ctx.now],
                |r| r.get(0),
            )?;
            let revoked = match &revoke {
                Some(r) => revoke_where(tx, "device_id IS NOT NULL AND ca_id = ?1", id, r)?,
                None if valid > 0 => {
                    return Err(StoreError::Conflict(format!(
                        "CA `{name}` has {valid} valid device certificate(s): revoke them first, or pass --revoke-all"
                    )))
                }
                None => Vec::new(),
            };
            for serial in &revoked {
                record(tx, ctx, "cert.revoke", "certificate", serial, revoke.as_ref().map_or("", |r| r.reason.as_str()))?;
            }
            let kept = format!("{name}.removed-{}", ctx.now);
            tx.execute(
                "UPDATE cas SET name = ?1, removed_at = ?2 WHERE id = ?3",
                params![kept, ctx.now, id],
            )?;
            record(tx, ctx, "ca.remove", "ca", name, &format!("revoked {} certificate(s); kept as `{kept}`", revoked.len()))?;
            Ok(revoked)
        })
    }

    async fn insert_trusted_ca(&self, ctx: &Ctx, ca: NewTrustedCa) -> Result<TrustedCa> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO trusted_cas (name, subject, cert_der, crl_url, delta_crl_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ca.name, ca.subject, ca.cert_der, ca.crl_url, ca.delta_crl_url, ctx.now],
            )
            .map_err(|e| unique_violation(e, "trusted CA", &ca.name))?;
            record(tx, ctx, "trust.add", "trusted_ca", &ca.name, &ca.subject)
        })?;
        Ok(TrustedCa {
            name: ca.name,
            subject: ca.subject,
            cert_der: ca.cert_der,
            crl_url: ca.crl_url,
            delta_crl_url: ca.delta_crl_url,
            created_at: ctx.now,
        })
    }

    async fn list_trusted_cas(&self) -> Result<Vec<TrustedCa>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT * FROM trusted_cas ORDER BY name")?;
            let rows = stmt.query_map([], trusted_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn remove_trusted_ca(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| {
            if tx.execute("DELETE FROM trusted_cas WHERE name = ?1", [name])? == 0 {
                return Err(StoreError::not_found("trusted CA", name));
            }
            record(tx, ctx, "trust.remove", "trusted_ca", name, "")
        })
    }

    async fn insert_group(&self, ctx: &Ctx, name: &str) -> Result<Group> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO groups (name, created_at) VALUES (?1, ?2)",
                params![name, ctx.now],
            )
            .map_err(|e| unique_violation(e, "group", name))?;
            record(tx, ctx, "group.add", "group", name, "")
        })?;
        Ok(Group {
            name: name.to_string(),
            members: 0,
            created_at: ctx.now,
        })
    }

    async fn remove_group(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM groups WHERE name = ?1", name, "group")?;
            let users = names_where(
                tx,
                "SELECT name FROM access_rules WHERE EXISTS (SELECT 1 FROM json_each(access_rules.groups) WHERE lower(value) = lower(?1)) \
                 UNION ALL SELECT 'profile ' || name FROM profiles WHERE EXISTS (SELECT 1 FROM json_each(profiles.groups) WHERE lower(value) = lower(?1))",
                name,
            )?;
            if !users.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "group `{name}` is named by {}: change or remove them first",
                    users.join(", ")
                )));
            }
            let members = tx.execute("DELETE FROM user_groups WHERE group_id = ?1", [id])?;
            tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
            record(tx, ctx, "group.remove", "group", name, &format!("{members} member(s)"))
        })
    }

    async fn list_groups(&self) -> Result<Vec<Group>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT g.name, g.created_at, (SELECT COUNT(*) FROM user_groups ug WHERE ug.group_id = g.id) AS members \
                 FROM groups g ORDER BY g.name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Group {
                    name: r.get("name")?,
                    members: r.get("members")?,
                    created_at: r.get("created_at")?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn insert_user(&self, ctx: &Ctx, user: NewUser) -> Result<User> {
        self.write(|tx| {
            let mut group_ids = Vec::new();
            for group in &user.groups {
                group_ids.push(id_of(
                    tx,
                    "SELECT id FROM groups WHERE name = ?1",
                    group,
                    "group",
                )?);
            }
            tx.execute(
                "INSERT INTO users (upn, email, display_name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user.upn, user.email, user.display_name, ctx.now],
            )
            .map_err(|e| unique_violation(e, "user", &user.upn))?;
            let user_id = tx.last_insert_rowid();
            for gid in group_ids {
                tx.execute(
                    "INSERT OR IGNORE INTO user_groups (user_id, group_id) VALUES (?1, ?2)",
                    [user_id, gid],
                )?;
            }
            record(tx, ctx, "user.add", "user", &user.upn, &user.email)?;
            get_user(tx, &user.upn)?.ok_or_else(|| StoreError::not_found("user", user.upn.clone()))
        })
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let groups = user_groups(c, None)?;
            let mut stmt = c.prepare_cached("SELECT * FROM users ORDER BY upn")?;
            let rows = stmt.query_map([], |r| user_from_row(r, &groups))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_user(&self, upn: &str) -> Result<Option<User>> {
        self.read(|c| get_user(c, upn))
    }

    async fn remove_user(&self, ctx: &Ctx, upn: &str) -> Result<()> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM users WHERE upn = ?1", upn, "user")?;
            let devices: i64 = tx.query_row(
                "SELECT COUNT(*) FROM devices WHERE user_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if devices > 0 {
                return Err(StoreError::Conflict(format!(
                    "user `{upn}` has {devices} device(s), whose certificates must stay attributable: `easgate user disable {upn}` cuts them off and keeps the record"
                )));
            }
            let rules = names_where(
                tx,
                "SELECT name FROM access_rules WHERE EXISTS (SELECT 1 FROM json_each(access_rules.users) WHERE lower(value) = lower(?1))",
                upn,
            )?;
            if !rules.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "user `{upn}` is named by access rule(s) {}: remove them first",
                    rules.join(", ")
                )));
            }
            tx.execute("DELETE FROM user_groups WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            record(tx, ctx, "user.remove", "user", upn, "")
        })
    }

    async fn update_user(&self, ctx: &Ctx, upn: &str, change: UserChange) -> Result<User> {
        self.write(|tx| {
            let user_id = id_of(tx, "SELECT id FROM users WHERE upn = ?1", upn, "user")?;
            let mut what = Vec::new();
            if let Some(email) = &change.email {
                tx.execute(
                    "UPDATE users SET email = ?1 WHERE id = ?2",
                    params![email, user_id],
                )?;
                what.push(format!("email {email}"));
            }
            if let Some(name) = &change.display_name {
                tx.execute(
                    "UPDATE users SET display_name = ?1 WHERE id = ?2",
                    params![name, user_id],
                )?;
                what.push(format!("name {name}"));
            }
            for group in &change.add_groups {
                let gid = id_of(tx, "SELECT id FROM groups WHERE name = ?1", group, "group")?;
                tx.execute(
                    "INSERT OR IGNORE INTO user_groups (user_id, group_id) VALUES (?1, ?2)",
                    [user_id, gid],
                )?;
                what.push(format!("+group {group}"));
            }
            for group in &change.remove_groups {
                let gid = id_of(tx, "SELECT id FROM groups WHERE name = ?1", group, "group")?;
                tx.execute(
                    "DELETE FROM user_groups WHERE user_id = ?1 AND group_id = ?2",
                    [user_id, gid],
                )?;
                what.push(format!("-group {group}"));
            }
            let user = get_user(tx, upn)?.ok_or_else(|| StoreError::not_found("user", upn))?;
            record(tx, ctx, "user.set", "user", &user.upn, &what.join(", "))?;
            Ok(user)
        })
    }

    async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        upn: &str,
        disabled: bool,
        revoke: Option<Revocation>,
    ) -> Result<(User, Vec<String>)> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM users WHERE upn = ?1", upn, "user")?;
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE id = ?2",
                params![disabled, id],
            )?;
            let revoked = match &revoke {
                Some(r) => revoke_where(
                    tx,
                    "device_id IN (SELECT id FROM devices WHERE user_id = ?1)",
                    id,
                    r,
                )?,
                None => Vec::new(),
            };
            let action = if disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            record(
                tx,
                ctx,
                action,
                "user",
                upn,
                &format!("revoked {} certificate(s)", revoked.len()),
            )?;
            for serial in &revoked {
                record(
                    tx,
                    ctx,
                    "cert.revoke",
                    "certificate",
                    serial,
                    revoke.as_ref().map(|r| r.reason.as_str()).unwrap_or(""),
                )?;
            }
            let user = get_user(tx, upn)?.ok_or_else(|| StoreError::not_found("user", upn))?;
            Ok((user, revoked))
        })
    }

    async fn insert_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        self.write(|tx| {
            let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", &t.ca, "CA")?;
            if t.is_default {
                tx.execute("UPDATE templates SET is_default = 0", [])?;
            }
            tx.execute(
                "INSERT INTO templates (name, ca_id, subject, sans, key_type, validity_days, renew_before_days, is_default, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![t.name, ca_id, t.subject, to_json(&t.sans), t.key_type, t.validity_days, t.renew_before_days, t.is_default, ctx.now],
            )
            .map_err(|e| unique_violation(e, "template", &t.name))?;
            record(tx, ctx, "template.create", "template", &t.name, &t.subject)?;
            get_template(tx, &t.name)?.ok_or_else(|| StoreError::not_found("template", t.name.clone()))
        })
    }

    async fn list_templates(&self) -> Result<Vec<Template>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!("{TEMPLATE_SELECT} ORDER BY t.name"))?;
            let rows = stmt.query_map([], template_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_template(&self, name: &str) -> Result<Option<Template>> {
        self.read(|c| get_template(c, name))
    }

    async fn update_template(&self, ctx: &Ctx, t: NewTemplate) -> Result<Template> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE templates SET subject = ?1, sans = ?2, key_type = ?3, validity_days = ?4, renew_before_days = ?5 WHERE name = ?6",
                params![t.subject, to_json(&t.sans), t.key_type, t.validity_days, t.renew_before_days, t.name],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("template", t.name.clone()));
            }
            record(
                tx,
                ctx,
                "template.set",
                "template",
                &t.name,
                &format!("{} [{}] {} {} days, renew {} days before", t.subject, t.sans.join(", "), t.key_type, t.validity_days, t.renew_before_days),
            )?;
            get_template(tx, &t.name)?.ok_or_else(|| StoreError::not_found("template", t.name.clone()))
        })
    }

    async fn set_default_template(&self, ctx: &Ctx, name: &str) -> Result<Template> {
        self.write(|tx| {
            id_of(
                tx,
                "SELECT id FROM templates WHERE name = ?1",
                name,
                "template",
            )?;
            tx.execute("UPDATE templates SET is_default = (name = ?1)", [name])?;
            record(tx, ctx, "template.default", "template", name, "")?;
            get_template(tx, name)?.ok_or_else(|| StoreError::not_found("template", name))
        })
    }

    async fn remove_template(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM templates WHERE name = ?1", name, "template")?;
            let count = |sql: &str| -> Result<i64> { Ok(tx.query_row(sql, [id], |r| r.get(0))?) };
            let devices = count("SELECT COUNT(*) FROM devices WHERE template_id = ?1")?;
            let certificates = count("SELECT COUNT(*) FROM certificates WHERE template_id = ?1")?;
            let profiles = count("SELECT COUNT(*) FROM profiles WHERE template_id = ?1")?;
            if devices + certificates + profiles > 0 {
                return Err(StoreError::Conflict(format!(
                    "template `{name}` is in use ({devices} device(s), {certificates} certificate(s), {profiles} profile(s)): issued certificates stay attributable to it; change it with `easgate template set` instead"
                )));
            }
            tx.execute("DELETE FROM templates WHERE id = ?1", [id])?;
            record(tx, ctx, "template.remove", "template", name, "")
        })
    }

    async fn enroll_device(
        &self,
        ctx: &Ctx,
        device: NewDevice,
        challenge: NewChallenge,
    ) -> Result<Device> {
        self.write(|tx| {
            let user_id = id_of(tx, "SELECT id FROM users WHERE upn = ?1", &device.user, "user")?;
            let template_id = device
                .template
                .as_deref()
                .map(|name| id_of(tx, "SELECT id FROM templates WHERE name = ?1", name, "template"))
                .transpose()?;
            tx.execute(
                "INSERT INTO devices (uid, user_id, platform, template_id, state, device_serial, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6)",
                params![device.uid, user_id, device.platform, template_id, device.device_serial, ctx.now],
            )
            .map_err(|e| unique_violation(e, "device", &device.uid))?;
            let device_id = tx.last_insert_rowid();
            crate::sqlite_profiles::insert_secrets(tx, ctx, device_id, &challenge)?;
            record(tx, ctx, "device.enroll", "device", &device.uid, &format!("user {} platform {}", device.user, device.platform))?;
            get_device(tx, &device.uid)?.ok_or_else(|| StoreError::not_found("device", device.uid.clone()))
        })
    }

    async fn reenroll_device(&self, ctx: &Ctx, uid: &str, secrets: NewChallenge) -> Result<Device> {
        self.write(|tx| {
            let device = get_device(tx, uid)?.ok_or_else(|| StoreError::not_found("device", uid))?;
            if matches!(device.state.as_str(), "retired" | "wiped") {
                return Err(StoreError::Conflict(format!(
                    "device `{uid}` is {}: enroll a new device instead",
                    device.state
                )));
            }
            let id = id_of(tx, "SELECT id FROM devices WHERE uid = ?1", uid, "device")?;
            for table in ["scep_challenges", "profile_tokens"] {
                tx.execute(
                    &format!("UPDATE {table} SET expires_at = ?1 WHERE device_id = ?2 AND used_at IS NULL AND expires_at > ?1"),
                    params![ctx.now, id],
                )?;
            }
            crate::sqlite_profiles::insert_secrets(tx, ctx, id, &secrets)?;
            tx.execute("UPDATE devices SET updated_at = ?1 WHERE id = ?2", params![ctx.now, id])?;
            record(tx, ctx, "device.reenroll", "device", uid, "new challenge and profile link; earlier unused ones expired")?;
            get_device(tx, uid)?.ok_or_else(|| StoreError::not_found("device", uid))
        })
    }

    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{DEVICE_SELECT} WHERE (?1 IS NULL OR u.upn = ?1) ORDER BY d.created_at, d.uid"
            ))?;
            let rows = stmt.query_map([user], device_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_device(&self, uid: &str) -> Result<Option<Device>> {
        self.read(|c| get_device(c, uid))
    }

    async fn get_device_with_owner(&self, uid: &str) -> Result<Option<(Device, User)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT d.*, u.upn AS upn, t.name AS template_name, u.email AS u_email, \
                 u.display_name AS u_display_name, u.disabled AS u_disabled, u.created_at AS u_created_at, \
                 (SELECT group_concat(g.name, char(31)) FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
                  WHERE ug.user_id = u.id) AS u_groups \
                 FROM devices d JOIN users u ON u.id = d.user_id LEFT JOIN templates t ON t.id = d.template_id \
                 WHERE d.uid = ?1",
            )?
            .query_row([uid], |r| {
                let groups: Option<String> = r.get("u_groups")?;
                let mut groups: Vec<String> = groups
                    .map(|g| g.split('\u{1f}').map(str::to_string).collect())
                    .unwrap_or_default();
                groups.sort();
                let user = User {
                    upn: r.get("upn")?,
                    email: r.get("u_email")?,
                    display_name: r.get("u_display_name")?,
                    disabled: r.get("u_disabled")?,
                    groups,
                    created_at: r.get("u_created_at")?,
                };
                Ok((device_from_row(r)?, user))
            })
            .optional()?)
        })
    }

    async fn set_device_state(
        &self,
        ctx: &Ctx,
        uid: &str,
        state: &str,
        revoke: Revocation,
    ) -> Result<(Device, Vec<String>)> {
        self.write(|tx| {
            let id = id_of(tx, "SELECT id FROM devices WHERE uid = ?1", uid, "device")?;
            tx.execute("UPDATE devices SET state = ?1, updated_at = ?2 WHERE id = ?3", params![state, ctx.now, id])?;
            // Unused challenges and profile tokens of a retired device must never enroll it again.
            for table in ["scep_challenges", "profile_tokens"] {
                tx.execute(
                    &format!("UPDATE {table} SET expires_at = ?1 WHERE device_id = ?2 AND used_at IS NULL AND expires_at > ?1"),
                    params![ctx.now, id],
                )?;
            }
            let revoked = revoke_where(tx, "device_id = ?1", id, &revoke)?;
            record(tx, ctx, &format!("device.{state}"), "device", uid, &format!("revoked {} certificate(s)", revoked.len()))?;
            for serial in &revoked {
                record(tx, ctx, "cert.revoke", "certificate", serial, &revoke.reason)?;
            }
            let device = get_device(tx, uid)?.ok_or_else(|| StoreError::not_found("device", uid))?;
            Ok((device, revoked))
        })
    }

    async fn insert_certificate(&self, ctx: &Ctx, cert: NewCertificate) -> Result<()> {
        let (done, result) = oneshot::channel();
        self.issued
            .send(PendingCertificate {
                ctx: ctx.clone(),
                cert,
                done,
            })
            .map_err(|_| StoreError::Corrupt("the database writer thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Corrupt("the database writer thread has stopped".into()))?
    }

    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<Certificate>> {
        let status_clause = match filter.status {
            None => "1 = 1",
            Some(CertStatus::Valid) => "k.status = 'valid' AND k.not_after >= ?2",
            Some(CertStatus::Expired) => "k.status = 'valid' AND k.not_after < ?2",
            Some(CertStatus::Revoked) => "k.status = 'revoked'",
        };
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{CERT_SELECT} WHERE (?1 IS NULL OR d.uid = ?1) AND {status_clause} AND ?2 = ?2 ORDER BY k.issued_at, k.serial"
            ))?;
            let rows = stmt.query_map(params![filter.device, filter.now], |r| cert_from_row(r, filter.now))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn get_certificate(&self, serial: &str, now: i64) -> Result<Option<Certificate>> {
        self.read(|c| get_certificate(c, serial, now))
    }

    async fn revoke_certificate(
        &self,
        ctx: &Ctx,
        serial: &str,
        revoke: Revocation,
    ) -> Result<Certificate> {
        self.write(|tx| {
            let status: Option<String> = tx
                .query_row("SELECT status FROM certificates WHERE serial = ?1", [serial], |r| r.get(0))
                .optional()?;
            match status.as_deref() {
                None => return Err(StoreError::not_found("certificate", serial)),
                Some("revoked") => return Err(StoreError::Conflict(format!("certificate {serial} is already revoked"))),
                Some(_) => {}
            }
            tx.execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?1, revocation_reason = ?2 WHERE serial = ?3",
                params![revoke.at, revoke.reason, serial],
            )?;
            record(tx, ctx, "cert.revoke", "certificate", serial, &revoke.reason)?;
            get_certificate(tx, serial, ctx.now)?.ok_or_else(|| StoreError::not_found("certificate", serial))
        })
    }

    async fn next_crl_number(&self, ctx: &Ctx, ca: &str) -> Result<i64> {
        self.write(|tx| {
            let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", ca, "CA")?;
            let number: i64 = tx.query_row(
                "INSERT INTO crl_numbers (ca_id, last) VALUES (?1, 1) \
                 ON CONFLICT(ca_id) DO UPDATE SET last = last + 1 RETURNING last",
                [ca_id],
                |r| r.get(0),
            )?;
            let _ = ctx;
            Ok(number)
        })
    }

    async fn insert_crl(&self, ctx: &Ctx, crl: NewCrl) -> Result<()> {
        self.write(|tx| {
            let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", &crl.ca, "CA")?;
            tx.execute(
                "INSERT INTO crls (ca_id, number, scope, base_number, this_update, next_update, entries, der) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![ca_id, crl.number, crl.scope.as_str(), crl.base_number, crl.this_update, crl.next_update, crl.entries, crl.der],
            )
            .map_err(|e| unique_violation(e, "CRL number", &crl.number.to_string()))?;
            // Older CRLs are never served again; keep the last few of each scope for the record.
            tx.execute(
                "DELETE FROM crls WHERE ca_id = ?1 AND scope = ?2 AND number < \
                 (SELECT MIN(number) FROM (SELECT number FROM crls WHERE ca_id = ?1 AND scope = ?2 ORDER BY number DESC LIMIT 5))",
                params![ca_id, crl.scope.as_str()],
            )?;
            record(
                tx,
                ctx,
                &format!("crl.{}", crl.scope.as_str()),
                "crl",
                &crl.ca,
                &format!("number {} with {} entries", crl.number, crl.entries),
            )
        })
    }

    async fn latest_crl(&self, ca: &str, scope: CrlScope) -> Result<Option<Crl>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT k.*, c.name AS ca_name FROM crls k JOIN cas c ON c.id = k.ca_id \
                 WHERE c.name = ?1 AND k.scope = ?2 ORDER BY k.number DESC LIMIT 1",
            )?
            .query_row([ca, scope.as_str()], |r| {
                Ok(Crl {
                    ca: r.get("ca_name")?,
                    number: r.get("number")?,
                    scope,
                    base_number: r.get("base_number")?,
                    this_update: r.get("this_update")?,
                    next_update: r.get("next_update")?,
                    entries: r.get("entries")?,
                    der: r.get("der")?,
                })
            })
            .optional()?)
        })
    }

    async fn latest_crl_meta(&self, ca: &str, scope: CrlScope) -> Result<Option<CrlMeta>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT k.number, k.base_number, k.this_update, k.next_update, k.entries FROM crls k \
                 JOIN cas c ON c.id = k.ca_id WHERE c.name = ?1 AND k.scope = ?2 ORDER BY k.number DESC LIMIT 1",
            )?
            .query_row([ca, scope.as_str()], |r| {
                Ok(CrlMeta {
                    number: r.get(0)?,
                    base_number: r.get(1)?,
                    this_update: r.get(2)?,
                    next_update: r.get(3)?,
                    entries: r.get(4)?,
                })
            })
            .optional()?)
        })
    }

    async fn revoked_certificates(
        &self,
        ca: &str,
        since: Option<i64>,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>> {
        self.read(|c| {
            let ca_id = id_of(c, "SELECT id FROM cas WHERE name = ?1", ca, "CA")?;
            let mut stmt = c.prepare_cached(
                "SELECT serial, revoked_at, revocation_reason FROM certificates \
                 WHERE ca_id = ?1 AND status = 'revoked' AND revoked_at >= ?2 AND not_after >= ?3",
            )?;
            let rows = stmt.query_map(params![ca_id, since.unwrap_or(i64::MIN), now], |r| {
                Ok(RevokedCertificate {
                    serial: r.get(0)?,
                    revoked_at: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    reason: r
                        .get::<_, Option<String>>(2)?
                        .unwrap_or_else(|| "unspecified".into()),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn certificate_states(&self, ca: &str) -> Result<Vec<CertState>> {
        self.read(|c| {
            let ca_id = id_of(c, "SELECT id FROM cas WHERE name = ?1", ca, "CA")?;
            let mut stmt = c.prepare_cached(
                "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates WHERE ca_id = ?1",
            )?;
            let rows = stmt.query_map([ca_id], |r| {
                Ok(CertState {
                    serial: r.get(0)?,
                    revoked_at: r.get(1)?,
                    reason: r.get(2)?,
                    not_after: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn consume_scep_challenge(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>> {
        self.write(|tx| Ok(spend_challenge(tx, ctx, hash_hex)?.map(|(_, uid)| uid)))
    }

    async fn peek_scep_challenge(&self, hash_hex: &str, now: i64) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT d.uid FROM scep_challenges s JOIN devices d ON d.id = s.device_id \
                 WHERE s.hash = ?1 AND s.used_at IS NULL AND s.expires_at > ?2",
                params![hash_hex, now],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    async fn record_scep_enrollment(&self, ctx: &Ctx, e: ScepEnrollment) -> Result<bool> {
        self.write(|tx| {
            match &e.challenge {
                Some(SpentChallenge::Device(hash)) => {
                    let Some((id, uid)) = spend_challenge(tx, ctx, hash)? else {
                        return Ok(false);
                    };
                    if Some(uid.as_str()) != e.certificate.device.as_deref() {
                        return Err(StoreError::Conflict(format!(
                            "challenge {id} belongs to device `{uid}`, not to the certificate's"
                        )));
                    }
                }
                Some(SpentChallenge::Unbound(hash)) => {
                    let Some(uid) = e.certificate.device.as_deref() else {
                        return Err(StoreError::Conflict(
                            "a certificate enrolled with a challenge must belong to a device".into(),
                        ));
                    };
                    if crate::sqlite_unbound::spend(tx, ctx, hash, &e.ca, uid)?.is_none() {
                        return Ok(false);
                    }
                }
                None => {}
            }
            insert_certificate(tx, ctx, &e.certificate)?;
            if let Some(serial) = &e.supersedes {
                let revoked = tx.execute(
                    "UPDATE certificates SET status = 'revoked', revoked_at = ?1, revocation_reason = 'superseded' \
                     WHERE serial = ?2 AND status = 'valid'",
                    params![ctx.now, serial],
                )?;
                if revoked > 0 {
                    record(tx, ctx, "cert.revoke", "certificate", serial, "superseded")?;
                }
            }
            let ca_id = id_of(tx, "SELECT id FROM cas WHERE name = ?1", &e.ca, "CA")?;
            tx.execute(
                "INSERT OR REPLACE INTO scep_transactions (ca_id, transaction_id, key_sha256, serial, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ca_id, e.transaction_id, e.key_sha256, e.certificate.serial, ctx.now],
            )?;
            record(tx, ctx, "scep.enroll", "certificate", &e.certificate.serial, &e.detail)?;
            Ok(true)
        })
    }

    async fn insert_unbound_challenge(
        &self,
        ctx: &Ctx,
        challenge: NewUnboundChallenge,
    ) -> Result<Option<i64>> {
        self.write(|tx| crate::sqlite_unbound::insert(tx, ctx, &challenge))
    }

    async fn peek_unbound_challenge(&self, hash_hex: &str, ca: &str, now: i64) -> Result<bool> {
        self.read(|c| crate::sqlite_unbound::usable(c, hash_hex, ca, now))
    }

    async fn get_scep_transaction(
        &self,
        ca: &str,
        transaction_id: &str,
    ) -> Result<Option<(String, String)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT t.key_sha256, t.serial FROM scep_transactions t JOIN cas c ON c.id = t.ca_id \
                 WHERE c.name = ?1 AND t.transaction_id = ?2",
            )?
            .query_row([ca, transaction_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
        })
    }

    async fn record_event(
        &self,
        ctx: &Ctx,
        action: &str,
        entity: &str,
        key: &str,
        detail: &str,
    ) -> Result<()> {
        self.write(|tx| record(tx, ctx, action, entity, key, detail))
    }

    async fn list_audit(&self, since: i64) -> Result<Vec<AuditEvent>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT * FROM audit_events WHERE at >= ?1 ORDER BY id")?;
            let rows = stmt.query_map([since], |r| {
                Ok(AuditEvent {
                    id: r.get("id")?,
                    at: r.get("at")?,
                    actor: r.get("actor")?,
                    action: r.get("action")?,
                    target: r.get("target")?,
                    detail: r.get("detail")?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    async fn page_audit(
        &self,
        filter: &AuditFilter,
        page: &PageQuery<i64>,
    ) -> Result<Vec<AuditEvent>> {
        self.read(|c| api::page_audit(c, filter, page))
    }

    async fn insert_api_token(&self, ctx: &Ctx, token: NewApiToken) -> Result<ApiToken> {
        self.write(|tx| api::insert_api_token(tx, ctx, &token))
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(api::list_api_tokens)
    }

    async fn api_token_by_hash(&self, hash_hex: &str) -> Result<Option<ApiToken>> {
        self.read(|c| api::api_token_by_hash(c, hash_hex))
    }

    async fn revoke_api_token(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| api::revoke_api_token(tx, ctx, name))
    }

    async fn page_partnerships(
        &self,
        filter: &PartnershipFilter,
        page: &PageQuery<PartnershipKey>,
    ) -> Result<Vec<Partnership>> {
        self.read(|c| api::page_partnerships(c, filter, page))
    }

    async fn page_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Device>> {
        self.read(|c| api::page_devices(c, filter, page))
    }

    async fn page_certificates(
        &self,
        filter: &CertPageFilter,
        page: &PageQuery<String>,
    ) -> Result<Vec<Certificate>> {
        self.read(|c| api::page_certificates(c, filter, page))
    }

    async fn insert_rule(&self, ctx: &Ctx, rule: AccessRule) -> Result<()> {
        self.write(|tx| gw::insert_rule(tx, ctx, &rule))
    }

    async fn list_rules(&self) -> Result<Vec<AccessRule>> {
        self.read(gw::list_rules)
    }

    async fn remove_rule(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| gw::remove_rule(tx, ctx, name))
    }

    async fn set_override(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        action: &str,
        reason: Option<&str>,
        unmanaged: bool,
    ) -> Result<()> {
        self.write(|tx| gw::set_override(tx, ctx, eas_device_id, action, reason, unmanaged))
    }

    async fn list_overrides(&self) -> Result<Vec<EasOverride>> {
        self.read(gw::list_overrides)
    }

    async fn insert_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        self.write(|tx| prov::insert_eas_policy(tx, ctx, policy))
    }

    async fn update_eas_policy(&self, ctx: &Ctx, policy: &EasPolicy) -> Result<()> {
        self.write(|tx| prov::update_eas_policy(tx, ctx, policy))
    }

    async fn list_eas_policies(&self) -> Result<Vec<EasPolicy>> {
        self.read(prov::list_eas_policies)
    }

    async fn remove_eas_policy(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| prov::remove_eas_policy(tx, ctx, name))
    }

    async fn request_wipe(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        account_only: bool,
        device_uid: Option<&str>,
    ) -> Result<EasWipe> {
        self.write(|tx| prov::request_wipe(tx, ctx, eas_device_id, account_only, device_uid))
    }

    async fn cancel_wipe(&self, ctx: &Ctx, eas_device_id: &str) -> Result<()> {
        self.write(|tx| prov::cancel_wipe(tx, ctx, eas_device_id))
    }

    async fn list_wipes(&self) -> Result<Vec<EasWipe>> {
        self.read(prov::list_wipes)
    }

    async fn mark_wipe_sent(&self, ctx: &Ctx, eas_device_id: &str) -> Result<bool> {
        self.write(|tx| prov::mark_wipe_sent(tx, ctx, eas_device_id))
    }

    async fn mark_wipe_acknowledged(
        &self,
        ctx: &Ctx,
        eas_device_id: &str,
        succeeded: bool,
    ) -> Result<Option<EasWipe>> {
        self.write(|tx| prov::mark_wipe_acknowledged(tx, ctx, eas_device_id, succeeded))
    }

    async fn save_partnerships(&self, partnerships: &[Partnership]) -> Result<()> {
        self.write(|tx| gw::save_partnerships(tx, partnerships))
    }

    async fn list_partnerships(&self, user: Option<&str>) -> Result<Vec<Partnership>> {
        self.read(|c| gw::list_partnerships(c, user))
    }

    async fn get_partnerships(&self, eas_device_id: &str) -> Result<Vec<Partnership>> {
        self.read(|c| gw::get_partnerships(c, eas_device_id))
    }

    async fn clear_partnerships(&self, ctx: &Ctx, eas_device_id: &str) -> Result<usize> {
        self.write(|tx| gw::clear_partnerships(tx, ctx, eas_device_id))
    }

    async fn save_bindings(
        &self,
        bindings: &[CertificateBinding],
    ) -> Result<Vec<CertificateBinding>> {
        self.write(|tx| gw::save_bindings(tx, bindings))
    }

    async fn get_binding(&self, serial: &str) -> Result<Option<CertificateBinding>> {
        self.read(|c| gw::get_binding(c, serial))
    }

    async fn list_bindings(&self) -> Result<Vec<CertificateBinding>> {
        self.read(gw::list_bindings)
    }

    async fn device_bindings(&self, eas_device_id: &str) -> Result<Vec<CertificateBinding>> {
        self.read(|c| gw::device_bindings(c, eas_device_id))
    }

    async fn insert_profile(&self, ctx: &Ctx, profile: NewProfile) -> Result<Profile> {
        self.write(|tx| crate::sqlite_profiles::insert_profile(tx, ctx, &profile))
    }

    async fn list_profiles(&self) -> Result<Vec<Profile>> {
        self.read(crate::sqlite_profiles::list_profiles)
    }

    async fn get_profile(&self, name: &str) -> Result<Option<Profile>> {
        self.read(|c| crate::sqlite_profiles::get_profile(c, name))
    }

    async fn remove_profile(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.write(|tx| crate::sqlite_profiles::remove_profile(tx, ctx, name))
    }

    async fn get_service_key(&self, ca: &str, role: &str) -> Result<Option<ServiceKey>> {
        self.read(|c| crate::sqlite_profiles::get_service_key(c, ca, role))
    }

    async fn insert_service_key(&self, ctx: &Ctx, key: ServiceKey) -> Result<()> {
        self.write(|tx| crate::sqlite_profiles::insert_service_key(tx, ctx, &key))
    }

    async fn add_challenge(
        &self,
        ctx: &Ctx,
        uid: &str,
        hash_hex: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx| crate::sqlite_profiles::add_challenge(tx, ctx, uid, hash_hex, expires_at))
    }

    async fn profile_token(&self, hash_hex: &str, now: i64) -> Result<Option<ProfileToken>> {
        self.read(|c| crate::sqlite_profiles::profile_token(c, hash_hex, now))
    }

    async fn consume_profile_token(&self, ctx: &Ctx, hash_hex: &str) -> Result<Option<String>> {
        self.write(|tx| crate::sqlite_profiles::consume_profile_token(tx, ctx, hash_hex))
    }

    async fn start_renewal(&self, ctx: &Ctx, renewal: NewRenewal) -> Result<bool> {
        self.write(|tx| crate::sqlite_profiles::start_renewal(tx, ctx, &renewal))
    }

    async fn expiring_certificates(&self, now: i64) -> Result<Vec<ExpiringCertificate>> {
        self.read(|c| crate::sqlite_profiles::expiring_certificates(c, now))
    }

    async fn list_renewals(&self) -> Result<Vec<Renewal>> {
        self.read(crate::sqlite_profiles::list_renewals)
    }
}

#[cfg(test)]
mod migration_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A database made before v7 keeps its SCEP RA: the row moves to `service_keys`.
    #[test]
    fn scep_ra_moves_into_service_keys() {
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations.to_version(&mut conn, 6).unwrap();
        conn.execute_batch(
            "INSERT INTO cas (id, name, key_type, subject, cert_der, key_sealed, not_before, not_after, created_at) \
             VALUES (1, 'mail', 'ec-p256', 'CN=x', x'01', x'02', 0, 1, 0); \
             INSERT INTO scep_ras (ca_id, cert_der, key_sealed, created_at) VALUES (1, x'0A', x'0B', 5);",
        )
        .unwrap();
        migrations.to_latest(&mut conn).unwrap();
        let key = crate::sqlite_profiles::get_service_key(&conn, "mail", "scep-ra")
            .unwrap()
            .unwrap();
        assert_eq!((key.cert_der, key.key_sealed), (vec![0x0A], vec![0x0B]));
        let old: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'scep_ras'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
    }
}
