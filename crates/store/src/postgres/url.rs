//! Reading a `postgres://` URL into sqlx's connection options, plus easgate's own `schema`
//! parameter.
//!
//! Why a parameter of our own: tests (and installs sharing one database) need each store in a
//! schema of its own, and that schema may not exist yet. libpq's `options=-c search_path=…`
//! only selects a schema; it cannot create one. `?schema=NAME` is taken out of the URL before
//! sqlx sees it, the schema is created if missing (under the migration lock), and every pooled
//! connection starts with `search_path` set to it. Without it, the server's default search path
//! applies (normally `public`).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::error::{Result, StoreError};
use crate::redact_url;

/// A parsed PostgreSQL URL.
#[derive(Clone, Debug)]
pub(crate) struct PgUrl {
    /// The URL with its password redacted, for messages.
    pub(crate) redacted: String,
    pub(crate) options: PgConnectOptions,
    /// The schema named by `?schema=`, if any.
    pub(crate) schema: Option<String>,
}

impl PgUrl {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let redacted = redact_url(url);
        let invalid = |why: String| StoreError::UnsupportedUrl {
            url: redacted.clone(),
            why,
        };
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let mut schema = None;
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("schema", name)) => schema = Some(schema_name(name).map_err(&invalid)?),
                _ if pair.is_empty() => {}
                _ => kept.push(pair),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut options = PgConnectOptions::from_str(&rebuilt)
            .map_err(|e| invalid(format!("not a PostgreSQL connection URL: {e}")))?
            .application_name("easgate");
        if let Some(name) = &schema {
            options = options.options([("search_path", name.as_str())]);
        }
        Ok(PgUrl {
            redacted,
            options,
            schema,
        })
    }

    /// One connection, failing at once (no pool retries) with a message naming host and port
    /// and never the password.
    pub(crate) async fn connect(&self) -> Result<sqlx::PgConnection> {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&self.options)
            .await
            .map_err(|source| StoreError::Connect {
                url: self.redacted.clone(),
                host: self.options.get_host().to_string(),
                port: self.options.get_port(),
                source,
            })
    }
}

/// A schema name easgate accepts: letters, digits and `_`, not starting with a digit, at most
/// 63 bytes (PostgreSQL's identifier limit), so it needs no quoting anywhere.
fn schema_name(name: &str) -> std::result::Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "schema `{name}`: use letters, digits and _ (not first), at most 63 characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_taken_out_and_other_parameters_kept() {
        let u =
            PgUrl::parse("postgres://u:secret@db:5433/easgate?sslmode=disable&schema=t_1").unwrap();
        assert_eq!(u.schema.as_deref(), Some("t_1"));
        assert_eq!(u.options.get_host(), "db");
        assert_eq!(u.options.get_port(), 5433);
        assert_eq!(u.options.get_database(), Some("easgate"));
        assert_eq!(
            u.redacted,
            "postgres://u:***@db:5433/easgate?sslmode=disable&schema=t_1"
        );
    }

    #[test]
    fn bad_schema_names_are_refused_with_the_redacted_url() {
        for bad in ["", "1abc", "a-b", "a\"b", &"x".repeat(64)] {
            let url = format!("postgresql://u:pw@h/d?schema={bad}");
            let e = PgUrl::parse(&url).unwrap_err().to_string();
            assert!(e.contains("u:***@h"), "{e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }
}
