//! Durations as the API writes them: `30s`, `30m`, `1h`, `168h`, `90d`, `2w`, or a sum such as `1h30m`.

use crate::error::Error;

/// Parses a duration into seconds. Zero and negative durations are rejected.
pub fn parse_seconds(input: &str) -> Result<i64, Error> {
    let bad = || Error::invalid_duration(input);
    let s = input.trim();
    if s.is_empty() || s.len() > 32 {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut num: Option<i64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = num
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(d)));
            num = Some(n.ok_or_else(bad)?);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if num.is_some() || total <= 0 || total > 100 * 365 * 86_400 {
        return Err(bad());
    }
    Ok(total)
}

/// Formats seconds back into the largest exact unit (`90d`, `48h`, `30m`, `45s`).
pub fn format_seconds(secs: i64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % n == 0 && secs >= n {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_forms() {
        assert_eq!(parse_seconds("30m").unwrap(), 1800);
        assert_eq!(parse_seconds("1h").unwrap(), 3600);
        assert_eq!(parse_seconds("168h").unwrap(), 604_800);
        assert_eq!(parse_seconds("90d").unwrap(), 7_776_000);
        assert_eq!(parse_seconds("2w").unwrap(), 1_209_600);
        assert_eq!(parse_seconds("1h30m").unwrap(), 5400);
        assert_eq!(parse_seconds("45s").unwrap(), 45);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "h",
            "10",
            "-1h",
            "0s",
            "1y",
            "1.5h",
            "99999999999999999999d",
            "36501d",
            "1h 2m",
        ] {
            assert!(parse_seconds(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_seconds(7_776_000), "90d");
        assert_eq!(format_seconds(172_800), "2d");
        assert_eq!(format_seconds(5400), "90m");
        assert_eq!(format_seconds(61), "61s");
    }
}
