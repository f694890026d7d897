//! What is copied: every table of the schema, its columns with their kind, its key and its
//! serial column, in an order that satisfies the foreign keys.
//!
//! Why a hand-written list rather than reading the schema at run time: the two schemas differ
//! in type (SQLite's 0/1 integers are PostgreSQL BOOLEANs, BIGINT vs INTEGER, BYTEA vs BLOB)
//! and only a list that says so per column can map values exactly. The list is checked against
//! both schemas before anything is copied (`source.rs`, `target.rs`) and, without a database,
//! by the tests below: a table or column added to one migration set and not here stops the
//! copy rather than being left behind.

/// How a column's values are kept; the same on both sides except for `Bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Int,
    /// TEXT on both (JSON lists too: PostgreSQL keeps them as TEXT, byte for byte).
    Text,
    /// SQLite BLOB, PostgreSQL BYTEA.
    Blob,
    /// SQLite INTEGER holding 0 or 1, PostgreSQL BOOLEAN.
    Bool,
}

/// One column of a copied table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

/// One copied table.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [Column],
    /// The primary key, in order: rows are checksummed in this order (byte-wise for text).
    pub(crate) key: &'static [&'static str],
    /// The PostgreSQL BIGSERIAL column whose sequence must continue after the copied values.
    pub(crate) serial: Option<&'static str>,
}

impl Table {
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
    }
}
const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
    }
}
const fn blob(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Blob,
    }
}
const fn boolean(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Bool,
    }
}

/// Every table, parents before children.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "settings",
        columns: &[text("key"), text("value")],
        key: &["key"],
        serial: None,
    },
    Table {
        name: "cas",
        columns: &[
            int("id"),
            text("name"),
            text("key_type"),
            text("subject"),
            blob("cert_der"),
            blob("key_sealed"),
            int("not_before"),
            int("not_after"),
            int("created_at"),
            boolean("scep_no_des"),
            int("removed_at"),
            boolean("scep_ra_only"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "trusted_cas",
        columns: &[
            int("id"),
            text("name"),
            text("subject"),
            blob("cert_der"),
            text("crl_url"),
            text("delta_crl_url"),
            int("created_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "groups",
        columns: &[int("id"), text("name"), int("created_at")],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "users",
        columns: &[
            int("id"),
            text("upn"),
            text("email"),
            text("display_name"),
            boolean("disabled"),
            int("created_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "user_groups",
        columns: &[int("user_id"), int("group_id")],
        key: &["user_id", "group_id"],
        serial: None,
    },
    Table {
        name: "templates",
        columns: &[
            int("id"),
            text("name"),
            int("ca_id"),
            text("subject"),
            text("sans"),
            text("key_type"),
            int("validity_days"),
            int("renew_before_days"),
            boolean("is_default"),
            int("created_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "devices",
        columns: &[
            int("id"),
            text("uid"),
            int("user_id"),
            text("platform"),
            int("template_id"),
            text("state"),
            text("device_serial"),
            int("created_at"),
            int("updated_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "scep_challenges",
        columns: &[
            int("id"),
            int("device_id"),
            text("hash"),
            int("created_at"),
            int("expires_at"),
            int("used_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "profile_tokens",
        columns: &[
            int("id"),
            int("device_id"),
            text("hash"),
            int("created_at"),
            int("expires_at"),
            int("used_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "certificates",
        columns: &[
            text("serial"),
            int("ca_id"),
            int("device_id"),
            int("template_id"),
            text("subject"),
            text("sans"),
            text("key_type"),
            int("not_before"),
            int("not_after"),
            blob("der"),
            text("status"),
            int("revoked_at"),
            text("revocation_reason"),
            int("issued_at"),
        ],
        key: &["serial"],
        serial: None,
    },
    Table {
        name: "audit_events",
        columns: &[
            int("id"),
            int("at"),
            text("actor"),
            text("action"),
            text("target"),
            text("detail"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "changes",
        columns: &[int("revision"), int("at"), text("entity"), text("key")],
        key: &["revision"],
        serial: Some("revision"),
    },
    Table {
        name: "crl_numbers",
        columns: &[int("ca_id"), int("last")],
        key: &["ca_id"],
        serial: None,
    },
    Table {
        name: "crls",
        columns: &[
            int("id"),
            int("ca_id"),
            int("number"),
            text("scope"),
            int("base_number"),
            int("this_update"),
            int("next_update"),
            int("entries"),
            blob("der"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "scep_transactions",
        columns: &[
            int("ca_id"),
            text("transaction_id"),
            text("key_sha256"),
            text("serial"),
            int("created_at"),
        ],
        key: &["ca_id", "transaction_id"],
        serial: None,
    },
    Table {
        name: "access_rules",
        columns: &[
            int("id"),
            text("name"),
            int("priority"),
            text("users"),
            text("groups"),
            text("platforms"),
            text("clients"),
            text("device_states"),
            text("networks"),
            text("action"),
            int("created_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "eas_overrides",
        columns: &[
            text("eas_device_id"),
            text("action"),
            text("reason"),
            int("created_at"),
            boolean("unmanaged"),
        ],
        key: &["eas_device_id"],
        serial: None,
    },
    Table {
        name: "eas_partnerships",
        columns: &[
            text("user"),
            text("eas_device_id"),
            boolean("suspect"),
            text("device_type"),
            text("model"),
            text("os"),
            text("friendly_name"),
            text("user_agent"),
            text("client"),
            text("platform"),
            text("protocol"),
            int("first_seen"),
            int("last_seen"),
            int("last_sync"),
            text("last_command"),
            text("cert_serial"),
            text("device_state"),
            text("access_state"),
            text("access_reason"),
            int("last_refusal_at"),
            text("last_refusal"),
            text("policy_applied"),
            int("policy_key"),
            text("policy_status"),
            int("policy_updated_at"),
        ],
        key: &["user", "eas_device_id", "suspect"],
        serial: None,
    },
    Table {
        name: "certificate_bindings",
        columns: &[
            text("serial"),
            text("eas_device_id"),
            text("user"),
            int("bound_at"),
        ],
        key: &["serial"],
        serial: None,
    },
    Table {
        name: "profiles",
        columns: &[
            int("id"),
            text("name"),
            text("platform"),
            int("template_id"),
            text("eas_host"),
            text("account_name"),
            text("email"),
            text("username"),
            text("domain"),
            text("delivery"),
            text("groups"),
            int("created_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "service_keys",
        columns: &[
            int("ca_id"),
            text("role"),
            blob("cert_der"),
            blob("key_sealed"),
            int("created_at"),
        ],
        key: &["ca_id", "role"],
        serial: None,
    },
    Table {
        name: "renewals",
        columns: &[
            int("id"),
            int("device_id"),
            text("serial"),
            int("created_at"),
            int("cleared_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "api_tokens",
        columns: &[
            int("id"),
            text("name"),
            text("role"),
            text("hash"),
            int("created_at"),
            int("expires_at"),
            int("revoked_at"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "unbound_challenges",
        columns: &[
            int("id"),
            text("hash"),
            int("ca_id"),
            int("created_at"),
            int("expires_at"),
            int("used_at"),
            int("device_id"),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "eas_policies",
        columns: &[
            text("name"),
            text("settings"),
            text("groups"),
            boolean("is_default"),
            int("created_at"),
            int("updated_at"),
        ],
        key: &["name"],
        serial: None,
    },
    Table {
        name: "eas_wipes",
        columns: &[
            text("eas_device_id"),
            boolean("account_only"),
            text("state"),
            text("requested_by"),
            int("requested_at"),
            int("sent_at"),
            int("ack_at"),
            text("device_uid"),
        ],
        key: &["eas_device_id"],
        serial: None,
    },
];

/// An identifier quoted for either database (`user`, `groups` and `key` need it).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column list of `table`, quoted, comma-separated.
pub(crate) fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| quoted(c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ORDER BY` over the key, text compared byte-wise: `text_collation` is `BINARY` for SQLite
/// and `"C"` for PostgreSQL, so both sides walk rows in the same order.
pub(crate) fn key_order(table: &Table, text_collation: &str) -> String {
    table
        .key
        .iter()
        .map(|k| match table.column(k).map(|c| c.kind) {
            Some(Kind::Text) => format!("{} COLLATE {text_collation}", quoted(k)),
            _ => quoted(k),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use rusqlite::Connection;
    use rusqlite_migration::{Migrations, M};

    use super::*;

    fn migrated_sqlite() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::new(
            crate::sqlite::MIGRATIONS
                .iter()
                .map(|sql| M::up(sql))
                .collect(),
        )
        .to_latest(&mut conn)
        .unwrap();
        conn
    }

    /// Every table the SQLite migrations leave is copied, and nothing else: a new SQLite table
    /// fails here until the copy handles it.
    #[test]
    fn every_sqlite_table_is_copied() {
        let conn = migrated_sqlite();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap();
        let in_sqlite: BTreeSet<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let copied: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(in_sqlite, copied);
    }

    /// Every column of every SQLite table is copied with a kind its declared type fits.
    #[test]
    fn every_sqlite_column_is_copied_with_its_kind() {
        let conn = migrated_sqlite();
        for table in TABLES {
            let mut stmt = conn
                .prepare("SELECT name, type, pk FROM pragma_table_info(?1)")
                .unwrap();
            let columns: Vec<(String, String, i64)> = stmt
                .query_map([table.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let names: BTreeSet<&str> = columns.iter().map(|(n, _, _)| n.as_str()).collect();
            let listed: BTreeSet<&str> = table.columns.iter().map(|c| c.name).collect();
            assert_eq!(names, listed, "columns of {}", table.name);
            for (name, declared, _) in &columns {
                let kind = table.column(name).unwrap().kind;
                let fits = match kind {
                    Kind::Int | Kind::Bool => declared == "INTEGER",
                    Kind::Text => declared == "TEXT",
                    Kind::Blob => declared == "BLOB",
                };
                assert!(fits, "{}.{name}: {declared} as {kind:?}", table.name);
            }
            let mut key: Vec<(i64, &str)> = columns
                .iter()
                .filter(|(_, _, pk)| *pk > 0)
                .map(|(n, _, pk)| (*pk, n.as_str()))
                .collect();
            key.sort();
            let key: Vec<&str> = key.into_iter().map(|(_, n)| n).collect();
            assert_eq!(key, table.key, "primary key of {}", table.name);
        }
    }

    /// The PostgreSQL migrations create every copied table (their columns are compared with
    /// the list at run time, inside the copy's transaction).
    #[test]
    fn every_copied_table_exists_in_the_postgres_schema() {
        let sql = [
            include_str!("../../migrations/postgres/0001_init.sql"),
            include_str!("../../migrations/postgres/0003_eas_provision.sql"),
        ]
        .concat();
        for table in TABLES {
            assert!(
                sql.contains(&format!("CREATE TABLE {} (", table.name)),
                "{}",
                table.name
            );
        }
    }

    /// Parents come before children, so foreign keys hold at every insert.
    #[test]
    fn parents_are_copied_before_children() {
        let conn = migrated_sqlite();
        for (index, table) in TABLES.iter().enumerate() {
            let mut stmt = conn
                .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
                .unwrap();
            let parents: Vec<String> = stmt
                .query_map([table.name], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            for parent in parents {
                let at = TABLES.iter().position(|t| t.name == parent).unwrap();
                assert!(at < index, "{} before its parent {parent}", table.name);
            }
        }
    }
}
