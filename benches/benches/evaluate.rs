//! Rule evaluation, `vip-and-security` three ways in one run: the same logic as native Rust
//! (the floor), wasm on a reused instance, and wasm with a fresh instance per evaluation (the
//! product path). Plus the parts of a fresh evaluation, to see where its time goes.
//!
//! Then the same rule written in JavaScript and Python (`examples/vip-and-security-{js,py}`,
//! built with componentize-js and componentize-py's default flags) beside the Rust one, on
//! each toolchain's default limits: fresh-instance evaluation, instantiation alone, fuel,
//! memory per concurrent evaluation and the time from upload to ready (compile plus the
//! sample start), printed as ratios to Rust measured in the same run.
//!
//! `cargo bench -p switchboard-benches --bench evaluate`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::time::Instant;

use switchboard_host::{EvalContext, Limits, RuleLimits, RuleModule, Runtime, RuntimeConfig};
use switchboard_sdk::Rule;
use switchboard_sdk::testing::{TestHost, TicketBuilder};
use switchboard_tests::toolchains::{Lang, built};
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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn toolchains(c: &mut Criterion) {
    let defaults = RuleLimits::default();
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let event = wasm_event();
    let rules: Vec<(&str, Vec<u8>)> = vec![
        ("rust", guest("vip-and-security")),
        ("js", built(Lang::Js, "examples/vip-and-security-js")),
        (
            "python",
            built(Lang::Python, "examples/vip-and-security-py"),
        ),
    ];
    let mut loaded: Vec<(&str, RuleModule, EvalContext)> = Vec::new();
    let mut summary = Vec::new();
    for (name, bytes) in &rules {
        // Upload to ready: compile (no cache) and start once on the sample ticket.
        let started = Instant::now();
        let module = runtime.load(bytes, defaults).expect("load");
        let mut ctx = EvalContext::new("bench", "v1");
        ctx.limits = *defaults.get(module.toolchain());
        runtime.probe(&module, &ctx).expect("starts");
        let ready = started.elapsed();
        let eval = runtime.evaluate(&module, &ctx, &event);
        assert_eq!(eval.outcome.as_ref().expect("decides").queue, "vip-desk");
        // Memory per concurrent evaluation: 16 live instances at once.
        let before = rss();
        let live: Vec<_> = (0..16)
            .map(|_| {
                runtime
                    .instantiate_reused(&module, &ctx, &event)
                    .expect("instantiate")
            })
            .collect();
        let per_instance = rss().saturating_sub(before) / 16;
        drop(live);
        summary.push((*name, bytes.len(), ready, eval.fuel_used, per_instance));
        loaded.push((name, module, ctx));
    }
    let mut group = c.benchmark_group("toolchains");
    for (name, module, ctx) in &loaded {
        group.bench_function(format!("{name}/fresh-instance"), |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .evaluate(module, ctx, black_box(&event))
                        .outcome
                        .is_ok(),
                )
            })
        });
        group.bench_function(format!("{name}/instantiate-only"), |b| {
            b.iter(|| black_box(runtime.instantiate_reused(module, ctx, &event).is_ok()))
        });
    }
    // The pages an evaluation dirties past the kept-resident prefix go back to the kernel and
    // fault in again on the next one: price that for the JavaScript and Python runtimes.
    for keep in [8usize << 20, 32 << 20] {
        let roomy = Runtime::new(RuntimeConfig {
            keep_resident_bytes: keep,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        for (name, bytes) in &rules[1..] {
            let module = roomy.load(bytes, defaults).expect("load");
            let mut ctx = EvalContext::new("bench", "v1");
            ctx.limits = *defaults.get(module.toolchain());
            group.bench_function(
                format!("{name}/fresh-instance-keep-resident-{}MiB", keep >> 20),
                |b| {
                    b.iter(|| {
                        black_box(
                            roomy
                                .evaluate(&module, &ctx, black_box(&event))
                                .outcome
                                .is_ok(),
                        )
                    })
                },
            );
        }
    }
    group.finish();
    let (_, _, rust_ready, rust_fuel, _) = summary[0];
    eprintln!(
        "\n| rule | size | upload to ready | ratio | fuel | ratio | resident per live instance |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for (name, size, ready, fuel, per) in &summary {
        eprintln!(
            "| {name} | {:.1} MB | {:.2} s | {:.0}x | {fuel} | {:.0}x | {:.2} MiB |",
            *size as f64 / 1e6,
            ready.as_secs_f64(),
            ready.as_secs_f64() / rust_ready.as_secs_f64(),
            *fuel as f64 / rust_fuel as f64,
            *per as f64 / (1 << 20) as f64,
        );
    }
}

criterion_group!(benches, evaluate, toolchains);
criterion_main!(benches);
