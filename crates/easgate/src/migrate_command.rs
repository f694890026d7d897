//! `easgate migrate --to postgres://…`: copy the SQLite install into an empty PostgreSQL
//! database, verified (the work is `easgate_store::copy`); progress on stderr, the
//! verification table (or JSON) on stdout.

use easgate_ops::Easgate;
use easgate_store::copy::{self, CopyError, Progress, Report};

use crate::cli::{Cli, Command, MigrateArgs};
use crate::commands::CliError;
use crate::output::{json, table};

/// A usage error of `migrate` (exit 2, as clap's own): a target that is not PostgreSQL, or a
/// source that is not SQLite. Checked before anything is opened.
pub fn usage_error(cli: &Cli) -> Option<String> {
    let Command::Migrate(args) = &cli.command else {
        return None;
    };
    if !easgate_store::is_postgres_url(&args.to) {
        return Some(format!(
            "--to must be a PostgreSQL URL (postgres://USER@HOST/DB or postgresql://…), not `{}`",
            easgate_store::redact_url(&args.to)
        ));
    }
    match &cli.database_url {
        Some(url) if !url.starts_with("sqlite:") => Some(format!(
            "migrate copies from SQLite, but --database-url (or EASGATE_DATABASE_URL) names `{}`; \
             name the SQLite source (sqlite://PATH, or leave it unset for DATA/easgate.db)",
            easgate_store::redact_url(url)
        )),
        _ => None,
    }
}

pub async fn migrate(e: &Easgate, args: MigrateArgs, as_json: bool) -> Result<(), CliError> {
    let mut progress = |p: Progress<'_>| match p {
        Progress::Copied {
            table,
            rows,
            done: true,
        } => eprintln!("easgate: migrate: {table}: {rows} rows copied"),
        Progress::Copied { table, rows, .. } => {
            eprintln!("easgate: migrate: {table}: {rows} rows so far")
        }
        Progress::Verifying => {
            eprintln!("easgate: migrate: verifying: row count and SHA-256 of every table")
        }
    };
    match copy::sqlite_to_postgres(&e.database_url, &args.to, &mut progress).await {
        Ok(report) => {
            print(&report, as_json)?;
            eprintln!(
                "easgate: migrate: committed to {}; start easgate with --database-url set to it \
                 and the same data directory (its master key opens the CA keys)",
                report.target
            );
            Ok(())
        }
        Err(err) => {
            if let CopyError::Mismatch { report, .. } = &err {
                print(report, as_json)?;
            }
            Err(err.into())
        }
    }
}

fn print(report: &Report, as_json: bool) -> Result<(), CliError> {
    if as_json {
        return json(report);
    }
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            let rows = if t.source_rows == t.target_rows {
                t.source_rows.to_string()
            } else {
                format!("{} (PostgreSQL: {})", t.source_rows, t.target_rows)
            };
            let checksum = if t.source_checksum == t.target_checksum {
                t.source_checksum.clone()
            } else {
                format!("{} (PostgreSQL: {})", t.source_checksum, t.target_checksum)
            };
            let ok = if t.ok { "ok" } else { "MISMATCH" };
            vec![t.table.clone(), rows, checksum, ok.to_string()]
        })
        .collect();
    table(&["table", "rows", "checksum", "ok"], &rows);
    Ok(())
}
