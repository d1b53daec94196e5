//! Containment of hostile components the SDK never emits (hand-written core modules and
//! component text, see `tests/support/wat.rs`): each class of the outside corpus that once got
//! through is stopped at its root, with the limit named.

use std::time::Duration;

use serde_json::json;
use switchboard_host::runtime::{CompileBudget, Compiler, LoadError, StructureLimits};
use switchboard_host::{EvalContext, EvalFailure, Limits, Runtime, RuntimeConfig};
use switchboard_tests::wat::{
    importing, many_instances, many_memories, nested_instantiation, slow_to_compile, wat_rule,
};
use switchboard_tests::{created, guest, switchboard_binary};

fn ctx() -> EvalContext {
    EvalContext::new("acme", "v1")
}

fn event() -> switchboard_rules::TicketEvent {
    created(json!({"id": "W-1", "subject": "printer on fire"}))
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_wat_base_rule_routes_so_its_variants_test_the_sandbox() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let rule = rt.load(&wat_rule(None), &Limits::default()).unwrap();
    let decision = rt.evaluate(&rule, &ctx(), &event()).outcome.unwrap();
    assert_eq!((decision.queue.as_str(), decision.tier), ("wat", 1));
    assert_eq!(decision.reason, "core module");
}

#[test]
fn structural_bombs_are_refused_before_compiling_and_leave_nothing_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let limits = StructureLimits::DEFAULT;
    let bombs: [(&str, Vec<u8>, &str); 5] = [
        (
            "20 levels of nested instantiation",
            nested_instantiation(20),
            "core_instances",
        ),
        (
            "1,023 empty core instances",
            many_instances(1023),
            "core_instances",
        ),
        ("three memories", many_memories(3), "memories"),
        (
            "5,000 locals in 5,000 branching blocks",
            slow_to_compile(5000, 5000),
            "locals_times_branches",
        ),
        ("30,000 locals", slow_to_compile(30_000, 1), "locals"),
    ];
    for (name, bytes, what) in bombs {
        assert!(
            bytes.len() < 1 << 20,
            "{name} fits the default module limit"
        );
        match rt.load(&bytes, &Limits::default()) {
            Err(LoadError::TooComplex {
                what: got,
                value,
                limit,
            }) => {
                assert_eq!(got, what, "{name}");
                assert!(value > limit, "{name}: {value} <= {limit}");
            }
            Err(other) => panic!("{name}: refused for another reason: {other}"),
            Ok(_) => panic!("{name} was accepted"),
        }
    }
    assert_eq!(limits.core_instances, 32);
    // A rule refused after compiling (a forbidden import) leaves no artifact either.
    let err = rt
        .load(&importing("wasi:keyvalue/store@0.2.0"), &Limits::default())
        .unwrap_err();
    assert_eq!(err.code(), "forbidden_import");
    assert_eq!(files_in(cache.path()), Vec::<String>::new());
    // An accepted one is kept.
    rt.load(&wat_rule(None), &Limits::default()).unwrap();
    assert_eq!(files_in(cache.path()).len(), 1);
}

#[test]
fn ordinary_guests_are_far_within_the_structural_limits() {
    let limits = StructureLimits::DEFAULT;
    for name in switchboard_tests::GUESTS {
        let e = switchboard_host::runtime::check_structure(&guest(name), &limits).unwrap();
        println!("{name}: {e:?}");
        assert!(
            e.core_instances * 4 <= limits.core_instances,
            "{name}: {e:?}"
        );
        assert!(e.memories < limits.memories, "{name}: {e:?}");
    }
}

fn worker_runtime(budget: CompileBudget, cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        compiler: Compiler::Worker {
            program: switchboard_binary(),
            budget,
        },
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn compilation_runs_in_a_worker_held_to_its_time_and_memory_budget() {
    let cache = tempfile::tempdir().unwrap();
    // A worker's artifact loads and runs like one compiled in process.
    let rt = worker_runtime(CompileBudget::default(), cache.path());
    let rule = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let security = created(json!({"id": "S-1", "category": "security"}));
    let decision = rt.evaluate(&rule, &ctx(), &security).outcome.unwrap();
    assert_eq!(decision.queue, "soc");
    // The worker's own compile errors come back as such.
    let err = rt
        .load(b"\0asm\x0d\x00\x01\x00\xff", &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, LoadError::Invalid(_)),
        "a malformed component: {err}"
    );

    // Within the structural limits but slow to compile: stopped at the time budget.
    let slow = slow_to_compile(1900, 1000);
    let tight_time = CompileBudget {
        base_time: Duration::from_millis(50),
        time_per_mib: Duration::ZERO,
        ..CompileBudget::default()
    };
    let rt = worker_runtime(tight_time, cache.path());
    match rt.load(&slow, &Limits::default()) {
        Err(LoadError::CompileBudget(message)) => {
            assert!(message.contains("still compiling after 50 ms"), "{message}")
        }
        other => panic!("expected the time budget to stop it, got {other:?}"),
    }
    // And at the memory budget.
    let tight_memory = CompileBudget {
        base_memory: 24 << 20,
        memory_per_mib: 0,
        base_time: Duration::from_secs(60),
        ..CompileBudget::default()
    };
    let rt = worker_runtime(tight_memory, cache.path());
    match rt.load(&slow, &Limits::default()) {
        Err(LoadError::CompileBudget(message)) => {
            assert!(message.contains("24 MiB"), "{message}")
        }
        other => panic!("expected the memory budget to stop it, got {other:?}"),
    }
    // Only the accepted rule is on disk.
    assert_eq!(files_in(cache.path()).len(), 1);
}

#[test]
fn the_memory_limit_counts_all_memories_together() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let rule = rt
        .load(&wat_rule(Some("two-memories")), &Limits::default())
        .unwrap();
    let eval = rt.evaluate(&rule, &ctx(), &event());
    match &eval.outcome.as_ref().unwrap_err().failure {
        EvalFailure::MemoryLimit { requested, limit } => {
            assert_eq!(*limit, 10 << 20);
            // 6 MiB of the second memory plus the first grown to 6 MiB (and the few table
            // elements of the component's glue, 8 bytes each).
            assert!(
                (12 << 20..(12 << 20) + 4096).contains(requested),
                "{requested}"
            );
        }
        other => panic!("expected the memory limit, got {other}"),
    }
    // With room for both, the same rule routes: the limit is the sum, not a trap.
    let roomy = EvalContext {
        limits: Limits {
            memory_bytes: 13 << 20,
            ..Limits::default()
        },
        ..ctx()
    };
    assert!(rt.evaluate(&rule, &roomy, &event()).outcome.is_ok());
}

#[test]
fn oversized_lists_and_strings_are_refused_before_they_are_copied() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = Limits::default();
    for (variant, why) in [
        ("huge-tags", "a million empty tags"),
        ("huge-log-line", "a 4 MiB log message"),
    ] {
        let rule = rt.load(&wat_rule(Some(variant)), &limits).unwrap();
        let eval = rt.evaluate(&rule, &ctx(), &event());
        let failure = &eval.outcome.as_ref().unwrap_err().failure;
        assert_eq!(
            failure,
            &EvalFailure::CopyLimit {
                limit: limits.output_bytes as u64 + 3 * 64 * 64 + 4096
            },
            "{why}"
        );
        assert_eq!(failure.kind(), "output_limit", "{why}");
    }
    // The copy budget follows the output limit: raised to 16 MiB, the million tags (24 MB on
    // the host) are still refused before they are copied.
    let roomy = EvalContext {
        limits: Limits {
            output_bytes: 16 << 20,
            ..Limits::default()
        },
        ..ctx()
    };
    let rule = rt.load(&wat_rule(Some("huge-tags")), &limits).unwrap();
    let eval = rt.evaluate(&rule, &roomy, &event());
    assert_eq!(eval.outcome.unwrap_err().failure.kind(), "output_limit");
}

#[test]
fn the_wall_clock_measures_time_not_ticks() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let rule = rt
        .load(&wat_rule(Some("spin")), &Limits::default())
        .unwrap();
    let spin = EvalContext {
        limits: Limits {
            fuel: u64::MAX / 2,
            wall_clock_ms: 50,
            ..Limits::default()
        },
        ..ctx()
    };
    let eval = rt.evaluate(&rule, &spin, &event());
    assert_eq!(
        eval.outcome.unwrap_err().failure,
        EvalFailure::WallClock { limit_ms: 50 }
    );
    assert!(
        eval.elapsed >= Duration::from_millis(50),
        "{:?}",
        eval.elapsed
    );
}
