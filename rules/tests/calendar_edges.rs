//! Hand-written calendar cases for the known edges: DST gaps and overlaps inside a window,
//! deadlines at closing time, year ends, leap days, night shifts, holidays, bad specs.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use switchboard_rules::calendar::reference::ReferenceCalendar;
use switchboard_rules::{ALWAYS_OPEN, Calendar, CalendarError, CalendarSet, CalendarSpec};

type Day<'a> = (&'a str, &'a [(&'a str, &'a str)]);

fn spec(zone: &str, days: &[Day<'_>], holidays: &[&str]) -> CalendarSpec {
    CalendarSpec {
        timezone: zone.to_owned(),
        hours: days
            .iter()
            .map(|(d, ws)| {
                let ws = ws.iter().map(|(a, b)| [(*a).to_owned(), (*b).to_owned()]);
                ((*d).to_owned(), ws.collect())
            })
            .collect(),
        holidays: holidays.iter().map(|h| (*h).to_owned()).collect(),
    }
}

fn cal(zone: &str, days: &[Day<'_>], holidays: &[&str]) -> Calendar {
    Calendar::new(&spec(zone, days, holidays)).unwrap()
}

const NINE_FIVE: &[(&str, &str)] = &[("09:00", "17:00")];

fn weekdays(zone: &str, holidays: &[&str]) -> Calendar {
    let days: Vec<Day<'_>> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (*d, NINE_FIVE))
        .collect();
    cal(zone, &days, holidays)
}

/// A local wall-clock time in `zone` (the earlier instant when it is repeated).
fn local(zone: &str, datetime: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = datetime.parse().unwrap();
    TimeZone::get(zone).unwrap().to_timestamp(dt).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NY: &str = "America/New_York";
const BERLIN: &str = "Europe/Berlin";

#[test]
fn deadline_at_closing_time_is_closing_not_next_opening() {
    let c = weekdays(NY, &[]);
    let mon9 = local(NY, "2026-01-05T09:00");
    assert_eq!(
        c.add_business_minutes(mon9, 480).unwrap(),
        local(NY, "2026-01-05T17:00")
    );
    assert_eq!(
        c.add_business_minutes(mon9, 5 * 480).unwrap(),
        local(NY, "2026-01-09T17:00")
    );
    assert_eq!(
        c.add_business_minutes(mon9, 481).unwrap(),
        local(NY, "2026-01-06T09:01")
    );
    // 17:00 itself is closed; a second before is open.
    assert!(!c.is_open(local(NY, "2026-01-05T17:00")));
    assert!(c.is_open(local(NY, "2026-01-05T16:59:59")));
}

#[test]
fn a_start_while_closed_counts_from_the_next_opening() {
    let c = weekdays(NY, &[]);
    let saturday = local(NY, "2026-01-10T12:34:56");
    assert_eq!(
        c.add_business_minutes(saturday, 60).unwrap(),
        local(NY, "2026-01-12T10:00")
    );
    assert_eq!(c.next_open(saturday), Some(local(NY, "2026-01-12T09:00")));
    let open = local(NY, "2026-01-12T10:00:00.250");
    assert_eq!(c.next_open(open), Some(open));
}

#[test]
fn a_dst_gap_inside_a_window_is_never_open() {
    // New York springs forward 2026-03-08 02:00 -> 03:00, inside a Sunday 00:00-06:00 window.
    let c = cal(NY, &[("sun", &[("00:00", "06:00")])], &[]);
    let (open, close) = (local(NY, "2026-03-08T00:00"), local(NY, "2026-03-08T06:00"));
    assert_eq!(c.business_seconds_between(open, close), 5 * 3600);
    assert_eq!(
        c.add_business_minutes(open, 180).unwrap(),
        local(NY, "2026-03-08T04:00")
    );
    assert_eq!(c.add_business_minutes(open, 300).unwrap(), close);
    assert_eq!(
        c.add_business_minutes(open, 301).unwrap(),
        local(NY, "2026-03-15T00:01")
    );
    // Berlin: 02:00 -> 03:00 on 2026-03-29 inside 01:00-04:00.
    let b = cal(BERLIN, &[("sun", &[("01:00", "04:00")])], &[]);
    let from = local(BERLIN, "2026-03-29T00:00");
    assert_eq!(
        b.business_seconds_between(from, local(BERLIN, "2026-03-29T12:00")),
        2 * 3600
    );
    assert_eq!(
        b.add_business_minutes(from, 61).unwrap(),
        local(BERLIN, "2026-03-29T03:01")
    );
}

#[test]
fn a_repeated_hour_inside_a_window_is_open_both_times() {
    // New York falls back 2026-11-01 02:00 -> 01:00, inside 00:00-06:00: 7 hours of work.
    let c = cal(NY, &[("sun", &[("00:00", "06:00")])], &[]);
    let (open, close) = (local(NY, "2026-11-01T00:00"), local(NY, "2026-11-01T06:00"));
    assert_eq!(c.business_seconds_between(open, close), 7 * 3600);
    // Two hours in: 01:00 the second time (EST), i.e. 06:00Z rather than 05:00Z.
    assert_eq!(
        c.add_business_minutes(open, 120).unwrap(),
        ts("2026-11-01T06:00:00Z")
    );
    assert_eq!(c.add_business_minutes(open, 420).unwrap(), close);
    // Berlin falls back 2026-10-25 03:00 -> 02:00, inside 01:00-04:00: 4 hours.
    let b = cal(BERLIN, &[("sun", &[("01:00", "04:00")])], &[]);
    let day = local(BERLIN, "2026-10-25T00:00");
    assert_eq!(
        b.business_seconds_between(day, day + jiff::SignedDuration::from_hours(24)),
        4 * 3600
    );
}

#[test]
fn a_dst_change_outside_the_window_changes_nothing() {
    // A 9-17 week across the spring change still has 40 hours, and the weekend change keeps
    // Monday's deadline at 09:00 + n local.
    let c = weekdays(NY, &[]);
    let fri = local(NY, "2026-03-06T16:00");
    assert_eq!(
        c.add_business_minutes(fri, 120).unwrap(),
        local(NY, "2026-03-09T10:00")
    );
    let sydney = weekdays("Australia/Sydney", &[]);
    let fri = local("Australia/Sydney", "2026-10-02T16:30"); // DST starts Sunday 2026-10-04
    assert_eq!(
        sydney.add_business_minutes(fri, 60).unwrap(),
        local("Australia/Sydney", "2026-10-05T09:30")
    );
}

#[test]
fn whole_days_follow_the_local_calendar_across_dst() {
    let days: Vec<Day<'_>> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (*d, &[("00:00", "24:00")][..]))
        .collect();
    let c = cal(BERLIN, &days, &[]);
    let (sat, mon) = (
        local(BERLIN, "2026-03-28T00:00"),
        local(BERLIN, "2026-03-30T00:00"),
    );
    assert_eq!(c.business_seconds_between(sat, mon), 47 * 3600);
    assert_eq!(c.add_business_minutes(sat, 47 * 60).unwrap(), mon);
}

#[test]
fn holidays_at_year_end_and_on_a_leap_day() {
    let c = weekdays(BERLIN, &["2026-12-25", "2027-01-01", "2028-02-29"]);
    let thu = local(BERLIN, "2026-12-24T16:00");
    assert_eq!(
        c.add_business_minutes(thu, 120).unwrap(),
        local(BERLIN, "2026-12-28T10:00")
    );
    let thu = local(BERLIN, "2026-12-31T16:30");
    assert_eq!(
        c.add_business_minutes(thu, 60).unwrap(),
        local(BERLIN, "2027-01-04T09:30")
    );
    assert_eq!(
        c.next_open(local(BERLIN, "2027-01-01T10:00")),
        Some(local(BERLIN, "2027-01-04T09:00"))
    );
    let mon = local(BERLIN, "2028-02-28T16:00");
    assert_eq!(
        c.add_business_minutes(mon, 120).unwrap(),
        local(BERLIN, "2028-03-01T10:00")
    );
    assert!(!c.is_open(local(BERLIN, "2028-02-29T12:00")));
    let err = Calendar::new(&spec(BERLIN, &[("mon", NINE_FIVE)], &["2027-02-29"])).unwrap_err();
    assert_eq!(err, CalendarError::InvalidHoliday("2027-02-29".into()));
}

#[test]
fn a_night_shift_crosses_midnight_and_a_holiday_closes_its_date() {
    let night: &[(&str, &str)] = &[("22:00", "06:00")];
    let days: Vec<Day<'_>> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (*d, night))
        .collect();
    // Tuesday 2026-01-06 is a holiday: Monday 22-24 counts, Tuesday 00-06 and 22-24 do not.
    let c = cal(BERLIN, &days, &["2026-01-06"]);
    let mon = local(BERLIN, "2026-01-05T21:00");
    assert!(c.is_open(local(BERLIN, "2026-01-05T23:00")));
    assert!(!c.is_open(local(BERLIN, "2026-01-06T01:00")));
    assert!(c.is_open(local(BERLIN, "2026-01-07T05:59")));
    assert_eq!(
        c.add_business_minutes(mon, 120).unwrap(),
        local(BERLIN, "2026-01-06T00:00")
    );
    assert_eq!(
        c.add_business_minutes(mon, 121).unwrap(),
        local(BERLIN, "2026-01-07T00:01")
    );
    // Friday's shift runs into Saturday morning; Sunday night has none.
    assert!(c.is_open(local(BERLIN, "2026-01-10T05:00")));
    assert!(!c.is_open(local(BERLIN, "2026-01-11T23:00")));
}

#[test]
fn a_sunday_night_window_wraps_into_monday() {
    let c = cal(NY, &[("sun", &[("22:00", "02:00")])], &[]);
    assert!(c.is_open(local(NY, "2026-01-12T01:59")));
    let sun = local(NY, "2026-01-11T23:00");
    assert_eq!(
        c.add_business_minutes(sun, 180).unwrap(),
        local(NY, "2026-01-12T02:00")
    );
    assert_eq!(
        c.add_business_minutes(sun, 181).unwrap(),
        local(NY, "2026-01-18T22:01")
    );
}

#[test]
fn half_hour_offsets_and_sub_seconds() {
    let c = weekdays("Asia/Kolkata", &[]);
    assert!(c.is_open(ts("2026-01-05T03:30:00Z")));
    assert!(!c.is_open(ts("2026-01-05T03:29:59.999Z")));
    // Sub-second parts are dropped before computing.
    let start = ts("2026-01-05T04:00:00.900Z");
    assert_eq!(
        c.add_business_minutes(start, 1).unwrap(),
        ts("2026-01-05T04:01:00Z")
    );
    assert_eq!(
        c.business_seconds_between(start, ts("2026-01-05T04:00:10.100Z")),
        10
    );
}

#[test]
fn touching_windows_are_one_window() {
    let split = cal(
        NY,
        &[("mon", &[("12:00", "17:00"), ("09:00", "12:00")])],
        &[],
    );
    let whole = cal(NY, &[("mon", NINE_FIVE)], &[]);
    let mon = local(NY, "2026-01-05T08:00");
    for minutes in [1, 180, 181, 300, 480, 481, 10_000] {
        assert_eq!(
            split.add_business_minutes(mon, minutes),
            whole.add_business_minutes(mon, minutes)
        );
    }
}

#[test]
fn the_always_open_calendar_is_plain_time() {
    let set = CalendarSet::default();
    let c = set.get(ALWAYS_OPEN).unwrap();
    let t = ts("2026-03-08T06:59:30Z");
    assert!(c.is_open(t));
    assert_eq!(c.next_open(t), Some(t));
    assert_eq!(
        c.add_business_minutes(t, 90).unwrap(),
        ts("2026-03-08T08:29:30Z")
    );
    assert_eq!(
        c.business_seconds_between(t, ts("2026-03-09T06:59:30Z")),
        86_400
    );
    assert_eq!(c.business_seconds_between(ts("2026-03-09T06:59:30Z"), t), 0);
    assert_eq!(
        set.get("office").unwrap_err(),
        CalendarError::UnknownCalendar("office".into())
    );
}

#[test]
fn a_long_target_on_a_calendar_with_little_open_time_errors_fast() {
    let c = cal(NY, &[("wed", &[("10:00", "10:01")])], &[]);
    let started = Instant::now();
    let err = c
        .add_business_minutes(ts("2026-01-01T00:00:00Z"), u32::MAX)
        .unwrap_err();
    assert_eq!(err, CalendarError::OutOfRange);
    assert!(started.elapsed() < Duration::from_secs(5));
    // One year of minutes at one minute a week is ~10,000 years away: also out of range.
    let err = c
        .add_business_minutes(ts("2026-01-01T00:00:00Z"), 525_600)
        .unwrap_err();
    assert_eq!(err, CalendarError::OutOfRange);
}

#[test]
fn ninety_business_days_match_the_reference() {
    let holidays = [
        "2026-05-25",
        "2026-07-03",
        "2026-09-07",
        "2026-11-26",
        "2026-12-25",
    ];
    let days: Vec<Day<'_>> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (*d, NINE_FIVE))
        .collect();
    let s = spec(NY, &days, &holidays);
    let (fast, slow) = (
        Calendar::new(&s).unwrap(),
        ReferenceCalendar::new(&s).unwrap(),
    );
    for start in [
        "2026-02-02T13:07:11Z",
        "2026-08-14T21:00:00Z",
        "2026-10-30T12:00:00Z",
    ] {
        let start = ts(start);
        let minutes = 90 * 8 * 60;
        let due = fast.add_business_minutes(start, minutes).unwrap();
        assert_eq!(
            due,
            slow.add_business_minutes(start, minutes).unwrap(),
            "from {start}"
        );
    }
}

#[test]
fn bad_specs_are_refused_with_a_reason() {
    let refuse = |s: CalendarSpec| Calendar::new(&s).unwrap_err();
    let mon = |w: &'static [(&'static str, &'static str)]| spec(NY, &[("mon", w)], &[]);

    let e = refuse(spec("Mars/Olympus_Mons", &[("mon", NINE_FIVE)], &[]));
    assert_eq!(
        e,
        CalendarError::UnknownTimeZone("Mars/Olympus_Mons".into())
    );
    assert!(e.to_string().contains("IANA"), "{e}");
    assert!(matches!(
        refuse(spec("", &[("mon", NINE_FIVE)], &[])),
        CalendarError::UnknownTimeZone(_)
    ));

    assert_eq!(refuse(spec(NY, &[], &[])), CalendarError::NoOpenTime);
    assert_eq!(
        refuse(spec(NY, &[("mon", &[])], &[])),
        CalendarError::NoOpenTime
    );
    assert!(
        refuse(spec(NY, &[], &[]))
            .to_string()
            .contains("no opening hours")
    );

    let e = refuse(mon(&[("09:00", "09:00")]));
    assert_eq!(
        e.to_string(),
        "the window mon 09:00-09:00 is empty: it opens and closes at the same time"
    );
    let e = refuse(mon(&[("09:00", "12:00"), ("11:00", "13:00")]));
    assert_eq!(
        e.to_string(),
        "the windows mon 09:00-12:00 and mon 11:00-13:00 overlap"
    );
    // Overlaps across midnight and across the end of the week.
    let e = refuse(spec(
        NY,
        &[
            ("mon", &[("22:00", "06:00")]),
            ("tue", &[("05:00", "07:00")]),
        ],
        &[],
    ));
    assert!(matches!(e, CalendarError::OverlappingWindows(..)), "{e}");
    let e = refuse(spec(
        NY,
        &[
            ("sun", &[("22:00", "02:00")]),
            ("mon", &[("01:00", "03:00")]),
        ],
        &[],
    ));
    assert!(matches!(e, CalendarError::OverlappingWindows(..)), "{e}");

    for bad in ["9:00", "25:00", "24:00", "09:00:00", "noon"] {
        let e = refuse(spec(NY, &[("mon", &[(bad, "17:00")])], &[]));
        assert_eq!(
            e,
            CalendarError::InvalidTime {
                day: "mon".into(),
                time: bad.into()
            }
        );
    }
    let e = refuse(spec(NY, &[("monday", NINE_FIVE)], &[]));
    assert_eq!(
        e.to_string(),
        "unknown day \"monday\" in `hours`: use mon, tue, wed, thu, fri, sat or sun"
    );
    let e = refuse(spec(NY, &[("mon", NINE_FIVE)], &["25.12.2026"]));
    assert_eq!(e, CalendarError::InvalidHoliday("25.12.2026".into()));
    // Full days are fine, upper-case day names too.
    cal(
        NY,
        &[
            ("MON", &[("00:00", "24:00")]),
            ("tue", &[("00:00", "24:00")]),
        ],
        &[],
    );
}

#[test]
fn the_spec_json_is_the_spec_s() {
    let json = r#"{"timezone": "Europe/Berlin", "hours": {"mon": [["09:00","12:00"],["13:00","17:00"]]},
                   "holidays": ["2026-12-25"]}"#;
    let s: CalendarSpec = serde_json::from_str(json).unwrap();
    assert_eq!(s.hours["mon"].len(), 2);
    Calendar::new(&s).unwrap();
    let unknown = serde_json::from_str::<CalendarSpec>(r#"{"timezone": "UTC", "days": {}}"#);
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `days`")
    );
}

#[test]
fn calendars_are_send_sync_and_cheap_to_clone() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Calendar>();
    send_sync::<CalendarSet>();
}

#[test]
fn spans_across_the_edges_of_the_tabulated_years_match_the_reference() {
    // Transitions between 1970 and 2100 are tabulated; outside, the zone is asked directly.
    let days: Vec<Day<'_>> = ["mon", "tue", "wed", "thu", "fri", "sun"]
        .iter()
        .map(|d| (*d, &[("01:30", "03:30"), ("09:00", "17:00")][..]))
        .collect();
    for zone in [NY, BERLIN, "Australia/Sydney"] {
        let s = spec(zone, &days, &["2100-01-01", "1970-01-01"]);
        let (fast, slow) = (
            Calendar::new(&s).unwrap(),
            ReferenceCalendar::new(&s).unwrap(),
        );
        for start in [
            "2099-12-20T00:00:00Z",
            "1969-12-20T07:13:00Z",
            "2099-03-01T00:00:00Z",
        ] {
            let start = ts(start);
            for minutes in [600, 6000, 30_000] {
                assert_eq!(
                    fast.add_business_minutes(start, minutes),
                    slow.add_business_minutes(start, minutes),
                    "{zone} {start} {minutes}"
                );
            }
            let end = start + jiff::SignedDuration::from_hours(24 * 60);
            assert_eq!(
                fast.business_seconds_between(start, end),
                slow.business_seconds_between(start, end)
            );
        }
    }
}

#[test]
fn the_ends_of_time_give_errors_not_panics() {
    let c = weekdays(NY, &[]);
    assert_eq!(
        c.add_business_minutes(Timestamp::MAX, 60),
        Err(CalendarError::OutOfRange)
    );
    assert_eq!(c.next_open(Timestamp::MAX), None);
    let sunday_before_max = Timestamp::MAX - jiff::SignedDuration::from_hours(24 * 8);
    assert!(c.add_business_minutes(sunday_before_max, 60).is_ok());
    let early = Timestamp::MIN + jiff::SignedDuration::from_hours(24);
    assert!(c.add_business_minutes(early, 600).is_ok());
    assert_eq!(
        c.business_seconds_between(Timestamp::MIN, Timestamp::MIN),
        0
    );
    let always = Calendar::always_open();
    assert_eq!(
        always.add_business_minutes(Timestamp::MAX, 1),
        Err(CalendarError::OutOfRange)
    );
}

#[test]
fn debug_output_is_short() {
    let c = weekdays(BERLIN, &["2026-12-25"]);
    assert_eq!(
        format!("{c:?}"),
        "Calendar { time_zone: \"Europe/Berlin\", open_seconds_per_week: 144000, holidays: 1 }"
    );
}
