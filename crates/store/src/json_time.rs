//! Times in JSON: the store keeps Unix seconds, and everything easgate prints — JSON and text
//! alike — shows them as RFC 3339 strings in UTC (`2026-11-23T16:45:00Z`), so scripts read one
//! format everywhere. Used as `#[serde(serialize_with = ...)]` on the models' time fields.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn format(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

pub fn rfc3339<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*secs))
}

pub fn rfc3339_opt<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => s.serialize_str(&format(*secs)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct T {
        #[serde(serialize_with = "super::rfc3339")]
        at: i64,
        #[serde(serialize_with = "super::rfc3339_opt")]
        maybe: Option<i64>,
        #[serde(serialize_with = "super::rfc3339_opt")]
        never: Option<i64>,
    }

    #[test]
    fn times_are_rfc3339_strings_in_utc() {
        let json = serde_json::to_string(&T {
            at: 1_795_000_000,
            maybe: Some(0),
            never: None,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"at":"2026-11-18T11:06:40Z","maybe":"1970-01-01T00:00:00Z","never":null}"#
        );
    }
}
