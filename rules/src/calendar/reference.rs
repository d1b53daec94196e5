//! The brute-force model the fast calendar math is tested and benchmarked against: it walks
//! real time one minute at a time and asks, for each minute, whether its local wall-clock time
//! is inside a window and off a holiday, straight from the spec. Slow on purpose; not for
//! production use. Exact whenever the zone's UTC offsets are whole minutes (every zone since
//! the 1970s), as then the open/closed state is constant within each minute of real time.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::spec::{DAYS, parse_date, parse_time, time_zone};
use super::{Calendar, CalendarError, CalendarSpec};

/// Most minutes the reference walks before giving up (about five years).
pub const MAX_STEPS: i64 = 5 * 366 * 1440;

/// A calendar evaluated minute by minute from its spec.
#[derive(Debug, Clone)]
pub struct ReferenceCalendar {
    tz: TimeZone,
    /// `(day, start, end)`: Monday-first day index, minutes since that day's midnight; an end
    /// past 1440 runs into the next day.
    windows: Vec<(i8, i64, i64)>,
    holidays: BTreeSet<Date>,
}

fn floor_second(at: Timestamp) -> i64 {
    at.as_second() - i64::from(at.subsec_nanosecond() < 0)
}

fn timestamp(second: i64) -> Result<Timestamp, CalendarError> {
    Timestamp::from_second(second).map_err(|_| CalendarError::OutOfRange)
}

impl ReferenceCalendar {
    /// Builds the reference model of a spec that [`Calendar::new`] accepts.
    ///
    /// # Errors
    ///
    /// Whatever [`Calendar::new`] reports for this spec.
    pub fn new(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        Calendar::new(spec)?;
        let mut windows = Vec::new();
        for (key, list) in &spec.hours {
            let day = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(key))
                .expect("validated") as i8;
            for [from, to] in list {
                let start = parse_time(from, false).expect("validated");
                let mut end = parse_time(to, true).expect("validated");
                if end < start {
                    end += 1440;
                }
                windows.push((day, start, end));
            }
        }
        let holidays = spec
            .holidays
            .iter()
            .map(|h| parse_date(h).expect("validated"))
            .collect();
        Ok(ReferenceCalendar {
            tz: time_zone(&spec.timezone)?,
            windows,
            holidays,
        })
    }

    /// Whether the calendar is open at `at`, from the local wall-clock time.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = self.tz.to_datetime(at);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
        let day = local.weekday().to_monday_zero_offset();
        self.windows.iter().any(|&(d, start, end)| {
            (d == day && start <= minute && minute < end.min(1440))
                || (end > 1440 && (d + 1) % 7 == day && minute < end - 1440)
        })
    }

    fn is_open_at(&self, second: i64) -> Result<bool, CalendarError> {
        Ok(self.is_open(timestamp(second)?))
    }

    /// The first open instant at or after `at`, or `None` after [`MAX_STEPS`] minutes.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let mut t = floor_second(at).div_euclid(60) * 60;
        for _ in 0..MAX_STEPS {
            t += 60;
            if self.is_open_at(t).ok()? {
                return timestamp(t).ok();
            }
        }
        None
    }

    /// The earliest instant at which `minutes` business minutes have elapsed since `start`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NoOpenTime`] after [`MAX_STEPS`] minutes.
    pub fn add_business_minutes(
        &self,
        start: Timestamp,
        minutes: u32,
    ) -> Result<Timestamp, CalendarError> {
        self.add_business_seconds(start, i64::from(minutes) * 60)
    }

    /// Like [`ReferenceCalendar::add_business_minutes`], in seconds.
    ///
    /// # Errors
    ///
    /// [`CalendarError::NoOpenTime`] after [`MAX_STEPS`] minutes.
    pub fn add_business_seconds(
        &self,
        start: Timestamp,
        seconds: i64,
    ) -> Result<Timestamp, CalendarError> {
        if seconds <= 0 {
            return Ok(start);
        }
        let mut t = floor_second(start);
        let mut need = seconds;
        for _ in 0..MAX_STEPS {
            let next = (t.div_euclid(60) + 1) * 60;
            if self.is_open_at(t)? {
                if need <= next - t {
                    return timestamp(t + need);
                }
                need -= next - t;
            }
            t = next;
        }
        Err(CalendarError::NoOpenTime)
    }

    /// Business seconds between `start` and `end` (0 when `end` is not after `start`).
    pub fn business_seconds_between(&self, start: Timestamp, end: Timestamp) -> i64 {
        let (mut t, end) = (floor_second(start), floor_second(end));
        let mut total = 0;
        while t < end {
            let next = ((t.div_euclid(60) + 1) * 60).min(end);
            if self.is_open_at(t).unwrap_or(false) {
                total += next - t;
            }
            t = next;
        }
        total
    }
}
