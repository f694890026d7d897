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

/// Parse `90s`, `30m`, `24h`, `7d` into seconds; `None` for anything else.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A point in time given as a duration back from `now` (`24h`) or as RFC 3339
/// (`2026-12-01T00:00:00Z`), in Unix seconds; `None` if it is neither.
pub fn parse_since(text: &str, now: i64) -> Option<i64> {
    if let Some(back) = parse_duration(text) {
        return now.checked_sub(back);
    }
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}
