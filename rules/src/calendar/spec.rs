//! Validation of a tenant's calendar spec: every way a spec can be wrong gets its own error
//! naming the offending day, window or date, before anything is computed on it.

use jiff::civil::Date;
use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::week::{DAY, WEEK};
use super::{CalendarError, CalendarSpec, MAX_HOLIDAYS, MAX_WINDOWS_PER_DAY};

/// Day keys of `hours`, Monday first.
pub(crate) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes in a day.
const DAY_MINUTES: i64 = 1440;

/// A spec checked and reduced to what the math needs.
pub(crate) struct Compiled {
    pub(crate) tz: TimeZone,
    /// Weekly open intervals in seconds into a Monday-first week, sorted and disjoint.
    pub(crate) intervals: Vec<(i64, i64)>,
    /// Holidays as local day numbers (days since Monday 1969-12-29), sorted and unique.
    pub(crate) holidays: Vec<i64>,
}

/// The time zone database calendars use: the one bundled in the binary, so a deadline does not
/// depend on the tzdata of the machine that computes it.
pub(crate) fn time_zone(name: &str) -> Result<TimeZone, CalendarError> {
    static DB: std::sync::LazyLock<TimeZoneDatabase> =
        std::sync::LazyLock::new(TimeZoneDatabase::bundled);
    let unknown = || CalendarError::UnknownTimeZone(name.to_owned());
    if name.is_empty() {
        return Err(unknown());
    }
    let tz = DB.get(name).map_err(|_| unknown())?;
    if tz.is_unknown() {
        return Err(unknown());
    }
    Ok(tz)
}

/// Parses `HH:MM` (00:00–23:59, and 24:00 when `end`) into minutes since midnight.
pub(crate) fn parse_time(s: &str, end: bool) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
    let h = digit(b[0])? * 10 + digit(b[1])?;
    let m = digit(b[3])? * 10 + digit(b[4])?;
    match (h, m) {
        (0..=23, 0..=59) => Some(h * 60 + m),
        (24, 0) if end => Some(DAY_MINUTES),
        _ => None,
    }
}

/// Parses a `YYYY-MM-DD` date.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let date: Date = s.parse().ok()?;
    (date.to_string() == s).then_some(date)
}

/// The local day number of `date`: days since Monday 1969-12-29.
pub(crate) fn day_number(date: Date) -> i64 {
    date.duration_since(Date::constant(1969, 12, 29)).as_secs() / DAY
}

pub(crate) fn compile(spec: &CalendarSpec) -> Result<Compiled, CalendarError> {
    let tz = time_zone(&spec.timezone)?;

    // (start, end, label) in seconds into the week; a window running past Sunday midnight is
    // split in two.
    let mut pieces: Vec<(i64, i64, usize)> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (key, windows) in &spec.hours {
        let day = DAYS
            .iter()
            .position(|d| d.eq_ignore_ascii_case(key))
            .ok_or_else(|| CalendarError::UnknownDay(key.clone()))?;
        if windows.len() > MAX_WINDOWS_PER_DAY {
            return Err(CalendarError::TooManyWindows {
                day: DAYS[day].to_owned(),
                count: windows.len(),
            });
        }
        for [from, to] in windows {
            let invalid = |time: &String| CalendarError::InvalidTime {
                day: DAYS[day].to_owned(),
                time: time.clone(),
            };
            let start = parse_time(from, false).ok_or_else(|| invalid(from))?;
            let end = parse_time(to, true).ok_or_else(|| invalid(to))?;
            let label = format!("{} {from}-{to}", DAYS[day]);
            if start == end {
                return Err(CalendarError::EmptyWindow(label));
            }
            // An end before the start means the window runs past midnight into the next day.
            let end = if end < start { end + DAY_MINUTES } else { end };
            let (s, e) = (
                (day as i64 * DAY_MINUTES + start) * 60,
                (day as i64 * DAY_MINUTES + end) * 60,
            );
            let id = labels.len();
            labels.push(label);
            if e > WEEK {
                pieces.push((s, WEEK, id));
                pieces.push((0, e - WEEK, id));
            } else {
                pieces.push((s, e, id));
            }
        }
    }
    pieces.sort_unstable();
    for pair in pieces.windows(2) {
        let ((_, prev_end, a), (next_start, _, b)) = (pair[0], pair[1]);
        if next_start < prev_end {
            return Err(CalendarError::OverlappingWindows(
                labels[a].clone(),
                labels[b].clone(),
            ));
        }
    }
    if pieces.is_empty() {
        return Err(CalendarError::NoOpenTime);
    }

    if spec.holidays.len() > MAX_HOLIDAYS {
        return Err(CalendarError::TooManyHolidays(spec.holidays.len()));
    }
    let mut holidays = spec
        .holidays
        .iter()
        .map(|h| {
            parse_date(h)
                .map(day_number)
                .ok_or_else(|| CalendarError::InvalidHoliday(h.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    holidays.sort_unstable();
    holidays.dedup();

    Ok(Compiled {
        tz,
        intervals: pieces.into_iter().map(|(s, e, _)| (s, e)).collect(),
        holidays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_strictly() {
        assert_eq!(parse_time("09:30", false), Some(570));
        assert_eq!(parse_time("24:00", true), Some(1440));
        for bad in [
            "24:00", "9:30", "09:60", "25:00", "0930", "09:3a", "+9:30", "",
        ] {
            assert_eq!(parse_time(bad, false), None, "{bad}");
        }
        assert_eq!(parse_time("24:01", true), None);
    }

    #[test]
    fn dates_parse_strictly_and_number_from_monday() {
        assert_eq!(parse_date("1969-12-29").map(day_number), Some(0));
        assert_eq!(parse_date("1970-01-05").map(day_number), Some(7));
        assert!(parse_date("2026-02-29").is_none());
        assert!(parse_date("2026-1-05").is_none());
        assert!(parse_date("20260105").is_none());
    }
}
