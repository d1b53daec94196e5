//! One tenant's hostile or greedy rule costs its own tickets only: through the real HTTP API,
//! a second tenant posting all along never falls back and stays fast, uploads of compile
//! bombs are refused, the platform caps what a tenant admin may raise, and a dry run's answer
//! has a bound.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_host::Limits;
use switchboard_host::service::ServiceOptions;
use switchboard_tests::guest;
use switchboard_tests::server::TestServer;
use switchboard_tests::wat::{nested_instantiation, slow_to_compile, wat_rule};

/// These tests spin the CPU (a spinning rule, compile bombs, log floods) or time a tenant
/// against such a spin: one runs at a time, so that none is timed while another spins.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many of the spinning tenant's tickets are in flight at once: more than the runtime's
/// 256 evaluation slots, so without a per-tenant share the spinner would hold them all and the
/// quiet tenant would wait a whole wall clock (1 s) for one.
const SPINNING: usize = 300;

/// The spinner's share of evaluations; it drains its 300 tickets in 300 / 16 × 1 s.
const SHARE: u32 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spinning_tenant_costs_only_its_own_tickets() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions {
        tenant_evaluations: Some(SHARE),
        ..ServiceOptions::default()
    };
    let server = TestServer::try_start_options(dir.path(), options)
        .await
        .unwrap();
    let api = server.api();
    let spinner = api.create_team("spinner").await;
    let quiet = api.create_team("quiet").await;
    // The spinning rule runs to a raised wall clock on every ticket, with all the fuel.
    let limits = json!({"wall_clock_ms": 1000, "fuel": 4_000_000_000_000_u64});
    api.put(
        &spinner.path("/settings"),
        spinner.admin(),
        json!({"limits": limits}),
    )
    .await
    .expect(200);
    api.deploy(
        "spinner",
        &spinner.operator.key,
        spinner.admin(),
        wat_rule(Some("spin")),
    )
    .await;
    // The quiet tenant's evaluations share the two cores with the spinner's sixteen: the
    // point is that they never wait for a slot behind it (`worst` below), so their own wall
    // clock is raised past the scheduler's stalls on a busy machine.
    api.put(
        &quiet.path("/settings"),
        quiet.admin(),
        json!({"limits": {"wall_clock_ms": 1000}}),
    )
    .await
    .expect(200);
    api.deploy(
        "quiet",
        &quiet.operator.key,
        quiet.admin(),
        guest("vip-and-security"),
    )
    .await;

    let flood: Vec<_> = (0..SPINNING)
        .map(|i| {
            let (api, path, key) = (
                api.clone(),
                spinner.path("/tickets"),
                spinner.intake.key.clone(),
            );
            tokio::spawn(async move {
                let reply = api
                    .post(&path, &key, json!({"id": format!("SPIN-{i}")}))
                    .await;
                reply.expect(201)["rule"]["error"]["kind"].clone()
            })
        })
        .collect();
    // While the flood is in flight, the quiet tenant posts one ticket after another.
    let (mut worst, mut posted) = (Duration::ZERO, 0);
    let started = Instant::now();
    while !flood.iter().all(|t| t.is_finished()) || posted < 10 {
        let t0 = Instant::now();
        let reply = api
            .post(
                &quiet.path("/tickets"),
                &quiet.intake.key,
                json!({"id": format!("Q-{posted}"), "category": "security"}),
            )
            .await;
        worst = worst.max(t0.elapsed());
        let body = reply.expect(201);
        assert_eq!(
            body["rule"]["fallback"], false,
            "quiet ticket {posted}: {body}"
        );
        assert_eq!(body["decision"]["queue"], "soc");
        posted += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the flood never drained"
        );
    }
    for t in flood {
        assert_eq!(
            t.await.unwrap(),
            "wall_clock",
            "the spinner stops at its own wall clock"
        );
    }
    println!("quiet tenant: {posted} tickets during the flood, worst {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "the quiet tenant waited {worst:?} behind the spinner"
    );
    server.stop().await;
}

#[tokio::test]
async fn compile_bombs_are_refused_at_upload_and_nothing_is_kept() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let api = server.api();
    let team = api.create_team("bombs").await;
    for (bomb, what) in [
        (nested_instantiation(20), "core_instances"),
        (slow_to_compile(5000, 5000), "locals_times_branches"),
    ] {
        let reply = api.upload("bombs", &team.operator.key, bomb).await;
        reply.expect_error(422, "too_complex");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{message}");
    }
    let artifacts = dir.path().join("artifacts");
    let kept = std::fs::read_dir(&artifacts).map_or(0, |d| d.count());
    assert_eq!(
        kept,
        0,
        "a refused module left a file in {}",
        artifacts.display()
    );
    let rules = api.get(&team.path("/rules"), team.admin()).await;
    assert_eq!(rules.expect(200)["rules"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_platform_caps_what_a_tenant_admin_may_raise() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions {
        limit_caps: Limits::parse_caps("wall_clock_ms=1000").unwrap(),
        ..ServiceOptions::default()
    };
    let server = TestServer::try_start_options(dir.path(), options)
        .await
        .unwrap();
    let api = server.api();
    let team = api.create_team("capped").await;
    let settings = team.path("/settings");
    let reply = api
        .put(
            &settings,
            team.admin(),
            json!({"limits": {"wall_clock_ms": 5000}}),
        )
        .await;
    reply.expect_error(422, "invalid_limits");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("wall_clock_ms = 5000"), "{message}");
    assert!(message.contains("1 to 1000"), "{message}");
    api.put(
        &settings,
        team.admin(),
        json!({"limits": {"wall_clock_ms": 1000}}),
    )
    .await
    .expect(200);
    server.stop().await;
}

#[tokio::test]
async fn a_dry_run_answer_has_a_size_bound() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let api = server.api();
    let team = api.create_team("chatty").await;
    // Limits raised: each ticket logs 1 MiB before it hits its log limit, so 100 tickets
    // would answer 100 MiB. The wall clock is raised too: writing 1 MiB of log in a debug
    // build, beside the other tests of this file spinning the CPU, can pass the default
    // 100 ms, and this test is about the answer's size, not the clock.
    let limits = json!({"log_bytes": 1 << 20, "output_bytes": 16 << 20, "wall_clock_ms": 1000});
    api.put(
        &team.path("/settings"),
        team.admin(),
        json!({"limits": limits}),
    )
    .await
    .expect(200);
    let up = api
        .upload("chatty", &team.operator.key, guest("hostile"))
        .await;
    let version = up.expect(201)["version"].as_u64().unwrap();
    let tickets: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("C-{i}"), "category": "huge-log"}))
        .collect();
    let reply = api
        .post(
            &team.path(&format!("/rules/{version}/test")),
            &team.operator.key,
            json!({"tickets": tickets}),
        )
        .await;
    let body = reply.expect(200);
    let size = serde_json::to_vec(body).unwrap().len();
    assert!(
        size <= switchboard_host::lifecycle::DRY_RUN_ANSWER_BYTES + 100 * 512,
        "a dry run of 100 tickets answered {size} bytes"
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 100, "every ticket is reported");
    // The first reports fit whole; later ones lose their logs (counted, not sent), and the
    // last are summaries: every one keeps its outcome and fuel.
    assert!(results[0]["log"].as_array().unwrap().len() > 900);
    assert!(
        results[4]["log_omitted"].as_u64().unwrap() > 900,
        "{}",
        results[4]
    );
    for r in results {
        let kind = r["error"]["kind"].as_str().or(r["outcome"].as_str());
        assert_eq!(kind, Some("log_limit"), "{r}");
        assert!(r["fuel"].as_u64().unwrap() > 0);
    }
    println!("dry run of 100 tickets of 1 MiB of log each: {size} bytes");
    server.stop().await;
}
