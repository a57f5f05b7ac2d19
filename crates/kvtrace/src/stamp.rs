//! ISO-8601 / RFC 3339 timestamps as the reference's Python reads and writes them.
//!
//! The capture's `timestamp` column, the envelope's `completedAt` and the session logs'
//! `timestamp` all go through `datetime.fromisoformat` in the reference: fractions are
//! truncated to microseconds, `Z` means `+00:00`, a space may separate date and time.
//! A stamp without a zone is read as UTC (spec §4.9), and `isoformat()` writes it back
//! without one. Differences are exact integer microseconds, as Python's `timedelta` is.

/// A parsed timestamp: UTC microseconds since the epoch, plus how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Microseconds since 1970-01-01T00:00:00Z (a zone-less stamp is taken as UTC).
    pub micros: i64,
    /// The written offset in minutes, `None` for a zone-less stamp.
    pub offset_min: Option<i32>,
}

impl Stamp {
    /// Parse `YYYY-MM-DD[T ]HH:MM[:SS[.fff…]][Z|±HH:MM]`; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Stamp> {
        let s = text.trim().as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(range)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let year = num(0..4)?;
        if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
            return None;
        }
        let month = num(5..7)?;
        let day = num(8..10)?;
        if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let hour = num(11..13)?;
        if s.get(13) != Some(&b':') {
            return None;
        }
        let minute = num(14..16)?;
        let mut i = 16;
        let mut second = 0;
        let mut micros = 0i64;
        if s.get(i) == Some(&b':') {
            second = num(17..19)?;
            i = 19;
            if matches!(s.get(i), Some(b'.' | b',')) {
                i += 1;
                let start = i;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                // Truncate to microseconds, as Python does.
                let digits = &s[start..i.min(start + 6)];
                let mut v: i64 = 0;
                for &d in digits {
                    v = v * 10 + i64::from(d - b'0');
                }
                for _ in digits.len()..6 {
                    v *= 10;
                }
                micros = v;
            }
        }
        let offset_min = match s.get(i) {
            None => None,
            Some(b'Z' | b'z') if i + 1 == s.len() => Some(0),
            Some(&sign @ (b'+' | b'-')) => {
                let oh = num(i + 1..i + 3)?;
                let om = if s.get(i + 3) == Some(&b':') {
                    num(i + 4..i + 6)?
                } else {
                    num(i + 3..i + 5)?
                };
                let end = if s.get(i + 3) == Some(&b':') {
                    i + 6
                } else {
                    i + 5
                };
                if end != s.len() || oh > 23 || om > 59 {
                    return None;
                }
                let total = (oh * 60 + om) as i32;
                Some(if sign == b'-' { -total } else { total })
            }
            _ => return None,
        };
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let local = ((days * 24 + hour) * 60 + minute) * 60 + second;
        let utc = local - i64::from(offset_min.unwrap_or(0)) * 60;
        Some(Stamp {
            micros: utc * 1_000_000 + micros,
            offset_min,
        })
    }

    /// Seconds from `earlier` to `self`, as Python's `timedelta.total_seconds()`.
    pub fn seconds_since(&self, earlier: &Stamp) -> f64 {
        (self.micros - earlier.micros) as f64 / 1e6
    }

    /// Python's `datetime.isoformat()` of the stamp as written (its own offset kept).
    pub fn isoformat(&self) -> String {
        let off = i64::from(self.offset_min.unwrap_or(0));
        let local = self.micros.div_euclid(1_000_000) + off * 60;
        let frac = self.micros.rem_euclid(1_000_000);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut out = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        );
        if frac != 0 {
            out.push_str(&format!(".{frac:06}"));
        }
        if let Some(o) = self.offset_min {
            let sign = if o < 0 { '-' } else { '+' };
            out.push_str(&format!("{sign}{:02}:{:02}", o.abs() / 60, o.abs() % 60));
        }
        out
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_matches_python() {
        // Outputs of CPython 3.11 datetime.fromisoformat(s).isoformat().
        for (s, want) in [
            ("2026-03-25T19:42:06Z", "2026-03-25T19:42:06+00:00"),
            (
                "2026-03-25T19:42:06.853Z",
                "2026-03-25T19:42:06.853000+00:00",
            ),
            (
                "2026-03-25T19:42:06.123456789+00:00",
                "2026-03-25T19:42:06.123456+00:00",
            ),
            ("2026-03-25 19:42:06+08:00", "2026-03-25T19:42:06+08:00"),
            ("2026-03-25T19:42:06", "2026-03-25T19:42:06"),
            ("2024-02-29T23:59:59-05:30", "2024-02-29T23:59:59-05:30"),
        ] {
            assert_eq!(Stamp::parse(s).unwrap().isoformat(), want, "{s}");
        }
    }

    #[test]
    fn offsets_are_applied() {
        let a = Stamp::parse("2026-03-26T03:42:06+08:00").unwrap();
        let b = Stamp::parse("2026-03-25T19:42:06Z").unwrap();
        assert_eq!(a.micros, b.micros);
        let c = Stamp::parse("2026-03-25T19:42:07.5Z").unwrap();
        assert_eq!(c.seconds_since(&b), 1.5);
        assert_eq!(b.micros, 1_774_467_726_000_000);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-03-25T19:42:06Zjunk",
        ] {
            assert!(Stamp::parse(s).is_none(), "{s}");
        }
    }
}
