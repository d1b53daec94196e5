//! Cron expressions as desk admins write them (Unix cron: five fields, `0`/`7` = Sunday,
//! `@daily` and friends, or six with seconds first), evaluated on the schedule's local civil
//! clock and mapped to instants with the time zone's rules.
//!
//! The `cron` crate does the matching, on a civil clock (chrono's `Utc` standing in for "no
//! zone"); jiff maps each civil match to an instant. Two things differ from the `cron` crate
//! as-is and are handled here: its day-of-week numbers start at Sunday = 1 (Unix cron's at
//! Sunday = 0, so `1-5` would silently mean Sunday to Thursday), and it requires the seconds
//! field. Expressions that restrict both the day of month and the day of week are refused:
//! Unix cron fires when *either* matches, the `cron` crate when *both* do, and a schedule
//! whose meaning depends on which cron one learned is a bug waiting for a Monday.
//!
//! Around DST changes a schedule fires once per matching civil time: a time skipped by a
//! spring-forward change fires at the change (as Vixie cron runs jobs of the skipped hour
//! right after it), and a time repeated by a fall-back change fires at its first occurrence.

use std::str::FromStr;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// Why an expression or time zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not parse.
    #[error("invalid cron expression {expr:?}: {reason}")]
    Syntax {
        /// The expression as given.
        expr: String,
        /// What is wrong.
        reason: String,
    },
    /// Both day fields are restricted.
    #[error(
        "cron expression {0:?} restricts both the day of month and the day of week; \
         Unix cron and others disagree on what that means, so restrict one and leave the other `*`"
    )]
    BothDays(String),
    /// Not an IANA time zone.
    #[error("unknown time zone {0:?} (use an IANA name such as \"America/New_York\")")]
    TimeZone(String),
    /// It never fires from now on.
    #[error("cron expression {0:?} never fires")]
    Never(String),
    /// It fires more often than allowed.
    #[error("cron expression {expr:?} fires {gap} apart; schedules may fire at most every {min}")]
    TooFrequent {
        /// The expression as given.
        expr: String,
        /// The shortest gap found between two fires.
        gap: String,
        /// The shortest gap allowed.
        min: String,
    },
}

/// A parsed schedule: a cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    schedule: cron::Schedule,
    tz: TimeZone,
    expr: String,
}

/// Upcoming fires examined when checking an expression's frequency.
const FREQUENCY_SAMPLE: usize = 64;
/// Civil matches examined before giving up on finding the next instant (a repeated hour of
/// a per-second schedule needs 3600).
const SEARCH_LIMIT: usize = 100_000;

impl CronSpec {
    /// Parses `expr` in the IANA time zone `timezone`.
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSpec, CronError> {
        let tz = jiff::tz::db()
            .get(timezone)
            .map_err(|_| CronError::TimeZone(timezone.to_owned()))?;
        let normalized = normalize(expr)?;
        let schedule = cron::Schedule::from_str(&normalized).map_err(|e| CronError::Syntax {
            expr: expr.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(CronSpec {
            schedule,
            tz,
            expr: expr.to_owned(),
        })
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first fire strictly after `after`, or `None` when it never fires again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let civil = after.to_zoned_datetime(self.tz.clone()).datetime();
        // Civil matches strictly after `after`'s own civil reading; every earlier one maps to
        // an instant at or before `after` (the mapping below never decreases, and takes the
        // first occurrence of a repeated time), so none is missed.
        let start = to_chrono(civil)?;
        self.schedule
            .after(&start)
            .take(SEARCH_LIMIT)
            .filter_map(|m| self.instant_of(from_chrono(&m)?))
            .find(|&at| at > after)
    }

    /// Refuses an expression that never fires after `now`, or whose next fires come closer
    /// together than `min`.
    pub fn check(&self, now: Timestamp, min: SignedDuration) -> Result<Timestamp, CronError> {
        let first = self
            .next_after(now)
            .ok_or_else(|| CronError::Never(self.expr.clone()))?;
        let mut prev = first;
        for _ in 0..FREQUENCY_SAMPLE {
            let Some(next) = self.next_after(prev) else {
                break;
            };
            let gap = next.duration_since(prev);
            if gap < min {
                return Err(CronError::TooFrequent {
                    expr: self.expr.clone(),
                    gap: format!("{:#}", jiff::Span::try_from(gap).unwrap_or_default()),
                    min: format!("{:#}", jiff::Span::try_from(min).unwrap_or_default()),
                });
            }
            prev = next;
        }
        Ok(first)
    }

    /// The instant of a civil time in the zone: the first occurrence of a repeated time,
    /// the change itself for a skipped one.
    fn instant_of(&self, civil: DateTime) -> Option<Timestamp> {
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset }
            | AmbiguousOffset::Fold { before: offset, .. } => offset.to_timestamp(civil).ok(),
            AmbiguousOffset::Gap { before, .. } => {
                // Read with the offset before the gap, a skipped time lands at or after the
                // change; the last transition up to there is the change.
                let late = before.to_timestamp(civil).ok()?;
                let probe = late.checked_add(SignedDuration::from_nanos(1)).ok()?;
                self.tz.preceding(probe).next().map(|t| t.timestamp())
            }
        }
    }
}

fn to_chrono(civil: DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(civil.year()),
        u32::try_from(civil.month()).ok()?,
        u32::try_from(civil.day()).ok()?,
    )?;
    let time = chrono::NaiveTime::from_hms_opt(
        u32::try_from(civil.hour()).ok()?,
        u32::try_from(civil.minute()).ok()?,
        u32::try_from(civil.second()).ok()?,
    )?;
    Some(date.and_time(time).and_utc())
}

fn from_chrono(m: &chrono::DateTime<chrono::Utc>) -> Option<DateTime> {
    use chrono::{Datelike as _, Timelike as _};
    DateTime::new(
        i16::try_from(m.year()).ok()?,
        i8::try_from(m.month()).ok()?,
        i8::try_from(m.day()).ok()?,
        i8::try_from(m.hour()).ok()?,
        i8::try_from(m.minute()).ok()?,
        i8::try_from(m.second()).ok()?,
        0,
    )
    .ok()
}

/// Rewrites a Unix cron expression into the `cron` crate's form: seconds first, day-of-week
/// as names.
fn normalize(expr: &str) -> Result<String, CronError> {
    let syntax = |reason: String| CronError::Syntax {
        expr: expr.to_owned(),
        reason,
    };
    let expanded = match expr.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other if other.starts_with('@') => {
            return Err(syntax(format!(
                "unknown shorthand {other:?} (known: @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly)"
            )));
        }
        other => other,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let (seconds, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        n => {
            return Err(syntax(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with \
                 seconds first), found {n}"
            )));
        }
    };
    let [minute, hour, dom, month, dow] = rest else {
        unreachable!("five fields")
    };
    let any = |f: &str| f == "*" || f == "?";
    if !any(dom) && !any(dow) {
        return Err(CronError::BothDays(expr.to_owned()));
    }
    let dow = if any(dow) {
        "*".to_owned()
    } else {
        days_of_week(dow).map_err(syntax)?
    };
    let dom = if any(dom) { "*" } else { dom };
    Ok(format!("{seconds} {minute} {hour} {dom} {month} {dow}"))
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A Unix cron day-of-week field (`0`-`7`, `0` and `7` both Sunday, names, ranges, lists,
/// steps) as a list of day names.
fn days_of_week(field: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<usize, String> {
        if let Ok(n) = s.parse::<usize>() {
            return if n <= 7 {
                Ok(n)
            } else {
                Err(format!("day of week {n} is not 0-7"))
            };
        }
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown day of week {s:?}"))
    };
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                // `N/S` runs to the end of the week, Sunday (7) included, as in cronie.
                None if part.contains('/') => (day(r)?, 7),
                None => (day(r)?, day(r)?),
            },
        };
        if from > to {
            return Err(format!(
                "day-of-week range {range:?} runs backwards; list the days instead"
            ));
        }
        for d in (from..=to).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok(DAY_NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect::<Vec<_>>()
        .join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Weekday;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn local(spec: &CronSpec, t: Timestamp) -> jiff::ZonedDateTime {
        t.to_zoned_datetime(spec.time_zone().clone())
    }

    #[test]
    fn unix_weekdays_mean_monday_to_friday() {
        let spec = CronSpec::parse("0 8 * * 1-5", "America/New_York").unwrap();
        // Friday 2026-11-27 09:00 local: the next fire is Monday 08:00.
        let next = spec.next_after(at("2026-11-27T14:00:00Z")).unwrap();
        let z = local(&spec, next);
        assert_eq!(z.weekday(), Weekday::Monday);
        assert_eq!((z.hour(), z.minute(), z.second()), (8, 0, 0));
        assert_eq!(next, at("2026-11-30T13:00:00Z"));
        let mut t = next;
        for expected in [
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Monday,
        ] {
            t = spec.next_after(t).unwrap();
            assert_eq!(local(&spec, t).weekday(), expected);
        }
    }

    #[test]
    fn sunday_is_zero_and_seven_and_names_work() {
        let after = at("2026-11-25T12:00:00Z"); // a Wednesday
        let sunday = at("2026-11-29T00:00:00Z");
        for expr in [
            "0 0 * * 0",
            "0 0 * * 7",
            "0 0 * * sun",
            "@weekly",
            "0 0 * * SUN",
        ] {
            let spec = CronSpec::parse(expr, "UTC").unwrap();
            assert_eq!(spec.next_after(after), Some(sunday), "{expr}");
        }
        let spec = CronSpec::parse("0 0 * * 5-7", "UTC").unwrap();
        let days: Vec<Weekday> =
            std::iter::successors(spec.next_after(after), |t| spec.next_after(*t))
                .take(4)
                .map(|t| local(&spec, t).weekday())
                .collect();
        assert_eq!(
            days,
            [
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
                Weekday::Friday
            ]
        );
    }

    #[test]
    fn a_skipped_time_fires_at_the_change_and_a_repeated_one_once() {
        // New York springs forward at 2026-03-08 02:00 EST (07:00Z) to 03:00 EDT.
        let spec = CronSpec::parse("30 2 * * *", "America/New_York").unwrap();
        let fire = spec.next_after(at("2026-03-08T05:00:00Z")).unwrap();
        assert_eq!(fire, at("2026-03-08T07:00:00Z"), "at the change");
        assert_eq!(
            spec.next_after(fire),
            Some(at("2026-03-09T06:30:00Z")),
            "then 02:30 EDT the next day"
        );
        // It falls back at 2026-11-01 02:00 EDT (06:00Z) to 01:00 EST: 01:30 happens twice.
        let spec = CronSpec::parse("30 1 * * *", "America/New_York").unwrap();
        let first = spec.next_after(at("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(first, at("2026-11-01T05:30:00Z"), "01:30 EDT");
        assert_eq!(
            spec.next_after(first),
            Some(at("2026-11-02T06:30:00Z")),
            "not again at 01:30 EST"
        );
        // An hourly schedule across the skipped hour does not fire twice at the change.
        let spec = CronSpec::parse("0 * * * *", "America/New_York").unwrap();
        let fires: Vec<Timestamp> =
            std::iter::successors(spec.next_after(at("2026-03-08T05:30:00Z")), |t| {
                spec.next_after(*t)
            })
            .take(3)
            .collect();
        assert_eq!(
            fires,
            [
                at("2026-03-08T06:00:00Z"),
                at("2026-03-08T07:00:00Z"),
                at("2026-03-08T08:00:00Z")
            ]
        );
    }

    #[test]
    fn seconds_shorthands_and_steps() {
        let spec = CronSpec::parse("*/15 * * * * *", "UTC").unwrap();
        assert_eq!(
            spec.next_after(at("2026-01-01T00:00:07Z")),
            Some(at("2026-01-01T00:00:15Z"))
        );
        let spec = CronSpec::parse("@hourly", "Asia/Kolkata").unwrap();
        assert_eq!(
            spec.next_after(at("2026-01-01T00:10:00Z")),
            Some(at("2026-01-01T00:30:00Z")),
            "hours start at :30 UTC in India"
        );
        let spec = CronSpec::parse("0 9 * * 1/2", "UTC").unwrap();
        let days: Vec<Weekday> =
            std::iter::successors(spec.next_after(at("2026-11-28T10:00:00Z")), |t| {
                spec.next_after(*t)
            })
            .take(4)
            .map(|t| local(&spec, t).weekday())
            .collect();
        assert_eq!(
            days,
            [
                Weekday::Sunday,
                Weekday::Monday,
                Weekday::Wednesday,
                Weekday::Friday
            ],
            "1/2 is 1-7/2: Mon, Wed, Fri, Sun"
        );
        let spec = CronSpec::parse("0 9 * * */2", "UTC").unwrap();
        let day = local(&spec, spec.next_after(at("2026-11-29T10:00:00Z")).unwrap()).weekday();
        assert_eq!(day, Weekday::Tuesday, "Sun, Tue, Thu, Sat");
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        let err = |e: &str, tz: &str| CronSpec::parse(e, tz).unwrap_err();
        assert!(matches!(err("0 8 * *", "UTC"), CronError::Syntax { .. }));
        assert!(matches!(err("0 8 * * 8", "UTC"), CronError::Syntax { .. }));
        assert!(matches!(
            err("0 8 * * 5-1", "UTC"),
            CronError::Syntax { .. }
        ));
        assert!(matches!(err("61 8 * * *", "UTC"), CronError::Syntax { .. }));
        assert!(matches!(err("@sometimes", "UTC"), CronError::Syntax { .. }));
        assert!(matches!(err("0 8 1 * 1", "UTC"), CronError::BothDays(_)));
        assert!(matches!(
            err("0 8 * * *", "Mars/Olympus"),
            CronError::TimeZone(_)
        ));
        let now = at("2026-01-01T00:00:00Z");
        let minute = SignedDuration::from_mins(1);
        let spec = CronSpec::parse("0 0 30 2 *", "UTC").unwrap();
        assert!(matches!(spec.check(now, minute), Err(CronError::Never(_))));
        let spec = CronSpec::parse("*/10 * * * * *", "UTC").unwrap();
        let e = spec.check(now, minute).unwrap_err();
        assert!(e.to_string().contains("10s apart"), "{e}");
        let spec = CronSpec::parse("0 8 * * 1-5", "UTC").unwrap();
        assert_eq!(spec.check(now, minute), Ok(at("2026-01-01T08:00:00Z")));
    }
}
