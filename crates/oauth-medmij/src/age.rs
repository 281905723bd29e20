//! The age rule: today's date in Europe/Amsterdam, and whether a birthday has
//! been reached. Time-zone data comes bundled with `jiff`, because a server's
//! own zone database is not guaranteed to exist or be current.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// The calendar date at `now` in Europe/Amsterdam.
pub fn amsterdam_date(now: OffsetDateTime) -> Option<Date> {
    let tz = TimeZone::get("Europe/Amsterdam").ok()?;
    let ts = jiff::Timestamp::from_second(now.unix_timestamp()).ok()?;
    Some(tz.to_datetime(ts).date())
}

/// True when someone born on `birth` is at least `years` old on `today`. A
/// birthday counts on the day itself; a 29 February birthday counts on 1 March
/// in years without one.
pub fn age_reached(birth: Date, today: Date, years: i16) -> bool {
    let Some(year) = birth.year().checked_add(years) else { return false };
    let birthday = Date::new(year, birth.month(), birth.day())
        .or_else(|_| Date::new(year, 3, 1)) // 29 February in a common year.
        ;
    birthday.is_ok_and(|b| today >= b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    #[test]
    fn a_birthday_counts_on_the_day_itself() {
        assert!(age_reached(d(2010, 6, 15), d(2026, 6, 15), 16));
        assert!(!age_reached(d(2010, 6, 15), d(2026, 6, 14), 16));
    }

    #[test]
    fn a_29_february_birthday_counts_on_1_march_in_common_years() {
        assert!(!age_reached(d(2008, 2, 29), d(2025, 2, 28), 17));
        assert!(age_reached(d(2008, 2, 29), d(2025, 3, 1), 17));
        assert!(age_reached(d(2008, 2, 29), d(2024, 2, 29), 16), "on the day itself in a leap year");
    }

    #[test]
    fn the_date_is_amsterdams_not_utcs() {
        // 23:30 UTC on 31 December is already 1 January in Amsterdam (UTC+1).
        assert_eq!(amsterdam_date(datetime!(2025-12-31 23:30 UTC)), Some(d(2026, 1, 1)));
        // And in summer time (UTC+2), 22:30 UTC is the next day.
        assert_eq!(amsterdam_date(datetime!(2026-06-14 22:30 UTC)), Some(d(2026, 6, 15)));
        assert_eq!(amsterdam_date(datetime!(2026-06-14 21:30 UTC)), Some(d(2026, 6, 14)));
    }
}
