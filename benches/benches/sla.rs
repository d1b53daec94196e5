//! SLA math: deadline computation on a 9-17 Mon-Fri New York calendar with holidays, for
//! 1-hour, 5-business-day and 90-business-day targets (the last one crossing a DST change),
//! next to the minute-stepping reference in the same run; plus elapsed time and a full read
//! of a ticket's clocks with pauses.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use switchboard_rules::calendar::reference::ReferenceCalendar;
use switchboard_rules::{
    Calendar, CalendarSet, CalendarSpec, Escalation, EscalationTrigger, Metric, SlaClocks,
    SlaTarget,
};

/// Business minutes in a 9-17 day.
const DAY: u32 = 8 * 60;
/// The targets benchmarked: (name, business minutes).
const TARGETS: [(&str, u32); 3] = [("1h", 60), ("5d", 5 * DAY), ("90d", 90 * DAY)];

fn office() -> CalendarSpec {
    let hours: BTreeMap<String, Vec<[String; 2]>> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| {
            (
                (*d).to_owned(),
                vec![["09:00".to_owned(), "17:00".to_owned()]],
            )
        })
        .collect();
    let holidays = [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-09-07",
        "2026-10-12",
        "2026-11-11",
        "2026-11-26",
        "2026-12-25",
    ];
    CalendarSpec {
        timezone: "America/New_York".into(),
        hours,
        holidays: holidays.iter().map(|h| (*h).to_owned()).collect(),
    }
}

/// Monday 2026-02-02 10:30 New York; 90 business days later is past the March DST change.
fn start() -> Timestamp {
    "2026-02-02T15:30:00Z".parse().unwrap()
}

fn deadlines(c: &mut Criterion) {
    let spec = office();
    let fast = Calendar::new(&spec).unwrap();
    let slow = ReferenceCalendar::new(&spec).unwrap();
    let start = start();
    for (name, minutes) in TARGETS {
        assert_eq!(
            fast.add_business_minutes(start, minutes).unwrap(),
            slow.add_business_minutes(start, minutes).unwrap(),
            "{name}"
        );
    }

    let mut group = c.benchmark_group("sla_deadline/fast");
    for (name, minutes) in TARGETS {
        group.bench_with_input(BenchmarkId::from_parameter(name), &minutes, |b, &m| {
            b.iter(|| fast.add_business_minutes(black_box(start), black_box(m)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sla_deadline/reference");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for (name, minutes) in TARGETS {
        group.bench_with_input(BenchmarkId::from_parameter(name), &minutes, |b, &m| {
            b.iter(|| slow.add_business_minutes(black_box(start), black_box(m)))
        });
    }
    group.finish();
}

fn elapsed_and_clocks(c: &mut Criterion) {
    let fast = Calendar::new(&office()).unwrap();
    let start = start();
    let end = start + SignedDuration::from_hours(24 * 130);
    c.bench_function("sla_elapsed/fast/130d", |b| {
        b.iter(|| fast.business_seconds_between(black_box(start), black_box(end)))
    });

    let mut calendars = CalendarSet::default();
    calendars.insert("office", fast);
    let target = |metric, minutes| SlaTarget {
        metric,
        minutes,
        calendar: "office".into(),
    };
    let targets = [
        target(Metric::FirstResponse, 240),
        target(Metric::Resolution, 5 * DAY),
    ];
    let paused = vec!["pending_customer".to_owned()];
    let mut clocks = SlaClocks::start(&targets, start, "new", &paused);
    let mut at = start;
    for (i, hours) in [3, 20, 5, 30].into_iter().enumerate() {
        at += SignedDuration::from_hours(hours);
        let status = if i % 2 == 0 {
            "pending_customer"
        } else {
            "open"
        };
        clocks.set_status(status, &paused, at).unwrap();
    }
    let plan: Vec<Escalation> = [
        EscalationTrigger::PercentElapsed(50),
        EscalationTrigger::MinutesBeforeDue(60),
        EscalationTrigger::MinutesAfterDue(120),
    ]
    .into_iter()
    .map(|trigger| Escalation {
        metric: Metric::Resolution,
        trigger,
        label: "step".into(),
        notify: "oncall".into(),
    })
    .collect();
    let now = at + SignedDuration::from_hours(2);
    c.bench_function(
        "sla_clocks/readings+escalations (2 clocks, 2 pauses)",
        |b| {
            b.iter(|| {
                let r = clocks.readings(black_box(now), &calendars).unwrap();
                let e = clocks.escalations(&plan, &calendars).unwrap();
                (r, e)
            })
        },
    );
}

criterion_group!(benches, deadlines, elapsed_and_clocks);
criterion_main!(benches);
