//! Service-review reports against a year of history: one tenant holding 10,000 and 100,000
//! tickets created evenly over 364 days up to yesterday (about 27 and 270 a day), in 4 priorities,
//! a third handed from the MSP to internal IT or a vendor in one of 3 queues, nine in ten
//! responded to and resolved. A year's report (366 days) grouped by party, the same grouped by every
//! key, a month's, and a single-ticket read as the baseline, in the same run; printed as
//! latencies and ratios to the read.
//!
//! `cargo bench -p switchboard-benches --bench reports`

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use switchboard_benches::Filled;
use switchboard_host::reports::{self, GroupKey, Period};
use switchboard_host::tickets::EventInput;
use switchboard_rules::Party;
use tokio::runtime::Runtime;

const SIZES: [usize; 2] = [10_000, 100_000];
/// A service whose tenant `bench` holds `n` tickets over a year.
fn fill(rt: &Runtime, n: usize) -> Filled {
    let start = Timestamp::now() - SignedDuration::from_hours(24 * 365);
    let step = SignedDuration::from_hours(24 * 364) / (n as i32 + 1);
    switchboard_benches::fill(rt, n, move |service, view, i| async move {
        let created = start + step * (i as i32);
        let id = format!("T-{i}");
        let priority = ["p1", "p2", "p3", "p4"][i % 4];
        let t = json!({"id": id, "priority": priority, "created_at": created});
        let input = serde_json::from_value(t).expect("ticket");
        service.tickets.create(&view, input).await.expect("create");
        let mins = |m: i64| Some(created + SignedDuration::from_mins(m));
        let mut events = Vec::new();
        if i % 3 == 1 {
            events.push(EventInput::Assigned {
                party: [Party::Internal, Party::Vendor][i % 2],
                queue: Some(["it-ops", "network", "apps"][i % 3 + i % 2].into()),
                at: mins(20),
            });
        }
        if i % 10 != 0 {
            let took = (i % 700) as i64;
            events.push(EventInput::Responded {
                at: mins(25 + took / 10),
            });
            events.push(EventInput::Resolved {
                at: mins(30 + took),
            });
        }
        for e in events {
            service
                .tickets
                .apply(&view, &id, e, "bench")
                .await
                .expect("event");
        }
    })
}

fn report(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut group = c.benchmark_group("reports");
    group.sample_size(20);
    let mut rows = Vec::new();
    for n in SIZES {
        let started = Instant::now();
        let filled = fill(&rt, n);
        eprintln!(
            "filled {n} tickets in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let service = filled.service.clone();
        let view = service.tenants.get("bench").expect("view");
        let now = Timestamp::now();
        let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        let from = today
            .checked_sub(jiff::Span::new().days(365))
            .expect("a year ago");
        let year = Period::parse(Some(&from.to_string()), None, None, now).expect("a year");
        let month = Period::parse(None, None, None, now).expect("30 days");
        let every = [
            GroupKey::Party,
            GroupKey::Queue,
            GroupKey::Priority,
            GroupKey::Metric,
            GroupKey::Calendar,
        ];
        let run = |period: &Period, by: &[GroupKey]| {
            reports::report(&service.store, "bench", period, by).expect("report")
        };
        let by_party = run(&year, &[GroupKey::Party]);
        let tickets: i64 = by_party.rows.iter().map(|r| r.tickets).sum();
        assert_eq!(tickets as usize, n, "the year holds every ticket");
        let groups = run(&year, &every).rows.len();
        let one = || service.tickets.read(&view, "T-7").expect("read");
        group.bench_function(format!("year-by-party/{n}"), |b| {
            b.iter(|| run(&year, &[GroupKey::Party]))
        });
        group.bench_function(format!("year-by-every-key/{n}"), |b| {
            b.iter(|| run(&year, &every))
        });
        group.bench_function(format!("month-by-party/{n}"), |b| {
            b.iter(|| run(&month, &[GroupKey::Party]))
        });
        group.bench_function(format!("single-get/{n}"), |b| b.iter(one));
        let time = |f: &dyn Fn()| {
            let reps = 50;
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from(reps)
        };
        let year_s = time(&|| {
            run(&year, &[GroupKey::Party]);
        });
        let every_s = time(&|| {
            run(&year, &every);
        });
        let month_s = time(&|| {
            run(&month, &[GroupKey::Party]);
        });
        let get_s = time(&|| {
            one();
        });
        rows.push((n, groups, year_s, every_s, month_s, get_s));
    }
    group.finish();
    eprintln!(
        "\n| stored (a year) | groups by every key | year by party | year by every key | 30 days by party | single GET | year / GET |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for (n, groups, year_s, every_s, month_s, get_s) in &rows {
        eprintln!(
            "| {n} | {groups} | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} ms | {:.1}x |",
            year_s * 1e3,
            every_s * 1e3,
            month_s * 1e3,
            get_s * 1e3,
            year_s / get_s
        );
    }
}

criterion_group!(benches, report);
criterion_main!(benches);
