//! The sandbox against a hostile corpus of real components: every misbehaviour ends in the
//! right error kind within its limit, and the host keeps evaluating other rules.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_host::runtime::{FailureClass, LoadError};
use switchboard_host::{EvalContext, EvalFailure, Evaluation, Limits, Runtime, RuntimeConfig};
use switchboard_tests::{created, guest};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

fn ctx() -> EvalContext {
    EvalContext::new("acme", "v1")
}

fn hostile_event(category: &str) -> switchboard_rules::TicketEvent {
    created(
        json!({"id": format!("H-{category}"), "category": category, "created_at": "2026-03-02T09:15:00Z"}),
    )
}

/// After each misbehaviour, a well-behaved rule still evaluates correctly on the same runtime.
fn assert_neighbour_unaffected(rt: &Runtime) {
    let good = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let event = created(json!({"id": "S-1", "category": "security"}));
    let decision = rt
        .evaluate(&good, &ctx(), &event)
        .outcome
        .expect("neighbour decides");
    assert_eq!(decision.queue, "soc");
}

fn failure(eval: &Evaluation) -> &EvalFailure {
    &eval
        .outcome
        .as_ref()
        .expect_err("the rule must fail")
        .failure
}

#[test]
fn each_misbehaviour_ends_in_its_error_kind_and_neighbours_keep_working() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let cases = [
        ("loop", "fuel_exhausted", FailureClass::Limit),
        ("memory", "memory_limit", FailureClass::Limit),
        ("recursion", "stack_overflow", FailureClass::Limit),
        ("huge-output", "output_limit", FailureClass::Limit),
        ("huge-log", "log_limit", FailureClass::Limit),
        ("stdout-flood", "log_limit", FailureClass::Limit),
        ("empty-log-flood", "log_limit", FailureClass::Limit),
        ("panic", "trap", FailureClass::Trap),
        ("deep-frames", "trap", FailureClass::Trap),
        ("sleep", "trap", FailureClass::Trap),
        ("tier9", "invalid_decision", FailureClass::Invalid),
        (
            "unknown-calendar",
            "invalid_decision",
            FailureClass::Invalid,
        ),
        ("rule-error", "rule_error", FailureClass::Reported),
    ];
    for (category, kind, class) in cases {
        let eval = rt.evaluate(&hostile, &ctx(), &hostile_event(category));
        let err = eval.outcome.as_ref().expect_err(category);
        assert_eq!(err.failure.kind(), kind, "{category}: {err}");
        assert_eq!(err.failure.class(), class, "{category}");
        assert_eq!(
            (
                err.tenant.as_str(),
                err.version.as_str(),
                err.ticket.as_str()
            ),
            ("acme", "v1", format!("H-{category}").as_str())
        );
        assert!(err.fuel_used <= Limits::default().fuel, "{category}");
        assert_neighbour_unaffected(&rt);
    }
}

#[test]
fn limit_errors_say_which_limit_and_how_much() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let limits = Limits::default();

    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("loop"));
    assert_eq!(
        failure(&eval),
        &EvalFailure::FuelExhausted { limit: limits.fuel }
    );
    assert_eq!(eval.fuel_used, limits.fuel);

    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("memory"));
    match failure(&eval) {
        EvalFailure::MemoryLimit { requested, limit } => {
            assert_eq!(*limit, limits.memory_bytes);
            assert!(*requested > *limit);
        }
        other => panic!("expected a memory limit, got {other}"),
    }

    // A 2 MiB answer is past what the host copies for a 64 KiB output limit: refused while
    // it is lifted, before it is copied.
    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("huge-output"));
    match failure(&eval) {
        EvalFailure::CopyLimit { limit } => {
            assert_eq!(*limit, limits.output_bytes as u64 + 3 * 64 * 64 + 4096);
        }
        other => panic!("expected an output limit, got {other}"),
    }
    assert_eq!(failure(&eval).kind(), "output_limit");

    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("huge-log"));
    match failure(&eval) {
        EvalFailure::LogLimit { attempted, limit } => {
            assert_eq!(*limit, limits.log_bytes as u64);
            assert!(*attempted > *limit);
        }
        other => panic!("expected a log limit, got {other}"),
    }
    let kept: usize = eval.log.iter().map(|l| l.message.len()).sum();
    assert!(kept <= limits.log_bytes, "the log keeps at most its cap");
    assert!(!eval.log.is_empty(), "the lines before the cap are kept");

    // Empty lines count too: a loop of `log(info, "")` stops at the limit, with a bounded log.
    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("empty-log-flood"));
    assert!(matches!(failure(&eval), EvalFailure::LogLimit { .. }));
    assert!(
        eval.log.len() <= limits.log_bytes / 32,
        "{} empty lines kept",
        eval.log.len()
    );
    assert!(
        eval.log.len() >= limits.log_bytes / 64,
        "the lines before the cap are kept"
    );
}

#[test]
fn a_slow_loop_with_generous_fuel_hits_the_wall_clock() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let mut ctx = ctx();
    ctx.limits.fuel = 1 << 50;
    ctx.limits.wall_clock_ms = 50;
    let eval = rt.evaluate(&hostile, &ctx, &hostile_event("slow"));
    assert_eq!(failure(&eval), &EvalFailure::WallClock { limit_ms: 50 });
    assert!(
        eval.elapsed >= Duration::from_millis(50),
        "{:?}",
        eval.elapsed
    );
    // Epoch ticks are 1 ms; allow a loaded CI machine plenty of slack, but not "forever".
    assert!(eval.elapsed < Duration::from_secs(5), "{:?}", eval.elapsed);
    assert_neighbour_unaffected(&rt);
}

#[test]
fn a_panic_reports_its_message_and_keeps_the_log() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let eval = rt.evaluate(&hostile, &ctx(), &hostile_event("panic"));
    assert_eq!(
        failure(&eval),
        &EvalFailure::Trap {
            message: "the rule panicked: the rule gave up on ticket H-panic".into()
        }
    );
    assert!(eval.log.iter().any(|l| l.message.contains("panicked at")));
}

#[test]
fn the_same_input_gives_byte_identical_output_even_with_clock_and_random() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let event = hostile_event("clock-and-random");
    let render = |e: &Evaluation| {
        serde_json::to_string(&json!({
            "decision": e.outcome.as_ref().expect("decides"),
            "log": e.log,
            "fuel": e.fuel_used,
        }))
        .unwrap()
    };
    let first = render(&rt.evaluate(&hostile, &ctx(), &event));
    let second = render(&rt.evaluate(&hostile, &ctx(), &event));
    assert_eq!(first, second);
    // A second runtime (a restarted service) agrees too.
    let rt2 = runtime();
    let hostile2 = rt2.load(&guest("hostile"), &Limits::default()).unwrap();
    assert_eq!(first, render(&rt2.evaluate(&hostile2, &ctx(), &event)));
    // The clock reads the event time.
    let expected = format!("clock={}", event.at.as_second());
    assert!(first.contains(&expected), "{first}");
}

#[test]
fn nothing_leaks_from_one_evaluation_to_the_next() {
    let rt = runtime();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    for _ in 0..3 {
        let d = rt
            .evaluate(&hostile, &ctx(), &hostile_event("remember"))
            .outcome
            .unwrap();
        assert_eq!(d.reason, "seen 1");
    }
}

#[test]
fn oversized_input_is_refused_before_the_rule_runs() {
    let rt = runtime();
    let good = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let mut ctx = ctx();
    ctx.limits.input_bytes = 1000;
    let event = created(json!({"id": "BIG", "description": "z".repeat(5000)}));
    let eval = rt.evaluate(&good, &ctx, &event);
    assert!(matches!(
        failure(&eval),
        EvalFailure::InputLimit { limit: 1000, .. }
    ));
    assert_eq!(eval.fuel_used, 0);
}

#[test]
fn a_rule_trying_the_network_files_and_environment_is_denied_each_and_still_routes() {
    let rt = runtime();
    let module = rt
        .load(&guest("network-exfil"), &Limits::default())
        .unwrap();
    assert!(
        module
            .imports()
            .iter()
            .any(|i| i.starts_with("wasi:sockets/tcp@")),
        "{:?}",
        module.imports()
    );
    let event = created(json!({"id": "X-1", "description": "secret"}));
    let eval = rt.evaluate(&module, &EvalContext::new("acme", "1"), &event);
    let decision = eval.outcome.as_ref().expect("the rule routes");
    assert_eq!(decision.reason, "tried to leave");
    let log: Vec<&str> = eval.log.iter().map(|l| l.message.as_str()).collect();
    for (what, line) in ["tcp", "udp", "dns", "read", "write"].iter().zip(&log) {
        assert!(
            line.starts_with(&format!("{what}: denied")),
            "{what}: {line} (log: {log:?})"
        );
    }
    assert_eq!(log.get(5).copied(), Some("env: 0 variables"), "{log:?}");
}

#[test]
fn files_that_are_not_components_are_refused_with_a_clear_error() {
    let rt = runtime();
    let limits = Limits::default();
    let text = rt.load(b"#!/bin/sh\necho not wasm\n", &limits).unwrap_err();
    assert!(matches!(text, LoadError::NotWasm), "{text}");
    // The smallest valid core module: magic and version 1.
    let core = rt.load(b"\0asm\x01\0\0\0", &limits).unwrap_err();
    assert!(matches!(core, LoadError::NotAComponent), "{core}");
    assert!(core.to_string().contains("wasm32-wasip2"));
    let mut truncated = guest("vip-and-security");
    truncated.truncate(truncated.len() / 2);
    let broken = rt.load(&truncated, &limits).unwrap_err();
    assert!(matches!(broken, LoadError::Invalid(_)), "{broken}");
}

/// Appends a custom section to a component: still valid, just bigger.
fn pad_with_custom_section(mut bytes: Vec<u8>, payload: usize) -> Vec<u8> {
    let name = b"padding";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0);
    bytes.push(0); // custom section id
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    bytes
}

#[test]
fn a_module_over_the_size_limit_is_refused() {
    let rt = runtime();
    let padded = pad_with_custom_section(guest("vip-and-security"), 1 << 20);
    let err = rt.load(&padded, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, LoadError::TooLarge { limit, size, .. } if limit == 1 << 20 && size == padded.len()),
        "{err}"
    );
    // The same bytes are a valid rule when the tenant's limit allows them.
    let roomy = Limits {
        module_bytes: 4 << 20,
        ..Limits::default()
    };
    rt.load(&padded, &roomy)
        .expect("valid when within the limit");
}

#[test]
fn compiled_artifacts_are_cached_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let bytes = guest("vip-and-security");
    let event = created(json!({"id": "S-1", "category": "security"}));

    let first = Runtime::new(config.clone()).unwrap();
    let m1 = first.load(&bytes, &Limits::default()).unwrap();
    assert!(!m1.from_cache());
    assert!(first.is_cached(m1.sha256()));
    let d1 = first.evaluate(&m1, &ctx(), &event).outcome.unwrap();
    drop(first);

    let restarted = Runtime::new(config.clone()).unwrap();
    let m2 = restarted.load(&bytes, &Limits::default()).unwrap();
    assert!(
        m2.from_cache(),
        "a restart deserializes instead of recompiling"
    );
    assert_eq!(restarted.evaluate(&m2, &ctx(), &event).outcome.unwrap(), d1);

    // A corrupted artifact is ignored and rebuilt, never loaded.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&path, data).unwrap();
    }
    let third = Runtime::new(config).unwrap();
    let m3 = third.load(&bytes, &Limits::default()).unwrap();
    assert!(!m3.from_cache());
    assert_eq!(third.evaluate(&m3, &ctx(), &event).outcome.unwrap(), d1);
}

#[test]
fn evaluations_run_concurrently_from_many_threads() {
    let rt = Arc::new(runtime());
    let good = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let hostile = rt.load(&guest("hostile"), &Limits::default()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (rt, good, hostile) = (rt.clone(), good.clone(), hostile.clone());
            std::thread::spawn(move || {
                for n in 0..50 {
                    let vip = created(json!({"id": format!("V-{i}-{n}"), "requester": {"email": "a@b", "vip": true}}));
                    let d = rt.evaluate(&good, &ctx(), &vip).outcome.unwrap();
                    assert_eq!(d.queue, "vip-desk");
                    if n % 10 == 0 {
                        let e = rt.evaluate(&hostile, &ctx(), &hostile_event("memory"));
                        assert_eq!(failure(&e).kind(), "memory_limit");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panicked");
    }
}

#[test]
fn a_full_instance_pool_is_a_host_error_not_the_rules() {
    let rt = runtime();
    let good = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let event = created(json!({"id": "S-1", "category": "security"}));
    // Every slot held by a live instance.
    let held: Vec<_> = (0..switchboard_host::runtime::MAX_CONCURRENT_EVALUATIONS)
        .map(|_| {
            rt.instantiate_reused(&good, &ctx(), &event)
                .expect("a slot")
        })
        .collect();
    let eval = rt.evaluate(&good, &ctx(), &event);
    let f = failure(&eval);
    assert_eq!(f.kind(), "host_error", "{f}");
    assert_eq!(f.class(), FailureClass::Host);
    drop(held);
    let decision = rt.evaluate(&good, &ctx(), &event).outcome.expect("decides");
    assert_eq!(decision.queue, "soc");
}
