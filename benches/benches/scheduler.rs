//! The SLA timer scheduler under 100,000 pending timers: what a pending timer costs (on disk
//! and in memory), and the lag from a timer's due instant to the first delivery attempt at a
//! real receiver, first with the service otherwise idle (the baseline) and then under ticket
//! load, in one run.
//!
//! Setup, all through the HTTP API of a real server on loopback with a real redb file:
//! `TENANTS` tenants, each with a 15-minute first-response plan on `24x7` and an endpoint
//! subscribed to `sla.breached`; `TIMERS` tickets created with back-dated `created_at`, so
//! their breach timers fall due spread evenly over two windows of `WINDOW` seconds that start
//! once every ticket is in. Window A runs quiet; during window B, 16 clients create tickets as
//! fast as the server takes them (their timers are 15 minutes out, so they add load, not
//! fires).
//!
//! `cargo bench -p switchboard-benches --bench scheduler` (env: `SB_TIMERS`, `SB_TENANTS`,
//! `SB_WINDOW_SECS`, `SB_LEAD_SECS`; `SB_STORE=postgres` runs the server on a private
//! PostgreSQL cluster started for the run, fsync on, instead of the redb file).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use redb::ReadableTableMetadata as _;
use serde_json::json;
use switchboard_host::service::ServiceOptions;
use switchboard_host::webhooks::{DeliveryConfig, UrlPolicy};
use switchboard_tests::receiver::Receiver;
use switchboard_tests::server::TestServer;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What the timers cost in the redb file.
fn redb_sizes(db: &redb::Database, timers: usize, file: &std::path::Path) {
    let txn = redb::ReadableDatabase::begin_read(db).expect("read");
    let table = txn
        .open_table(switchboard_host::store::TIMERS.redb())
        .expect("timers");
    let stats = table.stats().expect("stats");
    let rows = table.len().expect("len");
    let file = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "pending timer rows: {rows}; timers table {:.1} bytes/timer stored + {:.1} metadata + {:.1} fragmented; whole redb file {:.0} bytes/ticket",
        stats.stored_bytes() as f64 / rows as f64,
        stats.metadata_bytes() as f64 / rows as f64,
        stats.fragmented_bytes() as f64 / rows as f64,
        file as f64 / timers as f64
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

const TARGET_MINUTES: i64 = 15;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let timers = env("SB_TIMERS", 100_000);
    let tenants = env("SB_TENANTS", 10);
    let window = env("SB_WINDOW_SECS", 20) as i64;
    let lead = env("SB_LEAD_SECS", 40) as i64;
    let dir = tempfile::tempdir().expect("temp dir");
    let on_postgres = std::env::var("SB_STORE").is_ok_and(|s| s == "postgres");
    let cluster = on_postgres.then(|| {
        let cluster = switchboard_tests::postgres::Cluster::start();
        cluster.create_database("bench");
        cluster
    });
    let options = ServiceOptions {
        delivery: DeliveryConfig {
            policy: UrlPolicy::parse("127.0.0.1/32").expect("policy"),
            ..DeliveryConfig::default()
        },
        database: cluster.as_ref().map(|c| c.url("bench")),
        ..ServiceOptions::default()
    };
    let server = TestServer::try_start_options(dir.path(), options)
        .await
        .expect("start the server");
    println!("store: {}", if on_postgres { "PostgreSQL" } else { "redb" });
    let mut receiver = Receiver::start().await;
    let api = server.api();

    let mut keys = Vec::new();
    for i in 0..tenants {
        let id = format!("t{i}");
        let tenant = server.create_tenant(&id).await;
        let admin = tenant.admin.key.clone();
        let fallback = json!({
            "queue": "desk", "party": "msp", "tier": 1, "priority": "p2",
            "sla": [{"metric": "first_response", "minutes": TARGET_MINUTES, "calendar": "24x7"}],
            "reason": "bench plan"
        });
        server
            .put(
                &format!("/v1/tenants/{id}/settings"),
                &admin,
                json!({"fallback": fallback}),
            )
            .await
            .expect(200);
        let hook = server
            .put(
                &format!("/v1/tenants/{id}/webhooks/ops"),
                &admin,
                json!({"url": receiver.url(), "events": ["sla.breached"]}),
            )
            .await;
        let secret = hook.expect(201)["secret"].as_str().unwrap().to_owned();
        receiver.trust(secret);
        keys.push((id, admin));
    }
    let keys = Arc::new(keys);

    // Due instants: window A = [start, start + window), window B right after it.
    let start = Timestamp::now() + SignedDuration::from_secs(lead);
    let due_of = move |i: usize| {
        start + SignedDuration::from_millis((i as i64) * 2 * window * 1000 / timers as i64)
    };
    let rss_before = rss_kib();
    let created = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (api, keys, next) = (api.clone(), keys.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= timers {
                    break;
                }
                let (tenant, key) = &keys[i % keys.len()];
                let created_at = due_of(i) - SignedDuration::from_mins(TARGET_MINUTES);
                api.post(
                    &format!("/v1/tenants/{tenant}/tickets"),
                    key,
                    json!({"id": format!("B-{i}"), "created_at": created_at.to_string()}),
                )
                .await
                .expect(201);
            }
        }));
    }
    for t in tasks {
        t.await.expect("creator");
    }
    let creation = created.elapsed();
    let rss_after = rss_kib();
    assert!(
        Timestamp::now() < start,
        "creating {timers} tickets took {creation:?}, past the first due instant: raise SB_LEAD_SECS"
    );
    println!(
        "created {timers} tickets over {tenants} tenants in {:.1} s ({:.0}/s, 64 clients)",
        creation.as_secs_f64(),
        timers as f64 / creation.as_secs_f64()
    );
    let service = server.service();
    if let Some(db) = service.store.embedded() {
        redb_sizes(db, timers, &dir.path().join("switchboard.redb"));
    }
    drop(service);
    println!(
        "process RSS {} -> {} KiB: {:.1} bytes per pending timer (the scheduler itself keeps only the next instant in memory; this is the store's cache and allocator growth)",
        rss_before,
        rss_after,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / timers as f64
    );

    // Ticket load during window B.
    let load_on = Arc::new(AtomicBool::new(false));
    let load_done = Arc::new(AtomicBool::new(false));
    let load_count = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for c in 0..16 {
        let (api, keys) = (api.clone(), keys.clone());
        let (on, done, count) = (load_on.clone(), load_done.clone(), load_count.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !done.load(Ordering::Relaxed) {
                if !on.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let (tenant, key) = &keys[(c + n) % keys.len()];
                api.post(
                    &format!("/v1/tenants/{tenant}/tickets"),
                    key,
                    json!({"id": format!("L-{c}-{n}")}),
                )
                .await
                .expect(201);
                n += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let b_start = start + SignedDuration::from_secs(window);
    let switcher = {
        let on = load_on.clone();
        tokio::spawn(async move {
            let wait = b_start - Timestamp::now() - SignedDuration::from_millis(500);
            tokio::time::sleep(wait.unsigned_abs()).await;
            on.store(true, Ordering::Relaxed);
            Instant::now()
        })
    };

    tokio::time::sleep((start - Timestamp::now()).unsigned_abs()).await;
    let (mut quiet, mut loaded) = (Vec::new(), Vec::new());
    // The part of the lag before the event was queued (the envelope's timestamp is the
    // firing transaction's instant).
    let (mut quiet_fire, mut loaded_fire) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    let mut duplicates = 0usize;
    while quiet.len() + loaded.len() < timers {
        let got = receiver.next().await;
        if !seen.insert(got.id.clone()) {
            duplicates += 1;
            continue;
        }
        assert_eq!(got.verified, 1, "every delivery verifies");
        let due: Timestamp = got.body["data"]["due"].as_str().unwrap().parse().unwrap();
        let fired: Timestamp = got.body["timestamp"].as_str().unwrap().parse().unwrap();
        let lag = (got.wall - due).as_secs_f64() * 1000.0;
        let fire_lag = (fired - due).as_secs_f64() * 1000.0;
        if due < b_start {
            quiet.push(lag);
            quiet_fire.push(fire_lag);
        } else {
            loaded.push(lag);
            loaded_fire.push(fire_lag);
        }
    }
    load_done.store(true, Ordering::Relaxed);
    let loaded_from = switcher.await.expect("switcher");
    let load_secs = loaded_from.elapsed().as_secs_f64();
    for t in load {
        t.await.expect("load client");
    }
    let tickets_under_load = load_count.load(Ordering::Relaxed);
    for v in [&mut quiet, &mut loaded, &mut quiet_fire, &mut loaded_fire] {
        v.sort_by(f64::total_cmp);
    }
    let report = |name: &str, v: &[f64]| {
        println!(
            "{name}: {} timers, lag due -> first attempt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, min {:.1} ms",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
            v.first().copied().unwrap_or(f64::NAN),
        );
    };
    report("window A (quiet)", &quiet);
    report("window B (ticket load)", &loaded);
    report("  of which due -> fired and queued, A", &quiet_fire);
    report("  of which due -> fired and queued, B", &loaded_fire);
    println!(
        "ticket load in window B: {tickets_under_load} tickets in {load_secs:.1} s = {:.0}/s (16 clients), while {} timers fired at {:.0}/s",
        tickets_under_load as f64 / load_secs,
        loaded.len(),
        loaded.len() as f64 / window as f64
    );
    println!(
        "ratios B/A: p50 {:.2}, p99 {:.2}; duplicate deliveries {duplicates}",
        percentile(&loaded, 50.0) / percentile(&quiet, 50.0),
        percentile(&loaded, 99.0) / percentile(&quiet, 99.0)
    );
    server.stop().await;
}
