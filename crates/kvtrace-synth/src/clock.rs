//! Timestamp formatting from milliseconds since the Unix epoch (no chrono needed).
//!
//! Formats produced: the proxy's `timestamp` column (Go `time.RFC3339`, second precision,
//! `Z` or an offset), a fork's fixed-width millisecond variant, `completedAt` (Go
//! `time.RFC3339Nano`, trailing zeros trimmed), session-log stamps (JavaScript
//! `toISOString`, milliseconds and `Z`) and SQLite's `CURRENT_TIMESTAMP`.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Milliseconds since the epoch of a UTC civil time.
pub fn ms_of(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64) * 1000
}

fn parts(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, (sod / 60) % 60, sod % 60, milli)
}

fn push_date_time(out: &mut String, ms: i64, sep: char) -> u32 {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}");
    milli
}

fn push_zone(out: &mut String, offset_min: i32) {
    if offset_min == 0 {
        out.push('Z');
    } else {
        use std::fmt::Write;
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.unsigned_abs();
        let _ = write!(out, "{sign}{:02}:{:02}", a / 60, a % 60);
    }
}

/// How a capture writes its `timestamp` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampStyle {
    /// Go `time.RFC3339` in UTC: `2026-03-25T19:42:06Z`.
    Utc,
    /// Go `time.RFC3339` in a local zone: `2026-03-26T03:42:06+08:00`.
    Offset(i32),
    /// A fork with fixed milliseconds: `2026-03-25T19:42:06.250Z`.
    Millis,
}

/// The `timestamp` column text for an instant.
pub fn row_stamp(ms: i64, style: StampStyle) -> String {
    let mut o = String::with_capacity(25);
    match style {
        StampStyle::Utc => {
            push_date_time(&mut o, ms, 'T');
            o.push('Z');
        }
        StampStyle::Offset(off) => {
            push_date_time(&mut o, ms + off as i64 * 60_000, 'T');
            push_zone(&mut o, off);
        }
        StampStyle::Millis => {
            let milli = push_date_time(&mut o, ms, 'T');
            use std::fmt::Write;
            let _ = write!(o, ".{milli:03}Z");
        }
    }
    o
}

/// Go `time.RFC3339Nano` (trailing zeros of the fraction trimmed) at `ms` plus `extra_ns`
/// (< 1e6) nanoseconds, in zone `offset_min`.
pub fn rfc3339_nano(ms: i64, extra_ns: u32, offset_min: i32) -> String {
    let mut o = String::with_capacity(36);
    let milli = push_date_time(&mut o, ms + offset_min as i64 * 60_000, 'T');
    let ns = milli * 1_000_000 + extra_ns;
    if ns != 0 {
        let mut frac = format!("{ns:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        o.push('.');
        o.push_str(&frac);
    }
    push_zone(&mut o, offset_min);
    o
}

/// JavaScript `Date.prototype.toISOString`: `2026-03-25T19:42:06.123Z`.
pub fn iso_ms(ms: i64) -> String {
    let mut o = String::with_capacity(24);
    let milli = push_date_time(&mut o, ms, 'T');
    use std::fmt::Write;
    let _ = write!(o, ".{milli:03}Z");
    o
}

/// SQLite `CURRENT_TIMESTAMP`: `2026-03-25 19:42:06` (UTC).
pub fn sqlite_stamp(ms: i64) -> String {
    let mut o = String::with_capacity(19);
    push_date_time(&mut o, ms, ' ');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = ms_of(2026, 3, 25, 19, 42, 6) + 250;
        assert_eq!(row_stamp(t, StampStyle::Utc), "2026-03-25T19:42:06Z");
        assert_eq!(
            row_stamp(t, StampStyle::Offset(480)),
            "2026-03-26T03:42:06+08:00"
        );
        assert_eq!(row_stamp(t, StampStyle::Millis), "2026-03-25T19:42:06.250Z");
        assert_eq!(rfc3339_nano(t, 1234, 0), "2026-03-25T19:42:06.250001234Z");
        assert_eq!(rfc3339_nano(t - 250, 0, 0), "2026-03-25T19:42:06Z");
        assert_eq!(iso_ms(t), "2026-03-25T19:42:06.250Z");
        assert_eq!(sqlite_stamp(t), "2026-03-25 19:42:06");
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }
}
