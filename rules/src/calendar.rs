//! Business-hours calendars: the clock SLA targets count on. A calendar is an IANA time zone,
//! weekly opening windows in local wall-clock time and full-day holidays; it answers "is it
//! open", "when does it next open", "when are N business minutes up" and "how much business
//! time lies between two instants", exactly and in time that does not grow with the minutes.
//!
//! # Conventions
//!
//! - **Windows are local wall-clock times.** `["09:00", "17:00"]` on `mon` opens at 09:00 and
//!   closes at 17:00 local time, half-open: 17:00 itself is closed. An end before the start
//!   runs past midnight into the next day (`["22:00", "06:00"]`); `24:00` may end a window.
//!   Windows may touch but not overlap, also across midnight and the Sunday/Monday boundary.
//! - **Holidays are local dates** and close that whole day, midnight to midnight, including the
//!   part of a night shift that started the evening before or runs on after midnight.
//! - **SLA time is real elapsed time while the calendar is open.** An instant is open when its
//!   local time (in the calendar's zone at that instant) is inside a window and not on a
//!   holiday. So a local hour skipped by a DST change is never open, and a local hour repeated
//!   by a DST change is open both times if it is inside a window: a 09:00–17:00 day is 8 hours
//!   of business time unless the change falls inside the window.
//! - **The deadline** of N business minutes from `start` is the earliest instant at which the
//!   business time elapsed since `start` reaches N minutes. A target that ends exactly at
//!   closing time is due at closing, not at the next opening; a start while closed counts from
//!   the next opening.
//! - **Precision is the second.** Sub-second parts of inputs are dropped (rounded down to the
//!   whole second) before computing; results are whole seconds.
//! - **Time zones come from the IANA database bundled in the binary** (via `jiff`), so the same
//!   inputs give the same deadline on every machine, whatever its system tzdata.

mod spec;
mod week;
mod zone;

#[doc(hidden)]
pub mod reference;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use self::week::{Local, MONDAY_SHIFT, WEEK, Week};
use self::zone::Zone;

/// Id of the built-in calendar that is always open.
pub const ALWAYS_OPEN: &str = "24x7";
/// Most opening windows a calendar may have on one day.
pub const MAX_WINDOWS_PER_DAY: usize = 24;
/// Most holidays a calendar may list (ten years of a generous holiday list, with room).
pub const MAX_HOLIDAYS: usize = 1000;

/// A calendar as a tenant admin writes it (the SPEC's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Weekly opening windows by day (`mon` … `sun`), each `["HH:MM", "HH:MM"]` local time.
    /// An end before the start runs past midnight; `24:00` may end a window.
    #[serde(default)]
    pub hours: BTreeMap<String, Vec<[String; 2]>>,
    /// Full-day holidays as local dates (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Why a calendar or a calendar computation was refused. The messages are meant for the tenant
/// admin who wrote the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The time zone is not in the IANA database.
    #[error("unknown time zone {0:?}: use an IANA time zone name such as \"Europe/Berlin\"")]
    UnknownTimeZone(String),
    /// A key of `hours` is not a day.
    #[error("unknown day {0:?} in `hours`: use mon, tue, wed, thu, fri, sat or sun")]
    UnknownDay(String),
    /// A window time is not `HH:MM`.
    #[error(
        "invalid time {time:?} on {day}: use HH:MM between 00:00 and 23:59 (24:00 may end a window)"
    )]
    InvalidTime {
        /// Day key.
        day: String,
        /// The time as written.
        time: String,
    },
    /// A window opens and closes at the same time.
    #[error("the window {0} is empty: it opens and closes at the same time")]
    EmptyWindow(String),
    /// Two windows share some time.
    #[error("the windows {0} and {1} overlap")]
    OverlappingWindows(String, String),
    /// More than [`MAX_WINDOWS_PER_DAY`] windows on a day.
    #[error("{day} has {count} windows; a day may have at most {MAX_WINDOWS_PER_DAY}")]
    TooManyWindows {
        /// Day key.
        day: String,
        /// How many were given.
        count: usize,
    },
    /// A holiday is not a `YYYY-MM-DD` date.
    #[error("invalid holiday {0:?}: use a date written YYYY-MM-DD, such as \"2026-12-25\"")]
    InvalidHoliday(String),
    /// More than [`MAX_HOLIDAYS`] holidays.
    #[error("{0} holidays listed; a calendar may have at most {MAX_HOLIDAYS}")]
    TooManyHolidays(usize),
    /// The calendar is never open, so no SLA on it could ever be met.
    #[error("the calendar has no opening hours: add at least one window to `hours`")]
    NoOpenTime,
    /// No calendar with that id.
    #[error("unknown calendar {0:?}")]
    UnknownCalendar(String),
    /// The result is outside the representable time range.
    #[error("the result falls outside the supported time range (years -9999 to 9999)")]
    OutOfRange,
}

/// A compiled calendar, cheap to clone and share between threads.
#[derive(Clone)]
pub struct Calendar {
    inner: Arc<Inner>,
}

struct Inner {
    zone: Zone,
    local: Local,
}

impl std::fmt::Debug for Calendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Inner { zone, local } = &*self.inner;
        let name = zone.time_zone().iana_name().unwrap_or("UTC");
        f.debug_struct("Calendar")
            .field("time_zone", &name)
            .field("open_seconds_per_week", &local.week_total())
            .field("holidays", &local.holiday_count())
            .finish()
    }
}

static ALWAYS: LazyLock<Calendar> = LazyLock::new(|| {
    let week = Week::new(&[(0, WEEK)]).expect("a full week is open");
    Calendar {
        inner: Arc::new(Inner {
            zone: Zone::new(TimeZone::UTC),
            local: Local::new(week, &[]),
        }),
    }
});

/// `at` rounded down to the whole second.
fn floor_second(at: Timestamp) -> i64 {
    at.as_second() - i64::from(at.subsec_nanosecond() < 0)
}

fn timestamp(second: i64) -> Result<Timestamp, CalendarError> {
    Timestamp::from_second(second).map_err(|_| CalendarError::OutOfRange)
}

impl Calendar {
    /// The built-in `24x7` calendar: always open, every second counts.
    pub fn always_open() -> Self {
        ALWAYS.clone()
    }

    /// Checks and compiles a tenant's calendar spec.
    ///
    /// # Errors
    ///
    /// An unknown time zone or day, a time that is not `HH:MM`, an empty or overlapping window,
    /// a holiday that is not a date, too many windows or holidays, and a calendar with no
    /// opening hours at all ([`CalendarError::NoOpenTime`]).
    pub fn new(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let compiled = spec::compile(spec)?;
        let week = Week::new(&compiled.intervals).ok_or(CalendarError::NoOpenTime)?;
        Ok(Calendar {
            inner: Arc::new(Inner {
                zone: Zone::new(compiled.tz),
                local: Local::new(week, &compiled.holidays),
            }),
        })
    }

    /// The calendar's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        self.inner.zone.time_zone()
    }

    /// Whether the calendar is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let t = floor_second(at);
        let l = t + self.inner.zone.offset(t) + MONDAY_SHIFT;
        self.inner.local.is_open(l)
    }

    /// The first instant at or after `at` at which the calendar is open (`at` itself when
    /// open); `None` only when that lies beyond the supported time range.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let Inner { zone, local } = &*self.inner;
        let mut t = floor_second(at);
        loop {
            let (offset, next) = zone.span(t);
            let shift = offset + MONDAY_SHIFT;
            let l = local.next_open(t + shift);
            match next {
                Some(n) if l >= n + shift => t = n,
                _ => return timestamp(l - shift).ok(),
            }
        }
    }

    /// The deadline of a `minutes` business-minute target started at `start`: the earliest
    /// instant at which that much business time has elapsed since `start` (`start` for 0).
    ///
    /// # Errors
    ///
    /// [`CalendarError::OutOfRange`] when the deadline lies beyond the supported time range.
    pub fn add_business_minutes(
        &self,
        start: Timestamp,
        minutes: u32,
    ) -> Result<Timestamp, CalendarError> {
        self.add_business_seconds(start, i64::from(minutes) * 60)
    }

    /// Like [`Calendar::add_business_minutes`], in seconds (`start` for 0 or less).
    ///
    /// # Errors
    ///
    /// [`CalendarError::OutOfRange`] when the result lies beyond the supported time range.
    pub fn add_business_seconds(
        &self,
        start: Timestamp,
        seconds: i64,
    ) -> Result<Timestamp, CalendarError> {
        if seconds <= 0 {
            return Ok(start);
        }
        let Inner { zone, local } = &*self.inner;
        let mut t = floor_second(start);
        let mut need = seconds;
        // Span by span of constant UTC offset; within one, local time is real time + shift.
        loop {
            let (offset, next) = zone.span(t);
            let shift = offset + MONDAY_SHIFT;
            let from = local.open_before(t + shift);
            if let Some(n) = next {
                let available = local.open_before(n + shift) - from;
                if available < need {
                    need -= available;
                    t = n;
                    continue;
                }
            }
            return timestamp(local.inv(from + need) - shift);
        }
    }

    /// Business seconds between `start` and `end` (0 when `end` is not after `start`).
    pub fn business_seconds_between(&self, start: Timestamp, end: Timestamp) -> i64 {
        let Inner { zone, local } = &*self.inner;
        let (mut t, end) = (floor_second(start), floor_second(end));
        let mut total = 0;
        while t < end {
            let (offset, next) = zone.span(t);
            let shift = offset + MONDAY_SHIFT;
            let until = next.map_or(end, |n| n.min(end));
            total += local.open_before(until + shift) - local.open_before(t + shift);
            t = until;
        }
        total
    }
}

/// A tenant's calendars by id, with `24x7` always present.
#[derive(Debug, Clone)]
pub struct CalendarSet {
    calendars: BTreeMap<String, Calendar>,
}

impl Default for CalendarSet {
    fn default() -> Self {
        let mut calendars = BTreeMap::new();
        calendars.insert(ALWAYS_OPEN.to_owned(), Calendar::always_open());
        CalendarSet { calendars }
    }
}

impl CalendarSet {
    /// Adds or replaces a calendar. The built-in `24x7` cannot be replaced.
    pub fn insert(&mut self, id: impl Into<String>, calendar: Calendar) -> &mut Self {
        let id = id.into();
        if id != ALWAYS_OPEN {
            self.calendars.insert(id, calendar);
        }
        self
    }

    /// The calendar with this id.
    pub fn get(&self, id: &str) -> Result<&Calendar, CalendarError> {
        self.calendars
            .get(id)
            .ok_or_else(|| CalendarError::UnknownCalendar(id.to_owned()))
    }

    /// Whether a calendar with this id exists.
    pub fn contains(&self, id: &str) -> bool {
        self.calendars.contains_key(id)
    }

    /// The ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.calendars.keys().map(String::as_str)
    }
}
