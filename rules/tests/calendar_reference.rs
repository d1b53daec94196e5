//! Property tests: the fast calendar math against the minute-stepping reference, over random
//! calendars in zones with DST (and one without), around DST changes, across holidays and with
//! windows crossing midnight. Case counts are modest so debug `cargo test` stays quick.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use switchboard_rules::calendar::reference::ReferenceCalendar;
use switchboard_rules::{Calendar, CalendarSpec};

const ZONES: [&str; 4] = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEK_MINUTES: u32 = 7 * 1440;

/// A random calendar scenario: zone, weekly intervals, holidays and a start near a DST change.
#[derive(Debug, Clone)]
struct Scenario {
    zone: &'static str,
    /// Weekly open intervals as (minute of week, length in minutes), disjoint.
    intervals: Vec<(u32, u32)>,
    /// Holidays as days after the start's local date (may be negative).
    holidays: Vec<i32>,
    year: i16,
    /// Which transition of the year (or, without DST, a fraction of the year) to start near.
    transition: usize,
    /// Seconds from that instant to the start.
    offset: i64,
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl Scenario {
    fn spec(&self) -> CalendarSpec {
        let mut hours: BTreeMap<String, Vec<[String; 2]>> = BTreeMap::new();
        for &(mut at, mut len) in &self.intervals {
            // Cut into windows of less than a day (or exactly one from midnight, as 24:00).
            while len > 0 {
                let (day, start) = ((at / 1440) % 7, at % 1440);
                let chunk = len.min(if start == 0 { 1440 } else { 1439 });
                let end = start + chunk;
                let end = if end == 1440 {
                    "24:00".to_owned()
                } else {
                    hhmm(end % 1440)
                };
                hours
                    .entry(DAYS[day as usize].to_owned())
                    .or_default()
                    .push([hhmm(start), end]);
                at = (at + chunk) % WEEK_MINUTES;
                len -= chunk;
            }
        }
        let start_date = TimeZone::get(self.zone)
            .unwrap()
            .to_datetime(self.start())
            .date();
        let holidays = self
            .holidays
            .iter()
            .map(|&d| {
                start_date
                    .checked_add(jiff::Span::new().days(d))
                    .unwrap()
                    .to_string()
            })
            .collect();
        CalendarSpec {
            timezone: self.zone.to_owned(),
            hours,
            holidays,
        }
    }

    fn start(&self) -> Timestamp {
        let tz = TimeZone::get(self.zone).unwrap();
        let jan1 = jiff::civil::date(self.year, 1, 1)
            .to_zoned_datetime(tz.clone())
            .unwrap();
        let changes: Vec<Timestamp> = tz
            .following(jan1.timestamp())
            .map(|t| t.timestamp())
            .take_while(|t| *t < jan1.timestamp() + jiff::SignedDuration::from_hours(366 * 24))
            .collect();
        let anchor = if changes.is_empty() {
            jan1.timestamp()
                + jiff::SignedDuration::from_hours(24 * 91 * (self.transition as i64 % 4))
        } else {
            changes[self.transition % changes.len()]
        };
        anchor + jiff::SignedDuration::from_secs(self.offset)
    }

    fn weekly_open_minutes(&self) -> u32 {
        self.intervals.iter().map(|i| i.1).sum()
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    // Window edges: mostly on the quarter hour (as people write them), some on any minute.
    let edge = prop_oneof![
        3 => (0..WEEK_MINUTES / 15).prop_map(|q| q * 15),
        1 => 0..WEEK_MINUTES,
    ];
    (
        prop::sample::select(&ZONES[..]),
        prop::collection::btree_set(edge, 2..14),
        0..WEEK_MINUTES,
        prop::collection::vec(-3i32..30, 0..6),
        prop_oneof![6 => 1990i16..2045, 1 => 1940i16..1970, 1 => 2098i16..2140],
        0usize..4,
        -5 * 86_400i64..3 * 86_400,
    )
        .prop_filter_map(
            "needs one interval",
            |(zone, edges, rotate, holidays, year, transition, offset)| {
                let edges: Vec<u32> = edges.into_iter().collect();
                let intervals: Vec<(u32, u32)> = edges
                    .chunks_exact(2)
                    .map(|p| ((p[0] + rotate) % WEEK_MINUTES, p[1] - p[0]))
                    .collect();
                (!intervals.is_empty()).then_some(Scenario {
                    zone,
                    intervals,
                    holidays,
                    year,
                    transition,
                    offset,
                })
            },
        )
}

fn both(s: &Scenario) -> (Calendar, ReferenceCalendar) {
    let spec = s.spec();
    let fast = Calendar::new(&spec).unwrap_or_else(|e| panic!("{e}: {spec:?}"));
    (fast, ReferenceCalendar::new(&spec).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn deadlines_match_the_reference(s in scenario(), frac in 1u32..=1000, sub in 0i32..1_000_000_000) {
        let (fast, slow) = both(&s);
        // Up to about two weeks of this calendar's open time, so the walk stays short; one
        // case in four a whole number of weeks, which from a start in the weekly closed
        // stretch ends exactly at a closing time.
        let minutes = if frac % 4 == 0 {
            s.weekly_open_minutes() * (1 + frac % 8 / 4)
        } else {
            (s.weekly_open_minutes() * 2 * frac / 1000).max(1)
        };
        let start = Timestamp::new(s.start().as_second(), sub).unwrap();
        let due = fast.add_business_minutes(start, minutes).unwrap();
        prop_assert_eq!(due, slow.add_business_minutes(start, minutes).unwrap(), "{} min", minutes);
        prop_assert_eq!(fast.business_seconds_between(start, due), i64::from(minutes) * 60);
    }

    #[test]
    fn elapsed_matches_the_reference(s in scenario(), span in 0i64..12 * 86_400) {
        let (fast, slow) = both(&s);
        let start = s.start();
        let end = start + jiff::SignedDuration::from_secs(span);
        prop_assert_eq!(
            fast.business_seconds_between(start, end),
            slow.business_seconds_between(start, end)
        );
        prop_assert_eq!(fast.business_seconds_between(end, start), 0);
    }

    #[test]
    fn open_and_next_open_match_the_reference(s in scenario(), steps in prop::collection::vec(0i64..4 * 3600, 1..8)) {
        let (fast, slow) = both(&s);
        let mut at = s.start();
        for step in steps {
            at += jiff::SignedDuration::from_secs(step);
            prop_assert_eq!(fast.is_open(at), slow.is_open(at), "at {}", at);
            prop_assert_eq!(fast.next_open(at), slow.next_open(at), "after {}", at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Fast-only invariants, cheap enough for many more cases and far longer targets.
    #[test]
    fn deadline_and_elapsed_are_inverse(s in scenario(), minutes in 1u32..200_000, split in 0u32..=100) {
        let fast = Calendar::new(&s.spec()).unwrap();
        let start = s.start();
        let due = fast.add_business_minutes(start, minutes).unwrap();
        let secs = i64::from(minutes) * 60;
        prop_assert_eq!(fast.business_seconds_between(start, due), secs);
        // Earliest: one second less is not enough.
        let before = due - jiff::SignedDuration::from_secs(1);
        prop_assert!(fast.business_seconds_between(start, before) < secs);
        // Additive: splitting the target in two gives the same deadline.
        let first = i64::from(minutes * split / 100) * 60;
        let mid = fast.add_business_seconds(start, first).unwrap();
        prop_assert_eq!(fast.add_business_seconds(mid, secs - first).unwrap(), due);
        // The clock stops only when closed: the deadline is reached while open or at closing.
        let last = due - jiff::SignedDuration::from_secs(1);
        prop_assert!(fast.is_open(last));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Targets spanning many weeks (and several DST changes) against the reference.
    #[test]
    fn long_targets_match_the_reference(s in scenario(), weeks in 4u32..30) {
        let (fast, slow) = both(&s);
        let minutes = s.weekly_open_minutes() * weeks;
        let start = s.start();
        prop_assert_eq!(
            fast.add_business_minutes(start, minutes).unwrap(),
            slow.add_business_minutes(start, minutes).unwrap()
        );
    }
}
