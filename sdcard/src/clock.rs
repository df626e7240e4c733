//! File timestamps from a fixed instant (`SOURCE_DATE_EPOCH`) instead of the wall clock, so two
//! builds of the same inputs give the same bytes.

use fatfs::{Date, DateTime, Time, TimeProvider};

/// A `fatfs` time provider that always answers the same instant (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock {
    at: DateTime,
}

impl FixedClock {
    /// The instant `secs` after the Unix epoch, clamped to what FAT can store (1980..=2107).
    pub fn from_unix(secs: i64) -> Self {
        const MIN: i64 = 315_532_800; // 1980-01-01T00:00:00Z
        const MAX: i64 = 4_354_819_199; // 2107-12-31T23:59:59Z
        let secs = secs.clamp(MIN, MAX);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let at = DateTime {
            date: Date {
                year: year as u16,
                month: month as u16,
                day: day as u16,
            },
            time: Time {
                hour: (rem / 3600) as u16,
                min: (rem / 60 % 60) as u16,
                sec: (rem % 60) as u16,
                millis: 0,
            },
        };
        Self { at }
    }

    pub fn date_time(&self) -> DateTime {
        self.at
    }
}

impl TimeProvider for FixedClock {
    fn get_current_date(&self) -> Date {
        self.at.date
    }

    fn get_current_date_time(&self) -> DateTime {
        self.at
    }
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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

    fn ymdhms(c: FixedClock) -> (u16, u16, u16, u16, u16, u16) {
        let t = c.date_time();
        (
            t.date.year,
            t.date.month,
            t.date.day,
            t.time.hour,
            t.time.min,
            t.time.sec,
        )
    }

    #[test]
    fn known_instants() {
        // `date -u -d @1700000000` = 2023-11-14 22:13:20
        assert_eq!(
            ymdhms(FixedClock::from_unix(1_700_000_000)),
            (2023, 11, 14, 22, 13, 20)
        );
        // 2000-02-29 (leap day) 12:00:00
        assert_eq!(
            ymdhms(FixedClock::from_unix(951_825_600)),
            (2000, 2, 29, 12, 0, 0)
        );
    }

    #[test]
    fn clamps_to_the_fat_range() {
        assert_eq!(ymdhms(FixedClock::from_unix(0)), (1980, 1, 1, 0, 0, 0));
        assert_eq!(
            ymdhms(FixedClock::from_unix(i64::MAX)),
            (2107, 12, 31, 23, 59, 59)
        );
    }
}
