//! What `DAILY n` counts (`PERIOD DAY|WEEK|MONTH`): the number of the period a time falls in,
//! and the time to the next period's start, all in a zone `offset_min` minutes from UTC.
//! Weeks start on Monday 00:00; months are calendar months (proleptic Gregorian calendar).
//! Total over every `i64` time: nothing overflows or panics.

pub const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Period {
    #[default]
    Day,
    Week,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "DAY",
            Period::Week => "WEEK",
            Period::Month => "MONTH",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(v: u8) -> Option<Period> {
        Some(match v {
            0 => Period::Day,
            1 => Period::Week,
            2 => Period::Month,
            _ => return None,
        })
    }

    /// The number of the period `ms` falls in (comparable only with the same kind).
    #[inline]
    pub fn index(self, ms: i64, offset_min: i32) -> i64 {
        let day = day_of(ms, offset_min);
        match self {
            Period::Day => day,
            // 1970-01-01 was a Thursday: day -3 was a Monday.
            Period::Week => day.saturating_add(3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                y.saturating_mul(12).saturating_add(i64::from(m) - 1)
            }
        }
    }

    /// Milliseconds from `ms` to the start of the next period (at least 1).
    pub fn ms_to_next(self, ms: i64, offset_min: i32) -> i64 {
        let shifted = ms.saturating_add(i64::from(offset_min) * 60_000);
        let into_day = shifted.rem_euclid(DAY_MS);
        let day = shifted.div_euclid(DAY_MS);
        let days_left = match self {
            Period::Day => 1,
            // Monday is (day + 3) mod 7 == 0.
            Period::Week => 7 - day.saturating_add(3).rem_euclid(7),
            Period::Month => {
                let (y, m, d) = civil_from_days(day);
                i64::from(days_in_month(y, m)) - i64::from(d) + 1
            }
        };
        days_left
            .saturating_mul(DAY_MS)
            .saturating_sub(into_day)
            .max(1)
    }
}

/// Day number of `ms` for a day starting at UTC midnight shifted by `offset_min` minutes.
#[inline]
pub fn day_of(ms: i64, offset_min: i32) -> i64 {
    ms.saturating_add(i64::from(offset_min) * 60_000)
        .div_euclid(DAY_MS)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1..=12, day 1..=31) of a day number (days since 1970-01-01). Exact for every
/// day number an `i64` time in ms gives (|days| < 1.1e14).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
        // Days from civil (the inverse of civil_from_days), for the tests only.
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = i64::from((m + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146_097 + doe - 719_468) * DAY_MS + h * 3_600_000
    }

    #[test]
    fn civil_round_trip() {
        for day in (-800_000i64..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(at(y, m, d, 0), day * DAY_MS, "{day}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-30 is a Monday.
        let mon = at(2026, 11, 30, 0);
        let w = Period::Week;
        assert_eq!(w.index(mon - 1, 0) + 1, w.index(mon, 0));
        assert_eq!(w.index(mon, 0), w.index(mon + 7 * DAY_MS - 1, 0));
        assert_eq!(w.ms_to_next(mon, 0), 7 * DAY_MS);
        assert_eq!(w.ms_to_next(mon - 1, 0), 1);
        assert_eq!(
            w.ms_to_next(at(2026, 12, 3, 12), 0),
            3 * DAY_MS + 12 * 3_600_000
        );
        // In UTC+8, Monday starts at Sunday 16:00 UTC.
        let off = 480;
        let start = mon - 8 * 3_600_000;
        assert_eq!(w.index(start - 1, off) + 1, w.index(start, off));
        assert_eq!(w.ms_to_next(start - 1, off), 1);
    }

    #[test]
    fn months_are_calendar_months() {
        let m = Period::Month;
        for (y, mo, len) in [
            (2024, 1, 31),
            (2024, 2, 29),
            (2025, 2, 28),
            (2000, 2, 29),
            (1900, 2, 28),
            (2026, 12, 31),
            (2026, 4, 30),
        ] {
            let start = at(y, mo, 1, 0);
            assert_eq!(m.index(start - 1, 0) + 1, m.index(start, 0));
            assert_eq!(m.ms_to_next(start, 0), len * DAY_MS, "{y}-{mo}");
            let end = start + len * DAY_MS;
            assert_eq!(m.index(end - 1, 0), m.index(start, 0));
            assert_eq!(m.index(end, 0), m.index(start, 0) + 1);
            assert_eq!(m.ms_to_next(end - 1, 0), 1);
        }
        // UTC-5: February 1st starts at 05:00 UTC.
        let feb = at(2025, 2, 1, 5);
        assert_eq!(m.index(feb - 1, -300) + 1, m.index(feb, -300));
        assert_eq!(m.ms_to_next(feb - 1, -300), 1);
    }

    #[test]
    fn total_over_every_time() {
        for p in [Period::Day, Period::Week, Period::Month] {
            for t in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
                for off in [-1440, 0, 1440] {
                    let _ = p.index(t, off);
                    assert!(p.ms_to_next(t, off) >= 1);
                }
            }
        }
    }
}
