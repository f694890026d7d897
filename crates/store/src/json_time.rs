//! Times in JSON: the store keeps Unix seconds, and everything easgate prints — JSON and text
//! alike — shows them as RFC 3339 strings in UTC (`2026-11-23T16:45:00Z`), so scripts read one
//! format everywhere. Used as `#[serde(serialize_with = ...)]` on the models' time fields.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One time as easgate prints it (RFC 3339, UTC), for messages as well as JSON.
pub(crate) fn format(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for years 0 to 9999, written into a stack buffer: a page of the API
/// prints hundreds of times, and formatting each into a `String` of its own was a measurable
/// part of its cost. `None` outside those years (the caller falls back to [`format`]).
fn format_fast(secs: i64, buf: &mut [u8; 20]) -> Option<&str> {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let digits = |buf: &mut [u8; 20], at: usize, value: i64, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(buf, 0, year, 4);
    buf[4] = b'-';
    digits(buf, 5, month, 2);
    buf[7] = b'-';
    digits(buf, 8, day, 2);
    buf[10] = b'T';
    digits(buf, 11, of_day / 3600, 2);
    buf[13] = b':';
    digits(buf, 14, of_day / 60 % 60, 2);
    buf[16] = b':';
    digits(buf, 17, of_day % 60, 2);
    buf[19] = b'Z';
    std::str::from_utf8(&buf[..]).ok()
}

pub fn rfc3339<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 20];
    match format_fast(*secs, &mut buf) {
        Some(text) => s.serialize_str(text),
        None => s.serialize_str(&format(*secs)),
    }
}

pub fn rfc3339_opt<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => rfc3339(secs, s),
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
    fn the_fast_form_is_the_time_crates_form() {
        let mut buf = [0u8; 20];
        for secs in [
            0,
            -1,
            59,
            86_399,
            86_400,
            951_782_400, // 2000-02-29
            1_795_000_000,
            4_102_444_800,   // 2100-01-01
            253_402_300_799, // 9999-12-31T23:59:59
            -62_167_219_200, // 0000-01-01
        ] {
            assert_eq!(
                super::format_fast(secs, &mut buf),
                Some(super::format(secs).as_str()),
                "{secs}"
            );
        }
        assert_eq!(super::format_fast(253_402_300_800, &mut buf), None);
        assert_eq!(super::format_fast(i64::MAX, &mut buf), None);
        assert_eq!(super::format_fast(i64::MIN, &mut buf), None);
    }

    proptest::proptest! {
        #[test]
        fn any_time_formats_as_the_time_crate_does(secs in -62_167_219_200i64..253_402_300_800) {
            let mut buf = [0u8; 20];
            let expected = super::format(secs);
            proptest::prop_assert_eq!(super::format_fast(secs, &mut buf), Some(expected.as_str()));
        }
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
