//! The SLA board against stored history: one tenant holding 1,000, 10,000, 100,000 and
//! 1,000,000 stored tickets, of which about 10,000 (all of them, for 1,000) are open and the
//! rest resolved. The board's first page (100 tickets, read from the open-clock index), a
//! filtered page that matches nothing (so it reads every open row), and a single-ticket read,
//! in the same run; printed as the ratio of the page to the read per size and how that ratio
//! grows from the smallest size to the largest. The 1,000,000-ticket store takes about 4 GB
//! of temporary disk.
//!
//! `cargo bench -p switchboard-benches --bench board`

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use switchboard_benches::Filled;
use switchboard_host::board::Filter;
use switchboard_host::tickets::EventInput;
use tokio::runtime::Runtime;

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
const OPEN: usize = 10_000;
/// A service whose tenant `bench` holds `n` tickets, all but [`OPEN`] of them resolved.
fn fill(rt: &Runtime, n: usize) -> Filled {
    let start = Timestamp::now() - SignedDuration::from_hours(24);
    let closed = n.saturating_sub(OPEN);
    switchboard_benches::fill(rt, n, move |service, view, i| async move {
        let at = start + SignedDuration::from_millis(i as i64 * 50);
        let t = json!({"id": format!("T-{i}"), "impact": 1 + i % 3, "urgency": 2,
            "created_at": at});
        let input = serde_json::from_value(t).expect("ticket");
        service.tickets.create(&view, input).await.expect("create");
        if i < closed {
            let id = format!("T-{i}");
            for e in [
                EventInput::Responded { at: None },
                EventInput::Resolved { at: None },
            ] {
                service
                    .tickets
                    .apply(&view, &id, e, "bench")
                    .await
                    .expect("event");
            }
        }
    })
}

fn board(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut group = c.benchmark_group("board");
    group.sample_size(30);
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
        let (page, _) = rt
            .block_on(
                service
                    .tickets
                    .board(view.clone(), Filter::default(), 100, None),
            )
            .expect("board");
        assert_eq!(page.len(), 100.min(n));
        let page_of = || {
            rt.block_on(
                service
                    .tickets
                    .board(view.clone(), Filter::default(), 100, None),
            )
            .expect("board")
        };
        let one = || service.tickets.read(&view, "T-7").expect("read");
        group.bench_function(format!("first-page/{n}"), |b| b.iter(page_of));
        let nobody = Filter {
            party: Some(switchboard_rules::Party::Vendor),
            ..Filter::default()
        };
        group.bench_function(format!("no-match-reads-every-open-row/{n}"), |b| {
            b.iter(|| {
                rt.block_on(
                    service
                        .tickets
                        .board(view.clone(), nobody.clone(), 100, None),
                )
                .expect("board")
            })
        });
        group.bench_function(format!("single-get/{n}"), |b| b.iter(one));
        // The same two, timed here for the printed ratio.
        let time = |f: &dyn Fn()| {
            let reps = 200;
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from(reps)
        };
        let page_s = time(&|| {
            page_of();
        });
        let get_s = time(&|| {
            one();
        });
        rows.push((n, page_s, get_s));
    }
    group.finish();
    eprintln!("\n| stored | open | board first page | single GET | ratio |");
    eprintln!("|---|---|---|---|---|");
    for (n, page_s, get_s) in &rows {
        eprintln!(
            "| {n} | {} | {:.2} ms | {:.3} ms | {:.1}x |",
            (*n).min(OPEN),
            page_s * 1e3,
            get_s * 1e3,
            page_s / get_s
        );
    }
    let ratio = |r: &(usize, f64, f64)| r.1 / r.2;
    eprintln!(
        "ratio growth from {} to {} stored: {:.2}x",
        rows[0].0,
        rows[rows.len() - 1].0,
        ratio(&rows[rows.len() - 1]) / ratio(&rows[0])
    );
}

criterion_group!(benches, board);
criterion_main!(benches);
