//! Converting between store times (Unix seconds) and `time` values, and printing them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC, e.g. `2026-11-23T16:45:00Z`.
pub fn rfc3339(secs: i64) -> String {
    from_unix(secs)
        .format(&Rfc3339)
        .unwrap_or_else(|_| secs.to_string())
}
