//! The SQLite side: one read-only connection holding one read transaction for the whole copy.
//!
//! Why one read transaction: in WAL mode it is a snapshot, so every table is read as of the
//! same moment and the verification reads exactly what was copied, even if something writes
//! meanwhile (it should not: `serve` is to be stopped first, and later writes would not be in
//! the copy). Reads are short synchronous calls that return owned rows, so the connection is
//! never borrowed across an `.await`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::error::CopyError;
use super::tables::{column_list, key_order, quoted, Column, Kind, Table, TABLES};
use super::value::{Checksum, Value};

/// The source database, opened read-only at one snapshot.
pub(crate) struct Source {
    conn: Connection,
}

impl Source {
    pub(crate) fn open(path: &Path) -> Result<Self, CopyError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("BEGIN DEFERRED")?;
        // The first read of a deferred transaction fixes its snapshot.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(Source { conn })
    }

    /// Refuse a source with a table or column the list does not have, or missing one.
    pub(crate) fn check_schema(&self) -> Result<(), CopyError> {
        let mismatch = |detail: String| CopyError::SchemaMismatch {
            side: "SQLite",
            detail,
        };
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?;
        let present: BTreeSet<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let listed: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        if present != listed {
            let unknown: Vec<_> = present.difference(&listed).cloned().collect();
            let missing: Vec<_> = listed.difference(&present).cloned().collect();
            return Err(mismatch(format!(
                "tables not copied: [{}]; tables missing: [{}] (is this easgate older or newer \
                 than the one that made the database?)",
                unknown.join(", "),
                missing.join(", ")
            )));
        }
        for table in TABLES {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1)")?;
            let columns: BTreeSet<String> = stmt
                .query_map([table.name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let listed: BTreeSet<String> =
                table.columns.iter().map(|c| c.name.to_string()).collect();
            if columns != listed {
                return Err(mismatch(format!(
                    "table {} has columns [{}], migrate copies [{}]",
                    table.name,
                    columns.into_iter().collect::<Vec<_>>().join(", "),
                    listed.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Up to `limit` rows of `table` after `after_rowid`, in rowid order (for tables with an
    /// integer key that is the key, so ids and the audit trail's order are kept), each with its
    /// rowid; fewer once they hold about `max_bytes` (CRLs and certificates are blobs of up to
    /// megabytes: a batch of them must not take the memory of the whole table).
    pub(crate) fn chunk(
        &self,
        table: &'static Table,
        after_rowid: i64,
        limit: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Vec<Value>)>, CopyError> {
        let sql = format!(
            "SELECT rowid, {} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            column_list(table),
            quoted(table.name)
        );
        let read_error = |source| CopyError::Read {
            table: table.name,
            source,
        };
        let mut stmt = self.conn.prepare_cached(&sql).map_err(read_error)?;
        let mut rows = stmt
            .query(rusqlite::params![after_rowid, limit])
            .map_err(read_error)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next().map_err(read_error)? {
            let rowid: i64 = row.get(0).map_err(read_error)?;
            let values = read_row(table, row, 1, rowid)?;
            bytes += values.iter().map(Value::size).sum::<usize>();
            out.push((rowid, values));
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Row count and checksum of `table`, rows in key order (text byte-wise).
    pub(crate) fn checksum(&self, table: &'static Table) -> Result<(u64, String), CopyError> {
        let sql = format!(
            "SELECT rowid, {} FROM {} ORDER BY {}",
            column_list(table),
            quoted(table.name),
            key_order(table, "BINARY")
        );
        let read_error = |source| CopyError::Read {
            table: table.name,
            source,
        };
        let mut stmt = self.conn.prepare(&sql).map_err(read_error)?;
        let mut rows = stmt.query([]).map_err(read_error)?;
        let mut sum = Checksum::new(table);
        while let Some(row) = rows.next().map_err(read_error)? {
            let rowid: i64 = row.get(0).map_err(read_error)?;
            sum.add_row(&read_row(table, row, 1, rowid)?);
        }
        Ok(sum.finish())
    }

    /// The highest value an AUTOINCREMENT key ever had (`sqlite_sequence`), which may exceed
    /// the largest one left: PostgreSQL's sequence must not hand out one of those again.
    pub(crate) fn autoincrement_high(&self, table: &str) -> Result<Option<i64>, CopyError> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// The columns of `table` from `row`, starting at index `first`, each as its kind says.
fn read_row(
    table: &'static Table,
    row: &rusqlite::Row<'_>,
    first: usize,
    rowid: i64,
) -> Result<Vec<Value>, CopyError> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let raw = row.get_ref(first + i).map_err(|source| CopyError::Read {
                table: table.name,
                source,
            })?;
            to_value(raw, column).map_err(|why| CopyError::Value {
                table: table.name,
                row: rowid,
                column: column.name,
                why,
            })
        })
        .collect()
}

/// One SQLite cell as the value the column's kind says it is.
fn to_value(raw: ValueRef<'_>, column: &Column) -> Result<Value, String> {
    match (raw, column.kind) {
        (ValueRef::Null, _) => Ok(Value::Null),
        (ValueRef::Integer(v), Kind::Int) => Ok(Value::Int(v)),
        (ValueRef::Integer(0), Kind::Bool) => Ok(Value::Bool(false)),
        (ValueRef::Integer(1), Kind::Bool) => Ok(Value::Bool(true)),
        (ValueRef::Integer(v), Kind::Bool) => Err(format!("{v} is not a boolean (0 or 1)")),
        (ValueRef::Text(bytes), Kind::Text) => {
            let text = std::str::from_utf8(bytes).map_err(|e| format!("text is not UTF-8: {e}"))?;
            if text.contains('\0') {
                return Err("text holds a NUL character, which PostgreSQL cannot store".into());
            }
            Ok(Value::Text(text.to_string()))
        }
        (ValueRef::Blob(bytes), Kind::Blob) => Ok(Value::Blob(bytes.to_vec())),
        (other, kind) => Err(format!(
            "holds a {} where {kind:?} is expected",
            match other.data_type() {
                rusqlite::types::Type::Null => "NULL",
                rusqlite::types::Type::Integer => "INTEGER",
                rusqlite::types::Type::Real => "REAL",
                rusqlite::types::Type::Text => "TEXT",
                rusqlite::types::Type::Blob => "BLOB",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A migrated SQLite file with three CRLs of 1 KiB and a deleted change-feed row.
    fn database() -> (tempfile::TempDir, Source) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("easgate.db");
        let mut conn = Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(
            crate::sqlite::MIGRATIONS
                .iter()
                .map(|sql| rusqlite_migration::M::up(sql))
                .collect(),
        )
        .to_latest(&mut conn)
        .unwrap();
        conn.execute_batch(
            "INSERT INTO cas (id, name, key_type, subject, cert_der, key_sealed, not_before, \
               not_after, created_at) VALUES (1, 'mail', 'ec-p256', 'CN=x', x'01', x'02', 0, 1, 0); \
             INSERT INTO crls (ca_id, number, scope, this_update, next_update, entries, der) \
               VALUES (1, 1, 'full', 0, 1, 0, zeroblob(1024)), (1, 2, 'full', 0, 1, 0, zeroblob(1024)), \
               (1, 3, 'delta', 0, 1, 0, zeroblob(1024)); \
             INSERT INTO changes (at, entity, key) VALUES (0, 'ca', 'mail'), (0, 'ca', 'mail'); \
             DELETE FROM changes WHERE revision = 2;",
        )
        .unwrap();
        drop(conn);
        let source = Source::open(&path).unwrap();
        (dir, source)
    }

    fn table(name: &str) -> &'static Table {
        TABLES.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn a_chunk_stops_at_its_byte_budget_and_resumes_after_its_last_row() {
        let (_dir, source) = database();
        source.check_schema().unwrap();
        let crls = table("crls");
        let first = source.chunk(crls, i64::MIN, 500, 1500).unwrap();
        assert_eq!(
            first.len(),
            2,
            "the row that passes the budget ends the chunk"
        );
        let rest = source.chunk(crls, first[1].0, 500, 1500).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1[2], Value::Int(3));
        assert!(source.chunk(crls, rest[0].0, 500, 1500).unwrap().is_empty());
        assert_eq!(source.checksum(crls).unwrap().0, 3);
    }

    #[test]
    fn the_change_feed_high_water_mark_survives_deleted_rows() {
        let (_dir, source) = database();
        assert_eq!(source.autoincrement_high("changes").unwrap(), Some(2));
        assert_eq!(source.autoincrement_high("crls").unwrap(), None);
        assert_eq!(source.checksum(table("changes")).unwrap().0, 1);
    }

    const FLAG: Column = Column {
        name: "disabled",
        kind: Kind::Bool,
    };
    const NUMBER: Column = Column {
        name: "at",
        kind: Kind::Int,
    };

    #[test]
    fn booleans_must_be_zero_or_one() {
        assert_eq!(to_value(ValueRef::Integer(1), &FLAG), Ok(Value::Bool(true)));
        assert_eq!(
            to_value(ValueRef::Integer(0), &FLAG),
            Ok(Value::Bool(false))
        );
        assert!(to_value(ValueRef::Integer(2), &FLAG).is_err());
    }

    #[test]
    fn a_value_of_another_type_is_refused() {
        assert!(to_value(ValueRef::Text(b"12"), &NUMBER).is_err());
        assert!(to_value(ValueRef::Real(1.0), &NUMBER).is_err());
        assert_eq!(to_value(ValueRef::Null, &NUMBER), Ok(Value::Null));
        let text = Column {
            name: "detail",
            kind: Kind::Text,
        };
        assert!(to_value(ValueRef::Text(b"a\0b"), &text).is_err());
        assert!(to_value(ValueRef::Text(&[0xff, 0xfe]), &text).is_err());
    }
}
