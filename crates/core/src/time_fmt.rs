//! Timestamps are stored as microseconds since the Unix epoch and rendered as RFC 3339 UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// RFC 3339 with microseconds, e.g. `2026-04-23T18:00:00.123456Z`.
pub fn rfc3339(micros: i64) -> String {
    let nanos = i128::from(micros) * 1000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
            format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            )
        }
        Err(_) => String::from("1970-01-01T00:00:00.000000Z"),
    }
}

pub fn opt_rfc3339(micros: Option<i64>) -> Option<String> {
    micros.map(rfc3339)
}

/// Parses RFC 3339 or a bare date (`2026-01-01`, read as midnight UTC) into micros.
pub fn parse(input: &str) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(input, &Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos() / 1000).ok();
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(input, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = 1_776_967_200_123_456;
        let s = rfc3339(m);
        assert_eq!(s, "2026-04-23T18:00:00.123456Z");
        assert_eq!(parse(&s), Some(m));
        assert_eq!(parse("2026-01-01"), Some(1_767_225_600_000_000));
        assert_eq!(parse("yesterday"), None);
    }
}
