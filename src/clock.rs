//! Wall-clock timestamps for log lines and the HTTP `Date` header, from `SystemTime` alone.
//!
//! std has no calendar, and pulling in a date crate for two formats would be the only reason
//! for it, so the days-since-1970 to year-month-day conversion is done here (the well-known
//! "civil from days" arithmetic on 400-year cycles).

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, broken into calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl Utc {
    pub fn now() -> Utc {
        // A clock set before 1970 is reported as 1970 rather than failing a request.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Utc::from_unix_millis(since.as_millis() as i64)
    }

    pub fn from_unix_millis(millis: i64) -> Utc {
        let secs = millis.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            millis: millis.rem_euclid(1000) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// `2026-11-25T19:40:01.123Z`, for log lines.
    pub fn log_format(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `Wed, 25 Nov 2026 19:40:01 GMT`, the IMF-fixdate of RFC 9110 §5.6.7.
    pub fn http_format(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize % 7],
            self.day,
            MONTHS[(self.month as usize + 11) % 12],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so the leap day is the last day of a "year".
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_moments_format_as_expected() {
        assert_eq!(
            Utc::from_unix_millis(0).http_format(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        // The example date of RFC 9110.
        assert_eq!(
            Utc::from_unix_millis(784_111_777_000).http_format(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            Utc::from_unix_millis(951_782_400_123).log_format(),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            Utc::from_unix_millis(1_795_635_601_999).log_format(),
            "2026-11-25T19:40:01.999Z"
        );
    }
}
