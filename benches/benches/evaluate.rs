//! Rule evaluation, `vip-and-security` three ways in one run: the same logic as native Rust
//! (the floor), wasm on a reused instance, and wasm with a fresh instance per evaluation (the
//! product path). Plus the parts of a fresh evaluation, to see where its time goes.
//!
//! `cargo bench -p switchboard-benches --bench evaluate`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchboard_host::{EvalContext, Limits, Runtime, RuntimeConfig};
use switchboard_sdk::Rule;
use switchboard_sdk::testing::{TestHost, TicketBuilder};
use switchboard_tests::{created, guest};
use vip_and_security::VipAndSecurity;

/// A VIP ticket: the middle branch of the rule, with a log line and a priority raise.
fn wasm_event() -> switchboard_rules::TicketEvent {
    created(json!({
        "id": "INC-2042",
        "subject": "Laptop will not dock",
        "description": "Since this morning the docking station is not detected.",
        "category": "hardware",
        "impact": 2,
        "urgency": 2,
        "requester": {"email": "ceo@client.example", "department": "Board", "vip": true},
        "tags": ["hardware", "dock"],
        "fields": {"asset": "LT-0042"},
        "created_at": "2026-03-02T09:20:00Z"
    }))
}

fn native_event() -> switchboard_sdk::TicketEvent {
    TicketBuilder::new("INC-2042")
        .subject("Laptop will not dock")
        .category("hardware")
        .impact(2)
        .urgency(2)
        .vip(true)
        .requester("ceo@client.example", Some("Board"))
        .tag("hardware")
        .tag("dock")
        .field("asset", "LT-0042")
        .created("2026-03-02T09:20:00Z")
        .event()
}

fn evaluate(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = runtime
        .load(&guest("vip-and-security"), &Limits::default())
        .expect("load");
    let ctx = EvalContext::new("bench", "v1");
    let event = wasm_event();
    let expected = runtime
        .evaluate(&module, &ctx, &event)
        .outcome
        .expect("decides");
    assert_eq!(expected.queue, "vip-desk");

    let mut group = c.benchmark_group("vip-and-security");
    let host = TestHost::new();
    let native = native_event();
    group.bench_function("native", |b| {
        b.iter(|| {
            host.clear_log();
            black_box(VipAndSecurity::route(black_box(&native), &host).expect("decides"))
        })
    });

    let mut reused = runtime
        .instantiate_reused(&module, &ctx, &event)
        .expect("instantiate");
    group.bench_function("wasm-reused-instance", |b| {
        b.iter(|| black_box(reused.route(black_box(&event)).outcome.expect("decides")))
    });

    group.bench_function("wasm-fresh-instance", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .evaluate(&module, &ctx, black_box(&event))
                    .outcome
                    .expect("decides"),
            )
        })
    });

    group.bench_function("instantiate-only", |b| {
        b.iter(|| black_box(runtime.instantiate_reused(&module, &ctx, &event).is_ok()))
    });
    group.finish();

    // How a fresh instance's memory is reset between evaluations, side by side: returning
    // pages to the kernel (page faults on the next use), `memset` of the kept-resident prefix,
    // or `memset` of only the pages found dirty with `PAGEMAP_SCAN` (the default).
    let mut group = c.benchmark_group("fresh-instance-memory-reset");
    for (name, keep_resident_bytes, pagemap_scan) in [
        ("madvise", 0, false),
        ("keep-resident-2MiB-memset", 2 << 20, false),
        ("keep-resident-2MiB-pagemap", 2 << 20, true),
    ] {
        let runtime = Runtime::new(RuntimeConfig {
            keep_resident_bytes,
            pagemap_scan,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let module = runtime
            .load(&guest("vip-and-security"), &Limits::default())
            .expect("load");
        group.bench_function(name, |b| {
            b.iter(|| black_box(runtime.evaluate(&module, &ctx, &event).outcome.is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
