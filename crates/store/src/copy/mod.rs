//! Copying a whole SQLite install into an empty PostgreSQL database (or schema), then
//! verifying the copy: what `easgate migrate --to postgres://…` runs.
//!
//! The copy is table by table, row by row, values exactly as stored: sealed CA and service
//! keys stay sealed (the data directory's master key opens them on either backend), ids, CRL
//! counters, the change feed's revisions and the audit trail keep their numbers and order, and
//! every serial sequence is moved past the copied ids so later inserts work.
//!
//! Order of work, and why:
//! 1. The source is brought to the current schema (as every command does) and read through
//!    one read-only snapshot (`source.rs`), checked against the table list (`tables.rs`).
//! 2. The target is checked for rows *before* anything is written to it (not even its
//!    schema), so a refused migrate changes nothing.
//! 3. The target is opened through [`PgStore::open`], the backend's own migration path, so
//!    the schema is the one the backend expects.
//! 4. Everything else is **one PostgreSQL transaction** holding the backend's writer lock:
//!    the schema check, the emptiness check again (another process may have written since
//!    step 2), the inserts, the sequences and the verification. Nothing is half-written on
//!    failure.
//! 5. Verification runs inside that transaction, before commit: per table the row count and
//!    a SHA-256 over every row in key order (text byte-wise), computed here in Rust from the
//!    values read back from each side (`value.rs`). Why before commit: a mismatch then rolls
//!    the copy back, leaving the target empty to try again, instead of leaving a committed
//!    copy known to be wrong that the admin must clean out by hand; and the transaction sees
//!    exactly what its commit makes visible. The commit itself is all-or-nothing.
//!
//! Modules, one job each: `tables` (what is copied), `value` (cells and checksums), `source`
//! (SQLite reads), `target` (PostgreSQL checks, writes and reads), `error` (why it stopped).

mod error;
mod source;
mod tables;
mod target;
mod value;

use serde::Serialize;
use sqlx::Connection;

pub use error::CopyError;

use crate::postgres::{lock_writers, PgUrl};
use crate::{is_postgres_url, redact_url, PgStore, SqliteStore};

/// One table's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// SHA-256 (hex) of the source's rows.
    pub source_checksum: String,
    /// SHA-256 (hex) of the rows read back from PostgreSQL.
    pub target_checksum: String,
    /// Row counts and checksums agree.
    pub ok: bool,
}

/// The verification of a copy, table by table in copy order.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub target: String,
    pub tables: Vec<TableReport>,
    /// Every table agrees (and the copy was committed).
    pub ok: bool,
}

/// What the copy reports while it works (admins expect a sign of life on long copies).
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// `rows` rows of `table` copied so far (once per table at least, when it is done).
    Copied {
        table: &'a str,
        rows: u64,
        done: bool,
    },
    /// Every table is copied; the checksums are being computed.
    Verifying,
}

/// Bytes of values per INSERT, about (a batch stops at the row that passes it).
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Rows between progress reports inside one table.
const PROGRESS_EVERY: u64 = 50_000;

/// The names of the tables the copy handles, in copy order.
pub fn copied_tables() -> Vec<&'static str> {
    tables::TABLES.iter().map(|t| t.name).collect()
}

/// Copy the SQLite database at `source_url` (`sqlite://PATH`) into the empty PostgreSQL
/// database or schema at `target_url`, verify it, and commit. A target holding any easgate row
/// is refused before anything is written to it.
pub async fn sqlite_to_postgres(
    source_url: &str,
    target_url: &str,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Report, CopyError> {
    if !source_url.starts_with("sqlite:") {
        return Err(CopyError::SourceNotSqlite {
            url: redact_url(source_url),
        });
    }
    if !is_postgres_url(target_url) {
        return Err(CopyError::TargetNotPostgres {
            url: redact_url(target_url),
        });
    }
    let target = PgUrl::parse(target_url)?;

    // 1. The source at the current schema, then one snapshot of it.
    drop(SqliteStore::open(source_url).await?);
    let source = source::Source::open(&crate::sqlite::path_of(source_url)?)?;
    source.check_schema()?;

    // 2. The target must be empty; nothing is written to it before this is known.
    let mut conn = target.connect().await?;
    refuse_rows(&target, target::rows_present(&mut conn).await?)?;
    let _ = conn.close().await;

    // 3. The backend's own migration path creates the schema.
    drop(PgStore::open(target_url).await?);

    // 4. One transaction, under the writers' lock.
    let mut conn = target.connect().await?;
    let mut tx = conn.begin().await?;
    lock_writers(&mut tx).await?;
    target::check_schema(&mut tx).await?;
    refuse_rows(&target, target::rows_present(&mut tx).await?)?;
    target::clear_seed(&mut tx).await?;

    for table in tables::TABLES {
        let batch = target::rows_per_insert(table);
        let mut after = i64::MIN;
        let mut copied = 0u64;
        let mut reported = 0u64;
        loop {
            let chunk = source.chunk(table, after, batch as i64, BATCH_BYTES)?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            after = *last;
            let rows: Vec<_> = chunk.into_iter().map(|(_, row)| row).collect();
            target::insert(&mut tx, table, &rows).await?;
            copied += rows.len() as u64;
            if copied - reported >= PROGRESS_EVERY {
                reported = copied;
                progress(Progress::Copied {
                    table: table.name,
                    rows: copied,
                    done: false,
                });
            }
        }
        progress(Progress::Copied {
            table: table.name,
            rows: copied,
            done: true,
        });
    }
    for table in tables::TABLES {
        if let Some(column) = table.serial {
            let floor = source.autoincrement_high(table.name)?;
            target::advance_sequence(&mut tx, table, column, floor).await?;
        }
    }

    // 5. Verify before commit; a difference rolls everything back.
    progress(Progress::Verifying);
    let mut tables = Vec::new();
    for table in tables::TABLES {
        let (source_rows, source_checksum) = source.checksum(table)?;
        let (target_rows, target_checksum) = target::checksum(&mut tx, table).await?;
        tables.push(TableReport {
            table: table.name.to_string(),
            ok: source_rows == target_rows && source_checksum == target_checksum,
            source_rows,
            target_rows,
            source_checksum,
            target_checksum,
        });
    }
    let mismatched: Vec<String> = tables
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.table.clone())
        .collect();
    let mut report = Report {
        source: redact_url(source_url),
        target: target.redacted.clone(),
        tables,
        ok: mismatched.is_empty(),
    };
    if !mismatched.is_empty() {
        tx.rollback().await?;
        report.ok = false;
        return Err(CopyError::Mismatch {
            mismatched,
            report: Box::new(report),
        });
    }
    tx.commit().await?;
    let _ = conn.close().await;
    Ok(report)
}

fn refuse_rows(target: &PgUrl, rows: Vec<(String, i64)>) -> Result<(), CopyError> {
    if rows.is_empty() {
        return Ok(());
    }
    Err(CopyError::TargetNotEmpty {
        url: target.redacted.clone(),
        tables: rows
            .iter()
            .map(|(table, count)| format!("{table}: {count} rows"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}
